"""Fixtures of the browser side's suites: clients registered through the admin API, an
authorize request with PKCE, the browser's provider cookie, and what the database holds."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from sqlalchemy import select, update

from gatehouse.audit.models import AuditEvent
from gatehouse.auth.models import Session
from gatehouse.auth.tokens import ALGORITHM
from gatehouse.kit.time import utcnow
from gatehouse.oidc import protocol
from gatehouse.oidc.models import OAuthBrowserSession, OAuthGrant
from gatehouse.runtime import Runtime
from tests.factories import Account, Api

CLIENTS = "/api/v1/clients"
AUTHORIZE = protocol.AUTHORIZE_PATH
END_SESSION = protocol.END_SESSION_PATH
SESSION = "/api/v1/oauth2/session"
CONSENT = "/api/v1/oauth2/consent"
APPS = "/api/v1/users/me/connected-apps"
CALLBACK = "https://app.example.com/callback"
BYE = "https://app.example.com/bye"
ISSUER = "http://127.0.0.1:8000"  # the test settings' public URL


def web_app(**changes: Any) -> dict[str, Any]:
    """A third-party confidential web app: asks for consent."""
    return {
        "name": "Acme CRM",
        "type": "confidential",
        "redirect_uris": [CALLBACK, "https://app.example.com/cb?tenant=7"],
        "post_logout_redirect_uris": [BYE],
        "scopes": ["openid", "profile", "email", "offline_access"],
        "grant_types": ["authorization_code", "refresh_token"],
        **changes,
    }


@pytest.fixture
async def admin(api: Api) -> Account:
    return await api.user("admin")


async def register(api: Api, admin: Account, **changes: Any) -> dict[str, Any]:
    response = await api.client.post(CLIENTS, json=web_app(**changes), headers=admin.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture
async def rp(api: Api, admin: Account) -> dict[str, Any]:
    """A registered third-party client (not trusted)."""
    return await register(api, admin)


@pytest.fixture
async def first_party(api: Api, admin: Account) -> dict[str, Any]:
    """A first-party client: nobody is asked to consent."""
    return await register(
        api,
        admin,
        name="Acme Portal",
        trusted=True,
        redirect_uris=["https://portal.example.com/cb"],
    )


def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(client: dict[str, Any], **changes: str | None) -> dict[str, str]:
    """A valid authorize request of `client`'s; a change of None drops the parameter."""
    _, challenge = pkce()
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": (client["redirect_uris"] or [CALLBACK])[0],
        "scope": "openid profile",
        "state": "st-" + secrets.token_hex(4),
        "nonce": "n-" + secrets.token_hex(4),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **changes,
    }
    return {name: value for name, value in params.items() if value is not None}


async def authorize(api: Api, params: dict[str, str]) -> httpx.Response:
    return await api.client.get(AUTHORIZE, params=params)


def location(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """A 302's target without its query, and the query (each parameter once)."""
    assert response.status_code == 302, response.text
    parts = urlsplit(response.headers["location"])
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    for values in parse_qs(parts.query).values():
        assert len(values) == 1
    base = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path
    return base, query


def query_of(params: dict[str, str]) -> str:
    return urlencode(params)


async def sign_in_browser(api: Api, account: Account) -> str:
    """The client app's call after a login: the browser gets the provider cookie."""
    response = await api.client.post(SESSION, headers=account.headers)
    assert response.status_code == 204, response.text
    cookie = api.client.cookies.get(protocol.BROWSER_COOKIE)
    assert cookie
    return cookie


async def consent(api: Api, account: Account, params: dict[str, str]) -> None:
    response = await api.client.post(
        CONSENT, json={"query": query_of(params)}, headers=account.headers
    )
    assert response.status_code == 200, response.text


async def code_for(api: Api, account: Account, params: dict[str, str]) -> dict[str, str]:
    """Authorize as `account` (signed in, consented): the redirect's query."""
    await sign_in_browser(api, account)
    await consent(api, account, params)
    base, query = location(await authorize(api, params))
    assert base == params["redirect_uri"].split("?")[0], query
    return query


async def grants(runtime: Runtime, user_id: uuid.UUID | None = None) -> list[OAuthGrant]:
    async with runtime.db.session(write=False) as session:
        stmt = select(OAuthGrant).order_by(OAuthGrant.created_at)
        if user_id is not None:
            stmt = stmt.where(OAuthGrant.user_id == user_id)
        return list((await session.scalars(stmt)).all())


async def login_session(runtime: Runtime, session_id: uuid.UUID) -> Session:
    async with runtime.db.session(write=False) as session:
        row = await session.get(Session, session_id)
        assert row is not None
        return row


async def browser_sessions(runtime: Runtime) -> list[OAuthBrowserSession]:
    async with runtime.db.session(write=False) as session:
        return list((await session.scalars(select(OAuthBrowserSession))).all())


async def age_login(runtime: Runtime, session_id: uuid.UUID, seconds: int) -> None:
    """Move a login session's start `seconds` into the past."""
    async with runtime.db.session() as session:
        await session.execute(
            update(Session)
            .where(Session.id == session_id)
            .values(created_at=utcnow() - timedelta(seconds=seconds))
        )


def session_id(account: Account) -> uuid.UUID:
    claims = jwt.decode(account.access_token, options={"verify_signature": False})
    return uuid.UUID(claims["sid"])


def id_token(runtime: Runtime, *, sub: str, aud: str, expired: bool = False, **extra: Any) -> str:
    """An ID token as the provider signs them (its key, its issuer)."""
    key = runtime.tokens.key
    now = int(utcnow().timestamp()) - (7200 if expired else 0)
    claims = {"iss": ISSUER, "sub": sub, "aud": aud, "iat": now, "exp": now + 300, **extra}
    return jwt.encode(
        claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "JWT"}
    )


async def audit_rows(runtime: Runtime, action: str) -> list[AuditEvent]:
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
        return list(rows.all())
