"""Driving passkey ceremonies over HTTP with the software authenticator."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from gatehouse.audit.models import AuditEvent
from gatehouse.auth.models import Session
from gatehouse.kit.time import utcnow
from gatehouse.passkeys.models import Passkey, WebAuthnChallenge
from gatehouse.runtime import Runtime
from tests.factories import Account, Api
from tests.passkeys.authenticator import SoftwareAuthenticator

RP_ID = "login.example.test"
ORIGIN = "https://login.example.test"
SETTINGS: dict[str, Any] = {
    "public_url": ORIGIN,
    "webauthn_rp_id": RP_ID,
    "webauthn_origins": [ORIGIN, "https://admin.example.test"],
    "webauthn_rp_name": "Example Login",
}
OPTIONS = "/api/v1/auth/passkey/options"
VERIFY = "/api/v1/auth/passkey/verify"
MINE = "/api/v1/users/me/passkeys"


async def registration_options(
    api: Api, account: Account, password: str | None = None
) -> httpx.Response:
    body = {"current_password": password} if password is not None else {}
    return await api.client.post(f"{MINE}/registration-options", json=body, headers=account.headers)


async def register(
    api: Api,
    account: Account,
    device: SoftwareAuthenticator,
    name: str,
    *,
    password: str | None = None,
) -> dict[str, Any]:
    """A passkey registered through both calls; the 201's body."""
    started = await registration_options(api, account, password)
    assert started.status_code == 200, started.text
    credential = device.create(started.json()["options"])
    done = await api.client.post(
        MINE,
        json={
            "challenge_id": started.json()["challenge_id"],
            "name": name,
            "credential": credential,
        },
        headers=account.headers,
    )
    assert done.status_code == 201, done.text
    body: dict[str, Any] = done.json()
    return body


async def login_options(api: Api, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await api.client.post(OPTIONS, json=body or {})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def try_login(
    api: Api, device: SoftwareAuthenticator, **knobs: Any
) -> tuple[httpx.Response, str]:
    """A passwordless login attempt; the answer and the challenge id it spent."""
    ceremony = await login_options(api)
    credential = device.get(ceremony["options"], **knobs)
    response = await api.client.post(
        VERIFY, json={"challenge_id": ceremony["challenge_id"], "credential": credential}
    )
    return response, ceremony["challenge_id"]


async def passwordless(api: Api, account: Account, device: SoftwareAuthenticator) -> Account:
    """`account` logged in again, by passkey alone (a session with a fresh step-up)."""
    response, _ = await try_login(api, device)
    assert response.status_code == 200, response.text
    again = Account(account.id, account.email, account.password, account.role)
    again.access_token = response.json()["access_token"]
    again.refresh_token = response.json()["refresh_token"]
    return again


async def audit_of(runtime: Runtime, prefix: str = "passkey.") -> list[AuditEvent]:
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action.startswith(prefix))
            .order_by(AuditEvent.occurred_at, AuditEvent.id)
        )
        return list(rows.all())


async def stored_passkeys(runtime: Runtime) -> list[Passkey]:
    async with runtime.db.session(write=False) as session:
        return list((await session.scalars(select(Passkey).order_by(Passkey.created_at))).all())


async def challenge_row(runtime: Runtime, challenge_id: str) -> WebAuthnChallenge | None:
    async with runtime.db.session(write=False) as session:
        found: WebAuthnChallenge | None = await session.scalar(
            select(WebAuthnChallenge).where(WebAuthnChallenge.id == uuid.UUID(challenge_id))
        )
        return found


async def age_step_up(runtime: Runtime, account: Account) -> None:
    """The account's login session checked its second factor long ago."""
    async with runtime.db.session() as session:
        await session.execute(
            update(Session)
            .where(Session.user_id == account.id, Session.mfa_verified_at.is_not(None))
            .values(mfa_verified_at=utcnow() - timedelta(hours=1))
        )
