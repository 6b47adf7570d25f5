"""Shared pieces of the token-side suites: clients, a person logged in, a code made the
way the authorize endpoint makes one, calls to the back channel as a relying party
makes them, and ID tokens verified as a relying party does (PyJWT and the JWKS)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import jwt
from sqlalchemy import select, update

from gatehouse.auth.models import Session
from gatehouse.clients.schemas import ClientCreate
from gatehouse.clients.service import ClientService
from gatehouse.kit.time import utcnow
from gatehouse.oidc import protocol
from gatehouse.oidc.models import OAuthGrant
from gatehouse.oidc.repository import GrantRepository
from gatehouse.runtime import Runtime
from gatehouse.users.models import User
from tests.factories import Account, Api

TOKEN = protocol.TOKEN_PATH
USERINFO = protocol.USERINFO_PATH
REVOKE = protocol.REVOCATION_PATH
INTROSPECT = protocol.INTROSPECTION_PATH
CALLBACK = "https://rp.example.com/callback"
NEW_PASSWORD = "Another-Quiet-Harbour-77"


@dataclass
class RP:
    """A registered client as its operator holds it."""

    pk: uuid.UUID
    client_id: str
    secret: str | None
    redirect_uri: str = CALLBACK

    @property
    def basic(self) -> dict[str, str]:
        pair = f"{self.client_id}:{self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def client_body(**changes: Any) -> dict[str, Any]:
    """A confidential web app with every user scope, code + refresh."""
    return {
        "name": "Relying Party",
        "type": "confidential",
        "redirect_uris": [CALLBACK],
        "scopes": ["openid", "profile", "email", "offline_access", "roles"],
        "grant_types": ["authorization_code", "refresh_token"],
        **changes,
    }


async def make_client(runtime: Runtime, **changes: Any) -> RP:
    async with runtime.unit_of_work() as uow:
        issued = await ClientService(uow).create(
            ClientCreate.model_validate(client_body(**changes))
        )
    return RP(issued.client.id, issued.client.client_id, issued.secret)


async def make_public_client(runtime: Runtime, **changes: Any) -> RP:
    body = {
        "type": "public",
        "scopes": ["openid", "profile"],
        "grant_types": ["authorization_code"],
    }
    return await make_client(runtime, **{**body, **changes})


async def set_client_enabled(runtime: Runtime, rp: RP, enabled: bool) -> None:
    async with runtime.unit_of_work() as uow:
        await ClientService(uow).set_enabled(rp.pk, enabled, None)


def pkce() -> tuple[str, str]:
    """A code_verifier and its S256 code_challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def session_of(account: Account) -> uuid.UUID:
    """The login session behind a first-party access token (its `sid`, unverified)."""
    claims = jwt.decode(account.access_token, options={"verify_signature": False})
    return uuid.UUID(claims["sid"])


@dataclass
class Code:
    code: str
    verifier: str
    grant_id: uuid.UUID
    redirect_uri: str


async def issue_code(
    api: Api,
    rp: RP,
    account: Account,
    scopes: str = "openid profile email offline_access",
    *,
    nonce: str | None = "n-0S6_WzA2Mj",
) -> Code:
    """An authorization code for `account` (logged in through the API), inserted as the
    authorize endpoint inserts one."""
    verifier, challenge = pkce()
    sid = session_of(account)
    async with api.runtime.db.session() as session:
        login = await session.get(Session, sid)
        user = await session.get(User, account.id)
        assert login is not None
        assert user is not None
        grant, code = protocol.new_code_grant(
            client_pk=rp.pk,
            user_id=account.id,
            session_id=sid,
            auth_version=user.auth_version,
            auth_time=login.created_at,
            amr=(login.amr or "pwd").split(),
            scopes=scopes.split(),
            redirect_uri=rp.redirect_uri,
            code_challenge=challenge,
            nonce=nonce,
            now=utcnow(),
        )
        GrantRepository(session).add(grant)
    return Code(code, verifier, grant.id, rp.redirect_uri)


def code_form(issued: Code, /, **changes: str | None) -> dict[str, str]:
    form: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": issued.code,
        "redirect_uri": issued.redirect_uri,
        "code_verifier": issued.verifier,
        **changes,
    }
    return {k: v for k, v in form.items() if v is not None}


async def post_form(
    api: Api,
    path: str,
    form: dict[str, str],
    rp: RP | None = None,
    *,
    auth: str = "basic",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A back-channel call as the relying party makes it: `auth` basic, post, or none."""
    data = dict(form)
    sent = dict(headers or {})
    if rp is not None:
        if auth == "basic":
            sent.update(rp.basic)
        elif auth == "post":
            data.update(client_id=rp.client_id, client_secret=rp.secret or "")
        else:
            data["client_id"] = rp.client_id
    return await api.client.post(path, data=data, headers=sent)


async def exchange(
    api: Api,
    rp: RP,
    account: Account,
    scopes: str = "openid profile email offline_access",
    **kw: Any,
) -> dict[str, Any]:
    """A code issued and exchanged: the token response's body."""
    code = await issue_code(api, rp, account, scopes, **kw)
    auth = "basic" if rp.secret else "none"
    response = await post_form(api, TOKEN, code_form(code), rp, auth=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(api: Api, rp: RP, token: str, **extra: str) -> httpx.Response:
    return await post_form(
        api, TOKEN, {"grant_type": "refresh_token", "refresh_token": token, **extra}, rp
    )


async def userinfo(api: Api, access_token: str) -> httpx.Response:
    return await api.client.get(USERINFO, headers={"Authorization": f"Bearer {access_token}"})


async def introspect(api: Api, rp: RP, token: str) -> dict[str, Any]:
    response = await post_form(api, INTROSPECT, {"token": token}, rp)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def verify_with_jwks(api: Api, token: str, audience: str) -> dict[str, Any]:
    """An ID token verified as a relying party does: the key from the JWKS by kid,
    RS256 only, the issuer from discovery, the audience its own client_id."""
    discovery = (await api.client.get(protocol.DISCOVERY_PATH)).json()
    jwks = (await api.client.get(protocol.JWKS_PATH)).json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks)[kid]
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=discovery["id_token_signing_alg_values_supported"],
        audience=audience,
        issuer=discovery["issuer"],
    )
    return claims


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """An RFC 6749 §5.2 refusal: the error code, a description, never the envelope."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "error_description"}, body
    assert body["error"] == error, body
    assert response.headers["cache-control"] == "no-store"
    return body


async def grant_row(runtime: Runtime, grant_id: uuid.UUID) -> OAuthGrant:
    async with runtime.db.session(write=False) as session:
        grant = await session.get(OAuthGrant, grant_id)
        assert grant is not None
        return grant


async def grant_id_of(access_token: str) -> uuid.UUID:
    return uuid.UUID(jwt.decode(access_token, options={"verify_signature": False})["gid"])


async def expire_code(runtime: Runtime, grant_id: uuid.UUID) -> None:
    async with runtime.db.session() as session:
        await session.execute(
            update(OAuthGrant)
            .where(OAuthGrant.id == grant_id)
            .values(code_expires_at=utcnow() - timedelta(seconds=1))
        )


async def grants_of(runtime: Runtime, client_pk: uuid.UUID) -> list[OAuthGrant]:
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(
            select(OAuthGrant).where(OAuthGrant.oauth_client_id == client_pk)
        )
        return list(rows.all())


async def change_password(api: Api, account: Account) -> None:
    response = await api.client.post(
        "/api/v1/users/me/password",
        json={"current_password": account.password, "new_password": NEW_PASSWORD},
        headers=account.headers,
    )
    assert response.status_code == 204, response.text
    account.password = NEW_PASSWORD
