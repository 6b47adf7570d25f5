"""Every way to move one's own email asks for the password, and every email change mails
the address left, with a link that takes it back (issue "Hardening", item 6)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from gatehouse.audit.models import AuditEvent
from gatehouse.auth.models import Session
from gatehouse.runtime import Runtime
from gatehouse.users.models import Role, User
from gatehouse.worker.embedded import InProcessRunner
from tests.emails.conftest import PUBLIC_URL, by_subject, email_rows, link
from tests.factories import PASSWORD, Account, Api, assert_envelope
from tests.smtp import SmtpServer

UNDO = "/api/v1/auth/email-change/undo"
CHANGED = "was changed"


async def _stored(runtime: Runtime, account: Account) -> User:
    async with runtime.db.session(write=False) as session:
        user = await session.get(User, account.id)
        assert user is not None
        return user


async def _undo_mail(smtp_server: SmtpServer, address: str) -> tuple[str, str]:
    """(page, token) of the one notice mailed to `address`, waited for."""
    deadline = asyncio.get_running_loop().time() + 10
    while not by_subject(smtp_server.to(address), CHANGED):
        assert asyncio.get_running_loop().time() < deadline, "no notice to " + address
        await asyncio.sleep(0.05)
    [mail] = by_subject(smtp_server.to(address), CHANGED)
    assert str(mail["To"]) == address
    return link(mail)


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_an_admin_moving_their_own_email_by_the_admin_route_needs_the_password(
    api: Api, method: str
) -> None:
    admin = await api.user(Role.admin)
    url = f"/api/v1/users/{admin.id}"
    body = {"email": "moved@example.com"}
    if method == "PUT":
        body |= {"name": "Test Person", "role": "admin"}

    missing = await api.client.request(method, url, json=body, headers=admin.headers)
    assert_envelope(missing, 403, "REAUTHENTICATION_REQUIRED")
    wrong = await api.client.request(
        method, url, json=body | {"current_password": "not-the-password-1"}, headers=admin.headers
    )
    assert_envelope(wrong, 403, "INVALID_CURRENT_PASSWORD")
    assert (await _stored(api.runtime, admin)).email == admin.email

    right = await api.client.request(
        method, url, json=body | {"current_password": PASSWORD}, headers=admin.headers
    )
    assert right.status_code == 200, right.text
    assert right.json()["email"] == "moved@example.com"


async def test_an_admin_moves_someone_elses_email_without_their_own_password(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer
) -> None:
    admin = await api.user(Role.admin)
    user = await api.create_user()
    response = await api.client.patch(
        f"/api/v1/users/{user.id}", json={"email": "elsewhere@example.com"}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    await runner.drain()
    page, token = await _undo_mail(smtp_server, user.email)
    assert page == f"{PUBLIC_URL}/undo-email-change"
    assert len(token) == 43
    [mail] = by_subject(smtp_server.to(user.email), CHANGED)
    assert "elsewhere@example.com" in mail.get_content()


async def test_the_undo_link_restores_the_address_ends_sessions_and_works_once(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    me = await api.user()
    other_session = await api.login(
        Account(id=me.id, email=me.email, password=me.password, role=me.role)
    )
    moved = await api.client.patch(
        "/api/v1/users/me",
        json={"email": "thief@example.com", "current_password": PASSWORD},
        headers=me.headers,
    )
    assert moved.status_code == 200, moved.text
    await runner.drain()
    _, token = await _undo_mail(smtp_server, me.email)
    # The stored mail never holds the token.
    [row] = await email_rows(runtime, kind="email_changed")
    assert token not in row.body
    assert row.to_address == me.email

    undone = await api.client.post(UNDO, json={"token": token})
    assert undone.status_code == 204, undone.text

    user = await _stored(runtime, me)
    assert user.email == me.email
    assert user.email_verified_at is not None  # the link was opened from its mail
    for account in (me, other_session):
        ended = await api.client.get("/api/v1/users/me", headers=account.headers)
        assert ended.status_code == 401
    async with runtime.db.session(write=False) as session:
        sessions = (await session.scalars(select(Session).where(Session.user_id == me.id))).all()
        audit = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "auth.email_change_undo")
            )
        ).all()
    assert {s.revoked_reason for s in sessions} == {"email_change_undone"}
    assert [(a.outcome, a.target_id) for a in audit] == [("success", str(me.id))]

    again = await api.client.post(UNDO, json={"token": token})
    assert_envelope(again, 400, "INVALID_TOKEN")
    # A notice's own undo writes no new notice: the undo cannot be undone by the thief.
    await runner.drain()
    assert len(by_subject(smtp_server.messages, CHANGED)) == 1


async def test_one_undo_kills_the_undo_link_the_thiefs_address_got(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    me = await api.user()
    for address in ("thief-1@example.com", "thief-2@example.com"):
        response = await api.client.patch(
            "/api/v1/users/me",
            json={"email": address, "current_password": PASSWORD},
            headers=me.headers,
        )
        assert response.status_code == 200, response.text
    await runner.drain()
    _, mine = await _undo_mail(smtp_server, me.email)
    _, thiefs = await _undo_mail(smtp_server, "thief-1@example.com")

    assert (await api.client.post(UNDO, json={"token": mine})).status_code == 204
    assert (await _stored(runtime, me)).email == me.email
    assert_envelope(await api.client.post(UNDO, json={"token": thiefs}), 400, "INVALID_TOKEN")
    assert (await _stored(runtime, me)).email == me.email


async def test_the_undo_link_expires_after_seven_days(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    me = await api.user()
    response = await api.client.patch(
        "/api/v1/users/me",
        json={"email": "later@example.com", "current_password": PASSWORD},
        headers=me.headers,
    )
    assert response.status_code == 200, response.text
    await runner.drain()
    _, token = await _undo_mail(smtp_server, me.email)
    with time_machine.travel(datetime.now(UTC) + timedelta(days=7, seconds=1), tick=True):
        assert_envelope(await api.client.post(UNDO, json={"token": token}), 400, "INVALID_TOKEN")
    assert (await _stored(runtime, me)).email == "later@example.com"
