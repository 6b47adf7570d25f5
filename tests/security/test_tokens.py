"""TOK-01…TOK-10: forged, tampered and confused access tokens are refused.

Every crafted token is built with PyJWT/cryptography by hand, the way an attacker
would, and sent as a bearer token to `GET /api/v1/users/me`. A positive control built
with the same helpers proves each refusal is about the one defect that token carries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import time_machine
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm
from pydantic import ValidationError

from gatehouse.auth.tokens import SigningKey
from gatehouse.config import AuthSettings, ConfigError
from gatehouse.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import Account, Api, assert_envelope

ME = "/api/v1/users/me"

Claims = dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(obj: Any) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def _signing_input(header: Claims, claims: Claims) -> str:
    return f"{_segment(header)}.{_segment(claims)}"


def rs_signed(
    header: Claims,
    claims: Claims,
    key: rsa.RSAPrivateKey,
    digest: hashes.HashAlgorithm | None = None,
    *,
    pss: bool = False,
) -> str:
    """Signed exactly as the header says, whatever odd values it holds."""
    signing_input = _signing_input(header, claims)
    pad: padding.AsymmetricPadding = (
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        if pss
        else padding.PKCS1v15()
    )
    signature = key.sign(signing_input.encode(), pad, digest or hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def hs_signed(
    header: Claims, claims: Claims, secret: bytes, digest: Callable[..., Any] = hashlib.sha256
) -> str:
    """HMAC by hand: PyJWT itself refuses a PEM as an HMAC secret, an attacker does not."""
    signing_input = _signing_input(header, claims)
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def unverified(token: str) -> Claims:
    claims: Claims = jwt.decode(token, options={"verify_signature": False})
    return claims


def _without(claims: Claims, *names: str) -> Claims:
    return {k: v for k, v in claims.items() if k not in names}


def tampered(account: Account, **changes: Any) -> str:
    """The account's real token with its payload edited and its signature kept."""
    header, _, signature = account.access_token.split(".")
    return f"{header}.{_segment({**unverified(account.access_token), **changes})}.{signature}"


def _self_signed_cert(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gatehouse")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def forged_tokens(
    signing: SigningKey,
    victim: Account,
    admin: Account,
    listener_url: str,
    leeway: int,
) -> list[tuple[str, str]]:
    """(what it tries, token): the attacker's corpus against one logged-in user."""
    ours = signing.private_key
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attacker_jwk: Claims = RSAAlgorithm.to_jwk(attacker.public_key(), as_dict=True)
    now = int(time.time())
    good = {**unverified(victim.access_token), "jti": str(uuid.uuid4())}
    ok_header = {"alg": "RS256", "typ": "at+jwt", "kid": signing.kid}
    public_pem = signing.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pkcs1_pem = signing.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )
    public_der = signing.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs = {"alg": "HS256", "typ": "at+jwt", "kid": signing.kid}
    valid = rs_signed(ok_header, good, ours)
    valid_input, _, valid_signature = valid.rpartition(".")

    corpus: list[tuple[str, str]] = []
    # TOK-01: alg none, in every spelling.
    for alg in ("none", "None", "NONE", "nOnE"):
        corpus.append(
            (f"alg {alg}, empty signature", f"{_signing_input({**ok_header, 'alg': alg}, good)}.")
        )
    corpus.append(("alg none, no typ or kid", f"{_signing_input({'alg': 'none'}, good)}."))
    corpus.append(
        (
            "alg none, real signature kept",
            f"{_signing_input({**ok_header, 'alg': 'none'}, good)}.{valid_signature}",
        )
    )
    # TOK-02: HMAC keyed with our public key (algorithm confusion).
    corpus += [
        ("HS256 keyed with the SPKI PEM", hs_signed(hs, good, public_pem)),
        ("HS256 keyed with the PEM, newline stripped", hs_signed(hs, good, public_pem.strip())),
        ("HS256 keyed with the PKCS#1 PEM", hs_signed(hs, good, pkcs1_pem)),
        ("HS256 keyed with the DER key", hs_signed(hs, good, public_der)),
        ("HS256 keyed with the JWKS entry", hs_signed(hs, good, json.dumps(signing.jwk).encode())),
        (
            "HS384 keyed with the PEM",
            hs_signed({**hs, "alg": "HS384"}, good, public_pem, hashlib.sha384),
        ),
        (
            "HS512 keyed with the PEM",
            hs_signed({**hs, "alg": "HS512"}, good, public_pem, hashlib.sha512),
        ),
    ]
    # TOK-03: signature stripped, zeroed, truncated, flipped, or from another key.
    flipped = bytearray(base64.urlsafe_b64decode(valid_signature + "=="))
    flipped[-1] ^= 0x01
    corpus += [
        ("signature stripped", f"{valid_input}."),
        ("signature segment missing", valid_input),
        ("signature zeroed", f"{valid_input}.{_b64(bytes(256))}"),
        ("signature truncated", f"{valid_input}.{valid_signature[:-12]}"),
        ("signature bit flipped", f"{valid_input}.{_b64(bytes(flipped))}"),
        ("signed by another key under our kid", rs_signed(ok_header, good, attacker)),
        ("role edited to admin, original signature", tampered(victim, role="admin")),
        ("sub edited to the admin, original signature", tampered(victim, sub=str(admin.id))),
        ("exp pushed a year out, original signature", tampered(victim, exp=now + 31_536_000)),
    ]
    # TOK-04: the token names its own key (inline or by URL): never fetched, never trusted.
    attacker_kid = _b64(hashlib.sha256(json.dumps(attacker_jwk, sort_keys=True).encode()).digest())
    corpus += [
        (
            "inline jwk, attacker kid",
            rs_signed(
                {"alg": "RS256", "typ": "at+jwt", "kid": attacker_kid, "jwk": attacker_jwk},
                good,
                attacker,
            ),
        ),
        ("inline jwk, our kid", rs_signed({**ok_header, "jwk": attacker_jwk}, good, attacker)),
        (
            "jku to a listener, attacker kid",
            rs_signed(
                {"alg": "RS256", "typ": "at+jwt", "kid": attacker_kid, "jku": listener_url},
                good,
                attacker,
            ),
        ),
        (
            "jku to a listener, our kid",
            rs_signed({**ok_header, "jku": listener_url}, good, attacker),
        ),
        ("x5u to a listener", rs_signed({**ok_header, "x5u": listener_url}, good, attacker)),
        (
            "x5c self-signed chain",
            rs_signed({**ok_header, "x5c": [_self_signed_cert(attacker)]}, good, attacker),
        ),
    ]
    # TOK-05: kid games, signed with our real key so the kid is the only defect.
    for label, kid in (
        ("path traversal", "../../../../dev/null"),
        ("SQL injection", "' OR '1'='1"),
        ("unknown id", "key-2019-retired"),
        ("10 kB", "A" * 10_240),
        ("null", None),
        ("integer", 1),
    ):
        corpus.append((f"kid {label}", rs_signed({**ok_header, "kid": kid}, good, ours)))
    corpus.append(("kid missing", rs_signed(_without(ok_header, "kid"), good, ours)))
    # TOK-06: time claims, signed with our key.
    past = {**good, "iat": now - 1000, "nbf": now - 1000, "exp": now - leeway - 1}
    corpus += [
        ("exp 1 s past the leeway", rs_signed(ok_header, past, ours)),
        ("nbf 10 min ahead", rs_signed(ok_header, {**good, "nbf": now + 600}, ours)),
        ("iat 10 min ahead", rs_signed(ok_header, {**good, "iat": now + 600}, ours)),
        ("exp missing", rs_signed(ok_header, _without(good, "exp"), ours)),
        ("iat missing", rs_signed(ok_header, _without(good, "iat"), ours)),
        ("nbf missing", rs_signed(ok_header, _without(good, "nbf"), ours)),
    ]
    # TOK-07: issuer and audience.
    corpus += [
        ("iss wrong", rs_signed(ok_header, {**good, "iss": "https://evil.example"}, ours)),
        ("iss missing", rs_signed(ok_header, _without(good, "iss"), ours)),
        ("aud wrong", rs_signed(ok_header, {**good, "aud": "another-service"}, ours)),
        ("aud list without ours", rs_signed(ok_header, {**good, "aud": ["another-service"]}, ours)),
        ("aud missing", rs_signed(ok_header, _without(good, "aud"), ours)),
    ]
    # TOK-08: type confusion, and algorithms other than the one we use.
    corpus += [
        ("refresh token as bearer", victim.refresh_token),
        ("typ JWT", rs_signed({**ok_header, "typ": "JWT"}, good, ours)),
        ("typ missing", rs_signed(_without(ok_header, "typ"), good, ours)),
        ("typ rt+jwt", rs_signed({**ok_header, "typ": "rt+jwt"}, good, ours)),
        (
            "alg RS512 with our key",
            rs_signed({**ok_header, "alg": "RS512"}, good, ours, hashes.SHA512()),
        ),
        ("alg PS256 with our key", rs_signed({**ok_header, "alg": "PS256"}, good, ours, pss=True)),
    ]
    # Claims the service must not trust even under a valid signature.
    corpus += [
        ("sub not a UUID", rs_signed(ok_header, {**good, "sub": "admin"}, ours)),
        (
            "sub swapped to the admin, victim's sid",
            rs_signed(ok_header, {**good, "sub": str(admin.id)}, ours),
        ),
        ("sid missing", rs_signed(ok_header, _without(good, "sid"), ours)),
        ("sid of no session", rs_signed(ok_header, {**good, "sid": str(uuid.uuid4())}, ours)),
        ("ver as a string", rs_signed(ok_header, {**good, "ver": str(good["ver"])}, ours)),
        ("ver bumped", rs_signed(ok_header, {**good, "ver": good["ver"] + 1}, ours)),
        ("ver true", rs_signed(ok_header, {**good, "ver": True}, ours)),
        ("not a JWT", "definitely-not-a-token"),
        ("three empty segments", ".."),
        ("garbage segments", "a.b.c"),
    ]
    return corpus


def connections_received(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A local port a jku/x5u fetch would hit; it must never see a connection."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    # The watch itself works: a connection made here is seen.
    with socket.create_connection(sock.getsockname()):
        assert connections_received(sock) == 1
    try:
        yield sock
    finally:
        sock.close()


async def test_a_token_built_like_ours_is_accepted(api: Api) -> None:
    """Positive control: the forging helpers make a token the service accepts."""
    victim = await api.user()
    signing = api.runtime.tokens.key
    header = {"alg": "RS256", "typ": "at+jwt", "kid": signing.kid}
    claims = {**unverified(victim.access_token), "jti": str(uuid.uuid4())}
    token = rs_signed(header, claims, signing.private_key)
    response = await api.client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(victim.id)


async def test_forged_tokens_are_all_refused_without_outbound_requests(
    api: Api, backend: str, listener: socket.socket
) -> None:
    victim = await api.user()
    admin = await api.user("admin")
    host, port = listener.getsockname()
    corpus = forged_tokens(
        api.runtime.tokens.key,
        victim,
        admin,
        f"http://{host}:{port}/.well-known/jwks.json",
        api.runtime.settings.auth.jwt_leeway_seconds,
    )
    accepted = []
    for name, token in corpus:
        response = await api.client.get(ME, headers={"Authorization": f"Bearer {token}"})
        if response.status_code != 401:
            accepted.append(f"{name}: {response.status_code} {response.text[:200]}")
            continue
        assert_envelope(response, 401, "UNAUTHORIZED")
        assert response.headers["www-authenticate"].startswith("Bearer"), name
    print(f"\nTOK forged tokens ({backend}): {len(corpus)} tried, {len(accepted)} accepted")
    assert accepted == []
    assert len(corpus) >= 30
    assert connections_received(listener) == 0, "a token made the service fetch a key"
    # The victim's own token still works: the refusals ended nothing.
    assert (await api.client.get(ME, headers=victim.headers)).status_code == 200


async def test_exp_is_enforced_with_a_leeway_of_at_most_60_seconds(api: Api) -> None:
    account = await api.user()
    leeway = api.runtime.settings.auth.jwt_leeway_seconds
    assert 0 <= leeway <= 60
    expires = datetime.fromtimestamp(unverified(account.access_token)["exp"], UTC)
    with time_machine.travel(expires + timedelta(seconds=leeway - 1), tick=False) as clock:
        assert (await api.client.get(ME, headers=account.headers)).status_code == 200
        clock.shift(2)  # now 1 s past exp + leeway
        response = await api.client.get(ME, headers=account.headers)
    assert_envelope(response, 401, "UNAUTHORIZED")
    with pytest.raises(ValidationError):
        AuthSettings(jwt_leeway_seconds=61)


async def test_refresh_token_is_not_a_bearer_and_access_token_is_not_a_grant(api: Api) -> None:
    account = await api.user()
    as_bearer = await api.client.get(
        ME, headers={"Authorization": f"Bearer {account.refresh_token}"}
    )
    assert_envelope(as_bearer, 401, "UNAUTHORIZED")
    attempts = [
        await api.client.post("/api/v1/auth/refresh", json={"refresh_token": account.access_token}),
        await api.client.post(
            "/api/v1/auth/token",
            json={"grant_type": "refresh_token", "refresh_token": account.access_token},
        ),
        await api.client.post(
            "/api/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": account.access_token},
        ),
    ]
    for response in attempts:
        assert_envelope(response, 400, "INVALID_GRANT")
    # Nothing was revoked by the confusion: the real pair still works.
    assert (await api.client.get(ME, headers=account.headers)).status_code == 200
    refreshed = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert refreshed.status_code == 200, refreshed.text


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.mark.parametrize("bits", [1024, 2047])
def test_boot_refuses_a_signing_key_under_2048_bits(
    bits: int, tmp_path: Path, signing_key_pem: str
) -> None:
    """TOK-09 for our RS256: the key-strength floor is 2048-bit RSA, checked at boot."""
    weak = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    with pytest.raises(ConfigError, match=r"GATEHOUSE_JWT_PRIVATE_KEY.*2048 bits"):
        SigningKey(weak)
    with pytest.raises(ConfigError, match="GATEHOUSE_JWT_PRIVATE_KEY"):
        SigningKey.from_pem(_pem(weak))
    url = f"sqlite+aiosqlite:///{tmp_path / 'boot.db'}"
    with pytest.raises(ConfigError, match="GATEHOUSE_JWT_PRIVATE_KEY"):
        Runtime.create(make_settings(url, tmp_path, _pem(weak)))
    # The control: a 2048-bit key boots.
    assert SigningKey.from_pem(signing_key_pem).jwk["alg"] == "RS256"


def test_only_rsa_keys_sign_so_ecdsa_attacks_do_not_apply() -> None:
    """TOK-10 (ECDSA r=s=0) is not applicable: an EC key is refused at boot."""
    with pytest.raises(ConfigError, match="must be an RSA key"):
        SigningKey.from_pem(_pem(ec.generate_private_key(ec.SECP256R1())))
