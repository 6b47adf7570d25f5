"""Password reset by email: the request tells nothing, the link works once, then expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import select

from gatehouse.events.models import OutboxEvent
from gatehouse.runtime import Runtime
from gatehouse.worker.embedded import InProcessRunner
from tests.emails.conftest import PUBLIC_URL, RESET, RESET_REQUEST, by_subject, email_rows, link
from tests.factories import Api, assert_envelope
from tests.logs import LogCapture
from tests.smtp import SmtpServer

NEW_PASSWORD = "quartz-Lantern-77-owl"


async def _login(api: Api, email: str, password: str) -> int:
    response = await api.client.post(
        "/api/v1/auth/token", json={"username": email, "password": password}
    )
    return response.status_code


async def _reset_token(api: Api, runner: InProcessRunner, server: SmtpServer, email: str) -> str:
    before = len(by_subject(server.to(email), "Reset"))
    assert (await api.client.post(RESET_REQUEST, json={"email": email})).status_code == 202
    await runner.drain()
    mails = by_subject(server.to(email), "Reset")
    assert len(mails) == before + 1
    page, token = link(mails[-1])
    assert page == f"{PUBLIC_URL}/reset-password"
    return token


async def test_the_request_answers_the_same_for_unknown_and_known_addresses(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    account = await api.create_user(email="known@example.com")
    await runner.drain()
    smtp_server.messages.clear()

    known = await api.client.post(RESET_REQUEST, json={"email": "Known@Example.com"})
    unknown = await api.client.post(RESET_REQUEST, json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    # Asked again within the minute: still 202, but no second mail in the inbox.
    assert (await api.client.post(RESET_REQUEST, json={"email": account.email})).status_code == 202
    await runner.drain()
    assert [str(m["To"]) for m in smtp_server.messages] == ["known@example.com"]
    assert len(await email_rows(runtime, kind="password_reset")) == 1

    assert_envelope(await api.client.post(RESET_REQUEST, json={"email": "not-an-email"}), 400)
    assert_envelope(await api.client.post(RESET_REQUEST, json={}), 400, "VALIDATION_ERROR")
    assert_envelope(
        await api.client.post(RESET, json={"token": "t", "new_password": NEW_PASSWORD, "x": 1}),
        400,
        "VALIDATION_ERROR",
    )


async def test_a_reset_works_once_and_ends_every_session(
    api: Api,
    runner: InProcessRunner,
    smtp_server: SmtpServer,
    runtime: Runtime,
    json_logs: LogCapture,
) -> None:
    account = await api.user()
    other = await api.user()
    await runner.drain()
    token = await _reset_token(api, runner, smtp_server, account.email)
    spare = await _reset_token_after_a_minute(api, runner, smtp_server, account.email)

    # The password policy applies, and a refused password leaves the link usable.
    weak = await api.client.post(RESET, json={"token": token, "new_password": "password"})
    assert "new_password" in assert_envelope(weak, 400, "VALIDATION_ERROR")["details"]

    response = await api.client.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})
    assert response.status_code == 204, response.text

    assert await _login(api, account.email, account.password) == 401
    assert await _login(api, account.email, NEW_PASSWORD) == 200
    # Every session ended: the old refresh token and access token are dead.
    refresh = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert_envelope(refresh, 400, "INVALID_GRANT")
    me = await api.client.get("/api/v1/users/me", headers=account.headers)
    assert me.status_code == 401
    assert (await api.client.get("/api/v1/users/me", headers=other.headers)).status_code == 200

    again = await api.client.post(RESET, json={"token": token, "new_password": "x" + NEW_PASSWORD})
    assert_envelope(again, 400, "INVALID_TOKEN")
    # The other outstanding link died with the reset.
    late = await api.client.post(RESET, json={"token": spare, "new_password": "y" + NEW_PASSWORD})
    assert_envelope(late, 400, "INVALID_TOKEN")

    async with runtime.db.session(write=False) as session:
        changed = (
            await session.scalars(
                select(OutboxEvent.payload).where(OutboxEvent.event_type == "user.password_changed")
            )
        ).all()
    assert [(e["data"]["user_id"], e["data"]["reason"]) for e in changed] == [
        (str(account.id), "reset")
    ]
    # Nothing secret in the logs: neither token, nor the new password.
    text = json_logs.text()
    assert "email.sent" in text
    for secret in (token, spare, NEW_PASSWORD):
        assert secret not in text


async def _reset_token_after_a_minute(
    api: Api, runner: InProcessRunner, server: SmtpServer, email: str
) -> str:
    # One mail per account per minute: a second link needs the next window.
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=61), tick=True):
        return await _reset_token(api, runner, server, email)


async def test_a_reset_link_expires(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    account = await api.create_user()
    await runner.drain()
    token = await _reset_token(api, runner, smtp_server, account.email)
    ttl = runtime.settings.worker.password_reset_ttl_seconds
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=ttl + 1), tick=True):
        expired = await api.client.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})
        assert_envelope(expired, 400, "INVALID_TOKEN")
    assert await _login(api, account.email, account.password) == 200
