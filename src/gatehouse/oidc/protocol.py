"""What both sides of the OpenID provider agree on: its addresses, the lifetimes of what
it issues, and the making of an authorization code (one grant row per code)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from gatehouse.config import Settings
from gatehouse.oidc.models import OAuthGrant

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"
AUTHORIZE_PATH = "/oauth2/authorize"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 (a path)
USERINFO_PATH = "/oauth2/userinfo"
REVOCATION_PATH = "/oauth2/revoke"
INTROSPECTION_PATH = "/oauth2/introspect"
END_SESSION_PATH = "/oauth2/end_session"

# The provider's browser cookie (single sign-on), sent only to its own endpoints.
BROWSER_COOKIE = "gatehouse_op"
BROWSER_COOKIE_PATH = "/oauth2"

# RFC 6749 §4.1.2 asks for codes that live minutes at most; 60 s is plenty for a
# redirect and a back-channel exchange, and little for a stolen one.
CODE_TTL_SECONDS = 60
CODE_PREFIX = "ghac_"
REFRESH_PREFIX = "ghrt_"

AUTHORIZATION_CODE = "authorization_code"
CLIENT_CREDENTIALS = "client_credentials"


def issuer(settings: Settings) -> str:
    """The provider's identifier (`iss`): the public URL, without a trailing slash, so
    `issuer + DISCOVERY_PATH` is where relying parties look."""
    return settings.server.public_url.rstrip("/")


def endpoint(settings: Settings, path: str) -> str:
    return issuer(settings) + path


def digest(value: str) -> str:
    """SHA-256 hex of a code or token: only this is stored (256 random bits need no
    slow hash, and a database dump yields nothing usable)."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_code() -> str:
    return CODE_PREFIX + secrets.token_urlsafe(32)


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def new_code_grant(
    *,
    client_pk: uuid.UUID,
    user_id: uuid.UUID,
    session_id: uuid.UUID | None,
    auth_version: int,
    auth_time: datetime,
    amr: Sequence[str],
    scopes: Sequence[str],
    redirect_uri: str,
    code_challenge: str,
    nonce: str | None,
    now: datetime,
) -> tuple[OAuthGrant, str]:
    """A grant born as an authorization code, and the code in clear (the one moment it
    exists: only its digest is stored)."""
    code = new_code()
    grant = OAuthGrant(
        id=uuid.uuid4(),
        oauth_client_id=client_pk,
        user_id=user_id,
        session_id=session_id,
        grant_type=AUTHORIZATION_CODE,
        scopes=list(scopes),
        auth_version=auth_version,
        auth_time=auth_time,
        amr=" ".join(amr),
        code_hash=digest(code),
        code_expires_at=now + timedelta(seconds=CODE_TTL_SECONDS),
        redirect_uri=redirect_uri,
        code_challenge=code_challenge,
        nonce=nonce,
        created_at=now,
    )
    return grant, code
