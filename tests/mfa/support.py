"""Shared pieces of the MFA tests: enrolling through the API, codes computed here from
the secret (as an authenticator app would), a clock that starts just after a time
step begins, and reads of what the database holds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
import pyotp
import time_machine
from sqlalchemy import func, select

from gatehouse.audit.models import AuditEvent
from gatehouse.auth.models import Session
from gatehouse.emails.models import EmailMessage
from gatehouse.runtime import Runtime
from tests.factories import Account, Api

TOKEN = "/api/v1/auth/token"
VERIFY = "/api/v1/auth/mfa/verify"
STEP_UP = "/api/v1/auth/mfa/step-up"
MFA = "/api/v1/users/me/mfa"
TOTP = f"{MFA}/totp"
REFRESH = "/api/v1/auth/refresh"


@dataclass
class Enrolled:
    account: Account
    secret: str
    recovery_codes: list[str]

    def code(self, offset_steps: int = 0) -> str:
        """The app's code now, or `offset_steps` time steps away."""
        return pyotp.TOTP(self.secret).at(time.time() + 30 * offset_steps)


@contextmanager
def step_start(extra_seconds: float = 0) -> Iterator[time_machine.Traveller]:
    """A ticking clock 3 s into a fresh time step (plus `extra_seconds`): a test that
    takes less than 25 s sees no step change it did not ask for."""
    start = (int(time.time()) // 30 + 1) * 30 + 3 + extra_seconds
    with time_machine.travel(datetime.fromtimestamp(start, UTC), tick=True) as traveller:
        yield traveller


def later(traveller: time_machine.Traveller, seconds: float) -> None:
    """Jump ahead at least `seconds`, landing 3 s into a time step again."""
    step = int(time.time() + seconds) // 30 + 1
    traveller.move_to(datetime.fromtimestamp(step * 30 + 3, UTC))


async def enrol(api: Api, account: Account) -> Enrolled:
    """Set up an authenticator app for a logged-in account, as its owner would."""
    started = await api.client.post(
        TOTP, json={"current_password": account.password}, headers=account.headers
    )
    assert started.status_code == 201, started.text
    secret = started.json()["secret"]
    confirmed = await api.client.post(
        f"{TOTP}/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=account.headers
    )
    assert confirmed.status_code == 200, confirmed.text
    return Enrolled(account, secret, confirmed.json()["recovery_codes"])


async def password_step(api: Api, account: Account, **headers: str) -> dict[str, Any]:
    """The login's first step for an account with MFA: the MFA_REQUIRED details."""
    response = await api.client.post(
        TOKEN, json={"username": account.email, "password": account.password}, headers=headers
    )
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "MFA_REQUIRED", error
    details: dict[str, Any] = error["details"]
    return details


async def mfa_login(api: Api, enrolled: Enrolled, code: str | None = None) -> Account:
    """Both steps; the account gets the new pair."""
    details = await password_step(api, enrolled.account)
    response = await api.client.post(
        VERIFY,
        json={"mfa_token": details["mfa_token"], "method": "totp", "code": code or enrolled.code()},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    account = enrolled.account
    account.access_token, account.refresh_token = body["access_token"], body["refresh_token"]
    return account


def claims(access_token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(access_token, options={"verify_signature": False})
    return decoded


async def count_sessions(runtime: Runtime, user_id: uuid.UUID) -> int:
    async with runtime.db.session(write=False) as session:
        found = await session.scalar(
            select(func.count()).select_from(Session).where(Session.user_id == user_id)
        )
    return int(found or 0)


async def audit_of(runtime: Runtime, action: str, user_id: uuid.UUID) -> list[AuditEvent]:
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == action, AuditEvent.target_id == str(user_id))
            .order_by(AuditEvent.id)
        )
        return list(rows.all())


async def mails_to(runtime: Runtime, user_id: uuid.UUID) -> list[EmailMessage]:
    """The mails queued to a user, oldest first, as stored (address, subject, body)."""
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(
            select(EmailMessage)
            .where(EmailMessage.user_id == user_id)
            .order_by(EmailMessage.created_at)
        )
        return list(rows.all())


async def mails_of(runtime: Runtime, user_id: uuid.UUID) -> list[str]:
    """The kinds of the mails queued to a user, oldest first."""
    return [mail.kind for mail in await mails_to(runtime, user_id)]
