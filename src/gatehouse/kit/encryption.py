"""Secrets encrypted at rest: a key ring of AES-256-GCM keys (`GATEHOUSE_ENCRYPTION_KEYS`).

For a secret Gatehouse must read back in clear (a webhook's signing secret, a TOTP
seed); a password is hashed instead, never encrypted. Through the process's ring,
`runtime.encryption`:

    token = runtime.encryption.encrypt(secret, context=f"webhook.secret:{row.id}")
    secret = runtime.encryption.decrypt(token, context=f"webhook.secret:{row.id}")

- A token is `v1.<kid>.<base64url(nonce | ciphertext | tag)>` (unpadded, ASCII): it
  names the key that made it, so keys can rotate. The nonce is 96 random bits per
  encryption: the same secret never gives the same token twice.
- `context` says where the token lives ("<what>:<row id>"). It is authenticated with
  the version and the kid (AES-GCM associated data), so a token copied into another
  row or column does not decrypt. It is not secret and not stored.
- The ring's first key encrypts; every key decrypts. `needs_rotation(token)` says a
  stored value is not under the first key (or is not a token at all: a clear value
  from before encryption); `gatehouse keys rotate-encryption` re-encrypts those, for
  every column listed in `gatehouse.keys.service.ENCRYPTED_COLUMNS` (add yours there,
  as an `EncryptedColumn`).
- `decrypt` raises `UnknownKey` (the kid is not in the ring: a key was removed too
  early) or `Undecryptable` (tampered, another row's token, malformed), both
  `EncryptionError`: a 500-class error whose message says nothing of the secret, so a
  request answers the API's error envelope. The failure is logged with the kid and
  the context, never the token.

The keys come from settings (`kid:base64key` entries, comma- or newline-separated; see
`parse_keys`), or on the embedded default from a file generated into the data dir
(`gatehouse.keys.ring`).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gatehouse.errors import GatehouseError

if TYPE_CHECKING:
    from sqlalchemy.orm import InstrumentedAttribute

log = structlog.get_logger("gatehouse.encryption")

VERSION = "v1"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits, GCM's own size
TAG_BYTES = 16
# Short and safe in a token (no dot, the separator) and in a log line.
KID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,16}")


class EncryptionError(GatehouseError):
    """A stored secret cannot be decrypted. A 500: the fault is the deployment's keys
    or the data, never the caller's request."""

    default_message = "A stored secret cannot be decrypted; the server's log says which key"

    def __init__(self, kid: str | None, reason: str) -> None:
        super().__init__()
        self.kid = kid
        # For the operator (the log, the CLI): which key and what went wrong.
        self.reason = reason


class UnknownKey(EncryptionError):
    """The token names a key the ring does not hold."""


class Undecryptable(EncryptionError):
    """Tampered with, made for another context, or not a token at all."""


def parse_keys(text: str) -> list[tuple[str, bytes]]:
    """`kid:base64key` entries, separated by commas or newlines (blank ones skipped), in
    order: the first encrypts. Each key is 32 bytes in standard or URL-safe base64
    (`openssl rand -base64 32`); kids are unique. ValueError says what is wrong without
    repeating a key."""
    entries = [item.strip() for item in re.split(r"[,\n]", text) if item.strip()]
    if not entries:
        raise ValueError("needs at least one key (kid:base64key)")
    keys: list[tuple[str, bytes]] = []
    for number, entry in enumerate(entries, start=1):
        kid, sep, encoded = entry.partition(":")
        kid, encoded = kid.strip(), encoded.strip()
        if not sep or not kid or not encoded:
            raise ValueError(f"entry {number} is not kid:base64key")
        if not KID_PATTERN.fullmatch(kid):
            raise ValueError(
                f"entry {number}: the key id must be 1 to 16 letters, digits, '-' or '_'"
            )
        key = _decode_key(encoded)
        if key is None:
            raise ValueError(f"entry {number} ({kid}): the key is not base64")
        if len(key) != KEY_BYTES:
            raise ValueError(
                f"entry {number} ({kid}): the key must be {KEY_BYTES} bytes, "
                f"not {len(key)} (openssl rand -base64 32)"
            )
        if any(kid == seen for seen, _ in keys):
            raise ValueError(f"entry {number}: the key id {kid!r} is used twice")
        keys.append((kid, key))
    return keys


def _decode_key(encoded: str) -> bytes | None:
    # URL-safe base64 read as standard: the two differ in two characters only.
    standard = encoded.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def new_entry() -> str:
    """A fresh `kid:base64key` entry with a random kid (what the embedded default writes)."""
    kid = f"k{secrets.token_hex(3)}"
    return f"{kid}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode('ascii')}"


def is_token(value: str) -> bool:
    """Whether a stored value is a token of this module (else a clear legacy value)."""
    return value.startswith(f"{VERSION}.")


def token_kid(token: str) -> str | None:
    parts = token.split(".")
    return parts[1] if len(parts) == 3 and parts[0] == VERSION else None


def _associated(kid: str, context: str) -> bytes:
    return f"{VERSION}.{kid}.{context}".encode()


class KeyRing:
    """AES-256-GCM keys by kid; the first encrypts, every one decrypts."""

    __slots__ = ("_ciphers", "kids")

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self.kids: tuple[str, ...] = tuple(kid for kid, _ in keys)
        self._ciphers = {kid: AESGCM(key) for kid, key in keys}

    @classmethod
    def from_text(cls, text: str) -> KeyRing:
        return cls(parse_keys(text))

    def __repr__(self) -> str:  # never the keys
        return f"KeyRing(kids={list(self.kids)})"

    @property
    def current(self) -> str:
        """The kid that encrypts."""
        return self.kids[0]

    def encrypt(self, plaintext: bytes | str, *, context: str) -> str:
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        kid = self.current
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(nonce, data, _associated(kid, context))
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{VERSION}.{kid}.{body}"

    def decrypt(self, token: str, *, context: str) -> bytes:
        kid = token_kid(token)
        if kid is None:
            raise self._failed(Undecryptable(None, "not a v1 token"), context)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            reason = f"key {kid!r} is not in GATEHOUSE_ENCRYPTION_KEYS"
            raise self._failed(UnknownKey(kid, reason), context)
        body = token.split(".")[2]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise self._failed(Undecryptable(kid, "malformed token"), context)
        try:
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated(kid, context))
        except InvalidTag:
            reason = "authentication failed (altered, or another place's token)"
            raise self._failed(Undecryptable(kid, reason), context) from None

    def decrypt_text(self, token: str, *, context: str) -> str:
        return self.decrypt(token, context=context).decode()

    def needs_rotation(self, token: str) -> bool:
        """Not encrypted by the first key: under an older key, or a clear value."""
        return token_kid(token) != self.current

    @staticmethod
    def _failed(error: EncryptionError, context: str) -> EncryptionError:
        log.error("encryption.decrypt_failed", kid=error.kid, context=context, reason=error.reason)
        return error


@dataclass(frozen=True)
class EncryptedColumn:
    """A column of tokens, for `gatehouse keys rotate-encryption`: where it is and each
    row's context. `clear_legacy`: a value that is not a token is a secret stored in
    clear before encryption came, to be encrypted (else it is reported)."""

    label: str
    column: InstrumentedAttribute[Any]
    key: InstrumentedAttribute[uuid.UUID]
    context: Callable[[uuid.UUID], str]
    clear_legacy: bool = False
