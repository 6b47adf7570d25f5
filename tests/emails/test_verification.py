"""Sign-up → welcome and verification mails over real SMTP; the verification link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import select

from gatehouse.events.models import OutboxEvent
from gatehouse.runtime import Runtime
from gatehouse.users.models import Role, User
from gatehouse.worker.embedded import InProcessRunner
from tests.emails.conftest import (
    PUBLIC_URL,
    REGISTER,
    VERIFY,
    VERIFY_REQUEST,
    by_subject,
    email_rows,
    link,
    signup,
)
from tests.factories import PASSWORD, Api, assert_envelope
from tests.smtp import SmtpServer


async def _verified_at(runtime: Runtime, email: str) -> datetime | None:
    async with runtime.db.session(write=False) as session:
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None
        return user.email_verified_at


async def test_sign_up_sends_a_welcome_and_a_verification_email(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    body = signup()
    response = await api.client.post(REGISTER, json=body)
    assert response.status_code == 202, response.text
    await runner.drain()

    mails = await smtp_server.wait_for(2)
    assert len(mails) == 2
    assert {str(m["To"]) for m in mails} == {body["email"]}
    assert {str(m["From"]) for m in mails} == {runtime.settings.worker.email_from}
    [welcome] = by_subject(mails, "Welcome")
    assert welcome.get_content().startswith("Hello,\r\n")
    [verify] = by_subject(mails, "Confirm your email")
    page, token = link(verify)
    assert page == f"{PUBLIC_URL}/verify-email"
    assert len(token) == 43

    # The welcome flow records that it did: its row is sent, and the Message-ID is the row's.
    [row] = await email_rows(runtime, kind="welcome")
    assert (row.status, row.attempts, row.to_address) == ("sent", 1, body["email"])
    assert row.sent_at is not None
    assert str(welcome["Message-ID"]) == f"<{row.id}@localhost>"
    # The stored mail never holds the token: it is minted at send time, kept as a hash.
    [verify_row] = await email_rows(runtime, kind="verify_email")
    assert token not in verify_row.body
    assert "{{token}}" in verify_row.body


async def test_an_admin_created_user_gets_the_welcome_email_too(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer
) -> None:
    admin = await api.user(Role.admin)
    response = await api.client.post(
        "/api/v1/users",
        json={"email": "new.hire@example.com", "name": "New Hire", "password": PASSWORD},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    await runner.drain()
    await smtp_server.wait_for(4)  # the admin's own two, and the new user's
    mails = smtp_server.to("new.hire@example.com")
    assert len(by_subject(mails, "Welcome")) == 1
    assert len(by_subject(mails, "Confirm your email")) == 1


async def test_the_verification_link_works_once(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    body = signup()
    assert (await api.client.post(REGISTER, json=body)).status_code == 202
    await runner.drain()
    [verify] = by_subject(await smtp_server.wait_for(2), "Confirm")
    _, token = link(verify)

    response = await api.client.post(VERIFY, json={"token": token})
    assert response.status_code == 200, response.text
    assert response.json()["email"] == body["email"]
    assert response.json()["email_verified_at"]
    assert await _verified_at(runtime, body["email"]) is not None
    async with runtime.db.session(write=False) as session:
        updates = (
            await session.scalars(
                select(OutboxEvent.payload).where(OutboxEvent.event_type == "user.updated")
            )
        ).all()
    assert [u["data"]["changes"] for u in updates] == [{"email_verified": True}]

    again = await api.client.post(VERIFY, json={"token": token})
    unknown = await api.client.post(VERIFY, json={"token": "x" * 43})
    assert (
        assert_envelope(again, 400, "INVALID_TOKEN")["message"]
        == (assert_envelope(unknown, 400, "INVALID_TOKEN")["message"])
    )
    # Verified: asking again sends nothing.
    assert (await api.client.post(VERIFY_REQUEST, json={"email": body["email"]})).status_code == 202
    await runner.drain()
    assert len(smtp_server.messages) == 2


async def test_the_verification_link_expires_and_a_new_one_can_be_asked_for(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    body = signup()
    assert (await api.client.post(REGISTER, json=body)).status_code == 202
    await runner.drain()
    [verify] = by_subject(await smtp_server.wait_for(2), "Confirm")
    _, old = link(verify)

    ttl = runtime.settings.worker.email_verification_ttl_seconds
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=ttl + 1), tick=True):
        assert_envelope(await api.client.post(VERIFY, json={"token": old}), 400, "INVALID_TOKEN")
        assert await _verified_at(runtime, body["email"]) is None

        response = await api.client.post(VERIFY_REQUEST, json={"email": body["email"]})
        assert response.status_code == 202
        await runner.drain()
        [fresh] = by_subject(await smtp_server.wait_for(3), "Confirm")[1:]
        _, token = link(fresh)
        assert token != old
        assert (await api.client.post(VERIFY, json={"token": token})).status_code == 200
    assert await _verified_at(runtime, body["email"]) is not None


async def test_an_old_link_does_not_verify_a_changed_address(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    account = await api.user(email="first@example.com")
    await runner.drain()
    [first] = by_subject(smtp_server.to("first@example.com"), "Confirm")
    _, old = link(first)

    response = await api.client.patch(
        "/api/v1/users/me",
        json={"email": "second@example.com", "current_password": account.password},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    await runner.drain()
    [second] = by_subject(smtp_server.to("second@example.com"), "Confirm")
    _, new = link(second)

    assert_envelope(await api.client.post(VERIFY, json={"token": old}), 400, "INVALID_TOKEN")
    assert await _verified_at(runtime, "second@example.com") is None
    assert (await api.client.post(VERIFY, json={"token": new})).status_code == 200
    assert await _verified_at(runtime, "second@example.com") is not None
