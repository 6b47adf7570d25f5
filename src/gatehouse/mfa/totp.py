"""TOTP (RFC 6238 with pyotp: SHA-1, 6 digits, 30 s) and recovery codes.

A code is accepted in the current time step or one step either side (a clock off by up
to 30 s), and once: the caller stores the step it matched and refuses any step not
after it (RFC 6238 §5.2), so a code seen over a shoulder is worth nothing afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import secrets

import pyotp
import segno

DIGITS = 6
PERIOD = 30
# Steps accepted either side of the current one.
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
# RFC 4648 base32, lower case: no 0/1/8/9, so no 0-O or 1-l confusion when typed.
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_CODE = re.compile(r"^\d{6}$")


def new_secret() -> str:
    """160 random bits (RFC 4226's recommended length), base32 as apps expect."""
    return pyotp.random_base32(32)


def otpauth_uri(secret: str, *, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(
        name=email, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """The URI as an `<svg …>` element (no XML prolog), for an app to scan.

    With its namespace: an SVG shown as an image (a `data:` URL, as the web apps do)
    renders nothing without it, where markup inlined into HTML would not need it.
    """
    out = io.BytesIO()
    segno.make(uri, error="m").save(
        out, kind="svg", xmldecl=False, svgns=True, scale=4, border=2, nl=False
    )
    return out.getvalue().decode()


def step_at(unix_time: float) -> int:
    return int(unix_time) // PERIOD


def matching_step(secret: str, code: str, unix_time: float, last_used: int | None) -> int | None:
    """The time step `code` is right for, near `unix_time` and after `last_used`; None
    when there is none. Every candidate is compared in constant time."""
    code = code.strip().replace(" ", "")
    if not _CODE.match(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    now = step_at(unix_time)
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        expected = totp.generate_otp(step)
        if hmac.compare_digest(expected, code) and found is None:
            found = step
    if found is None or (last_used is not None and found <= last_used):
        return None
    return found


def new_recovery_codes() -> list[str]:
    """Ten codes of 10 characters (50 random bits each), shown as `xxxxx-xxxxx`."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalise_recovery_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).lower()


def hash_recovery_code(code: str) -> str:
    """SHA-256 of the normalised code. 50 random bits: online, the per-account throttle
    makes guessing hopeless; from a database dump, about 2^49 hashes find one code (a
    GPU-day), and the thief still needs the password. A slow hash would cost every
    check for little more."""
    return hashlib.sha256(normalise_recovery_code(code).encode()).hexdigest()
