"""What the OpenID provider signs: OAuth access tokens (RFC 9068 JWTs) and ID tokens.

Both are signed with the key that signs Gatehouse's own access tokens (one JWKS for
relying parties and first-party services alike), and both are kept apart from those:
an OAuth access token names the client as its audience and carries no session (`sid`)
or `ver`, so the first-party API refuses it; an ID token is typed `JWT`, not `at+jwt`,
so it never passes as an access token anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt

from gatehouse.auth.tokens import ACCESS_TOKEN_TYPE, ALGORITHM, SigningKey
from gatehouse.config import Settings
from gatehouse.oidc import protocol

ID_TOKEN_TYPE = "JWT"  # noqa: S105 (a JOSE type)
# The claims every access token this provider issues must carry.
_ACCESS_REQUIRED = ["exp", "iat", "iss", "aud", "sub", "client_id", "scope", "gid", "jti"]


@dataclass(frozen=True)
class OAuthAccessClaims:
    """A verified OAuth access token: the grant it was issued under, and what for."""

    client_id: str
    subject: str
    grant_id: uuid.UUID
    scopes: tuple[str, ...]
    issued_at: int
    expires_at: int


def at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6: the left half of the SHA-256 of the token, base64url."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def mint_access_token(
    settings: Settings,
    key: SigningKey,
    *,
    client_id: str,
    subject: str,
    grant_id: uuid.UUID,
    scopes: Sequence[str],
    now: datetime,
    auth_time: datetime | None = None,
    amr: Sequence[str] = (),
) -> str:
    issued = _epoch(now)
    claims: dict[str, Any] = {
        "iss": protocol.issuer(settings),
        "sub": subject,
        "aud": client_id,
        "client_id": client_id,
        "scope": " ".join(scopes),
        "gid": str(grant_id),
        "iat": issued,
        "exp": issued + settings.auth.access_token_ttl_seconds,
        "jti": str(uuid.uuid4()),
    }
    if auth_time is not None:
        claims["auth_time"] = _epoch(auth_time)
        claims["amr"] = list(amr)
    return _sign(key, claims, ACCESS_TOKEN_TYPE)


def mint_id_token(
    settings: Settings,
    key: SigningKey,
    *,
    client_id: str,
    subject: str,
    now: datetime,
    auth_time: datetime | None,
    amr: Sequence[str],
    access_token: str,
    nonce: str | None = None,
    profile: dict[str, Any] | None = None,
) -> str:
    issued = _epoch(now)
    claims: dict[str, Any] = {
        "iss": protocol.issuer(settings),
        "sub": subject,
        "aud": client_id,
        "iat": issued,
        "exp": issued + settings.auth.access_token_ttl_seconds,
        "amr": list(amr),
        "at_hash": at_hash(access_token),
        **(profile or {}),
    }
    if auth_time is not None:
        claims["auth_time"] = _epoch(auth_time)
    if nonce is not None:
        claims["nonce"] = nonce
    return _sign(key, claims, ID_TOKEN_TYPE)


def _sign(key: SigningKey, claims: dict[str, Any], typ: str) -> str:
    # `typ` keeps one kind from passing as the other (RFC 9068 §2.1, RFC 8725 §3.11).
    return jwt.encode(
        claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": typ}
    )


def verify_access_token(
    settings: Settings, key: SigningKey, token: str, *, verify_exp: bool = True
) -> OAuthAccessClaims | None:
    """The claims of an access token this provider issued and that has not expired;
    None for anything else (a first-party token, an ID token, a forgery, garbage).
    Whether its grant still stands is the caller's check (`OAuthService`)."""
    try:
        header = jwt.get_unverified_header(token)
        if (
            header.get("alg") != ALGORITHM
            or header.get("kid") != key.kid
            or header.get("typ") != ACCESS_TOKEN_TYPE
        ):
            return None
        claims = jwt.decode(
            token,
            key.public_key,
            algorithms=[ALGORITHM],
            issuer=protocol.issuer(settings),
            leeway=settings.auth.jwt_leeway_seconds,
            options={
                "require": _ACCESS_REQUIRED,
                "verify_aud": False,
                "verify_exp": verify_exp,
            },
        )
        client_id, aud, scope = claims["client_id"], claims["aud"], claims["scope"]
        if not isinstance(client_id, str) or aud != client_id or not isinstance(scope, str):
            return None
        if "sid" in claims:  # a first-party token, whatever else it says
            return None
        return OAuthAccessClaims(
            client_id=client_id,
            subject=str(claims["sub"]),
            grant_id=uuid.UUID(str(claims["gid"])),
            scopes=tuple(scope.split()),
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
        )
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError):
        return None


def verify_id_token_hint(settings: Settings, key: SigningKey, token: str) -> dict[str, Any] | None:
    """The claims of an ID token this provider signed, expired or not (OIDC RP-Initiated
    Logout: an `id_token_hint` is typically old); None for anything else."""
    try:
        header = jwt.get_unverified_header(token)
        if (
            header.get("alg") != ALGORITHM
            or header.get("kid") != key.kid
            or header.get("typ") != ID_TOKEN_TYPE
        ):
            return None
        claims: dict[str, Any] = jwt.decode(
            token,
            key.public_key,
            algorithms=[ALGORITHM],
            issuer=protocol.issuer(settings),
            options={"require": ["iss", "sub", "aud"], "verify_aud": False, "verify_exp": False},
        )
        if not isinstance(claims.get("aud"), str) or not isinstance(claims.get("sub"), str):
            return None
        return claims
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError):
        return None
