"""Shared pieces of the AC and VAL security tests: the operations the app serves, a
small world of users to aim requests at, valid bodies, and a whole-database snapshot."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode

import jwt
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import Table, select, text, update

from gatehouse.app import create_app
from gatehouse.clients.schemas import ClientCreate
from gatehouse.clients.service import ClientService
from gatehouse.users.models import User
from gatehouse.webhooks.schemas import WebhookCreate
from gatehouse.webhooks.service import WebhookService
from tests.factories import Account, Api

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# A password the policy accepts for every generated account (not common, no email part).
NEW_PASSWORD = "Glacier-Mango-7731"
OWN, OTHER = "own", "other"
# Never resolved in tests (example.com has no such name), so never refused as private.
WEBHOOK_URL = "https://hooks.example.com/gatehouse"
USERS = cast("Table", User.__table__)
Operation = tuple[str, str]


def build_app(api: Api) -> FastAPI:
    return create_app(runtime=api.runtime)


def documented_operations(app: FastAPI) -> set[Operation]:
    """(METHOD, path) of every operation in the app's own OpenAPI document."""
    return {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method.upper() in HTTP_METHODS
    }


def served_operations(app: FastAPI) -> set[Operation]:
    """Every (METHOD, path) the app answers, documented or not (the docs pages, say)."""
    return {
        (method, str(context.path_format))
        for context in iter_route_contexts(app.routes)
        for method in context.methods or ()
    }


def body_operations(app: FastAPI) -> set[Operation]:
    """Operations whose OpenAPI entry declares a JSON request body."""
    return {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    }


def session_id(account: Account) -> uuid.UUID:
    """The session (`sid`) behind an access token, read without verifying it."""
    claims = jwt.decode(account.access_token, options={"verify_signature": False})
    return uuid.UUID(claims["sid"])


def new_email(prefix: str = "new") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


@dataclass
class World:
    """Whom one request is aimed at: the caller (None = anonymous) and another user."""

    actor: Account | None
    other: Account
    # A second session of the caller, so "end my own session" does not end the caller's.
    actor_second_session: uuid.UUID | None = None
    # A webhook subscription for the /api/v1/webhooks/{webhook_id} operations.
    webhook_id: uuid.UUID | None = None
    # A confidential OAuth client for the /api/v1/clients/{id} operations.
    client_id: uuid.UUID | None = None
    # The same client's public client_id, for the OAuth routes (consent, connected apps).
    oauth_client_id: str | None = None

    @property
    def someone(self) -> Account:
        """The caller, or the other user when the caller is anonymous."""
        return self.actor or self.other


async def make_world(api: Api, role: str | None, *, second_session: bool = False) -> World:
    other = await api.user("user", name="Other Person")
    actor = await api.user(role) if role else None
    second = None
    if actor is not None and second_session:
        extra = Account(actor.id, actor.email, actor.password, actor.role)
        second = session_id(await api.login(extra))
    client_pk, oauth_client_id = await make_client(api)
    return World(
        actor=actor,
        other=other,
        actor_second_session=second,
        webhook_id=await make_webhook(api),
        client_id=client_pk,
        oauth_client_id=oauth_client_id,
    )


async def make_webhook(api: Api) -> uuid.UUID:
    async with api.runtime.unit_of_work() as uow:
        service = WebhookService(uow, api.runtime.settings.worker, api.runtime.encryption)
        hook = await service.create(WebhookCreate(url=WEBHOOK_URL, event_types=["user.deleted"]))
    return hook.subscription.id


CLIENT_BODY: dict[str, Any] = {
    "name": "Matrix App",
    "type": "confidential",
    "redirect_uris": ["https://app.example.com/callback"],
    "scopes": ["openid"],
    "grant_types": ["authorization_code"],
}


async def make_client(api: Api) -> tuple[uuid.UUID, str]:
    """A client: its id in the admin API and its public client_id."""
    async with api.runtime.unit_of_work() as uow:
        issued = await ClientService(uow).create(ClientCreate.model_validate(CLIENT_BODY))
    return issued.client.id, issued.client.client_id


def authorize_query(world: World) -> str:
    """A valid authorize request of the world's client (for the consent routes)."""
    return urlencode(
        {
            "response_type": "code",
            "client_id": world.oauth_client_id or "",
            "redirect_uri": CLIENT_BODY["redirect_uris"][0],
            "scope": "openid",
            "state": "matrix",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGEdVmHIvU",
            "code_challenge_method": "S256",
        }
    )


def target(world: World, variant: str) -> Account:
    return world.actor if variant == OWN and world.actor is not None else world.other


def fill_path(path: str, world: World, variant: str) -> str:
    who = target(world, variant)
    if "{session_id}" in path:
        sid = (
            world.actor_second_session
            if who is world.actor and world.actor_second_session
            else session_id(who)
        )
        path = path.replace("{session_id}", str(sid))
    path = path.replace("{webhook_id}", str(world.webhook_id or uuid.UUID(int=0)))
    if path.startswith("/api/v1/clients/"):
        path = path.replace("{id}", str(world.client_id or uuid.UUID(int=0)))
    path = path.replace("{passkey_id}", str(uuid.UUID(int=0)))
    path = path.replace("{client_id}", world.oauth_client_id or "gh_none")
    return path.replace("{user_id}", str(who.id))


def valid_body(method: str, path: str, world: World, variant: str) -> dict[str, Any] | None:
    """A body the operation accepts from a caller allowed to make it."""
    who = world.someone
    if (method, path) == ("POST", "/api/v1/auth/token"):
        return {"username": who.email, "password": who.password}
    if (method, path) == ("POST", "/api/v1/auth/refresh"):
        return {"refresh_token": who.refresh_token}
    if (method, path) == ("POST", "/api/v1/auth/logout"):
        return {"all": False}
    if (method, path) == ("POST", "/api/v1/auth/mfa/verify"):
        return {"mfa_token": "not-a-token-anyone-was-given", "method": "totp", "code": "123456"}
    if (method, path) == ("POST", "/api/v1/auth/mfa/step-up"):
        return {"method": "totp", "code": "123456"}
    if (method, path) == ("POST", "/api/v1/users/me/mfa/totp"):
        return {"current_password": who.password}
    if (method, path) == ("POST", "/api/v1/users/me/mfa/totp/confirm"):
        return {"code": "123456"}
    if (method, path) == ("POST", "/api/v1/auth/register"):
        return {"email": new_email("reg"), "name": "New Person", "password": NEW_PASSWORD}
    if (method, path) == ("POST", "/api/v1/users"):
        return {
            "email": new_email("made"),
            "name": "Made Person",
            "password": NEW_PASSWORD,
            "role": "user",
        }
    if path in ("/api/v1/auth/verify-email/request", "/api/v1/auth/password-reset/request"):
        return {"email": who.email}
    if path in ("/api/v1/auth/verify-email", "/api/v1/auth/email-change/undo"):
        # Public, and the same for every role: an unknown token is 400 INVALID_TOKEN.
        return {"token": "not-a-token-anyone-was-sent"}
    if path == "/api/v1/auth/password-reset":
        return {"token": "not-a-token-anyone-was-sent", "new_password": NEW_PASSWORD}
    if (method, path) == ("POST", "/api/v1/users/me/password"):
        return {"current_password": who.password, "new_password": NEW_PASSWORD}
    if method in ("PUT", "PATCH") and path == "/api/v1/users/me":
        return {"name": "Renamed Person"}
    if (method, path) == ("PUT", "/api/v1/users/{user_id}"):
        # The target keeps its role: the cell is about who may edit, not role rules.
        return {"name": "Renamed Person", "role": target(world, variant).role.value}
    if (method, path) == ("PATCH", "/api/v1/users/{user_id}"):
        return {"name": "Renamed Person"}
    if (method, path) == ("POST", "/api/v1/webhooks"):
        return {"url": WEBHOOK_URL, "event_types": ["user.deleted"]}
    if (method, path) == ("PATCH", "/api/v1/webhooks/{webhook_id}"):
        return {"description": "Renamed"}
    if (method, path) == ("POST", "/api/v1/clients"):
        return CLIENT_BODY
    if (method, path) == ("PATCH", "/api/v1/clients/{id}"):
        return {"name": "Renamed App"}
    if path == "/api/v1/auth/passkey/options":
        return {}
    if path in ("/api/v1/oauth2/consent", "/api/v1/oauth2/consent/deny"):
        return {"query": authorize_query(world)}
    if path in ("/api/v1/auth/passkey/verify", "/api/v1/users/me/passkeys"):
        # Well-formed, but no authenticator made it: it never verifies.
        body: dict[str, Any] = {"challenge_id": str(uuid.UUID(int=0)), "credential": {}}
        return {**body, "name": "Laptop"} if path.startswith("/api/v1/users") else body
    if path == "/api/v1/users/me/passkeys/registration-options":
        return {"current_password": who.password}
    if (method, path) == ("PATCH", "/api/v1/users/me/passkeys/{passkey_id}"):
        return {"name": "Renamed key"}
    if path.startswith("/oauth2/"):
        # Form-encoded OAuth requests: no JSON body is one (tests/oidc sends real ones).
        return None
    if path.endswith(
        (
            "/rotate-secret",
            "/test",
            "/restore",
            "/disable",
            "/enable",
            "/recovery-codes",
            "/authentication-options",
            "/oauth2/session",
            # A form when a relying party posts it; the matrix sends none.
            "/oauth2/end_session",
        )
    ):
        return None  # no body
    if method in WRITE_METHODS and method != "DELETE":
        raise AssertionError(f"no valid body known for {method} {path}: add one")
    return None


async def snapshot(api: Api) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order: compare before and after."""
    tables = {"users": "id", "sessions": "id", "refresh_tokens": "token_hash"}
    result: dict[str, list[tuple[Any, ...]]] = {}
    async with api.runtime.db.session(write=False) as s:
        for table, key in tables.items():
            rows = await s.execute(text(f"SELECT * FROM {table} ORDER BY {key}"))
            result[table] = [tuple(row) for row in rows]
    return result


async def user_row(api: Api, user_id: uuid.UUID) -> dict[str, Any]:
    """The user's row as stored, every column."""
    async with api.runtime.db.session(write=False) as s:
        row = (await s.execute(select(USERS).where(USERS.c.id == user_id))).one()
    return dict(row._mapping)


async def set_role_in_db(api: Api, user_id: uuid.UUID, role: str) -> None:
    """Change a role behind the API's back (no auth_version bump): the DB is the truth."""
    async with api.runtime.db.session() as s:
        await s.execute(update(USERS).where(USERS.c.id == user_id).values(role=role))
