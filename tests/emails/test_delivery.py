"""Delivery: SMTP down and back, retries, idempotent sends, give-up, cleanup."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from gatehouse.emails import service
from gatehouse.emails.models import EmailMessage as EmailRow
from gatehouse.recovery.models import ActionToken
from gatehouse.runtime import Runtime
from gatehouse.worker.embedded import InProcessRunner
from tests.emails.conftest import (
    REGISTER,
    RESET,
    RESET_REQUEST,
    VERIFY,
    by_subject,
    email_rows,
    link,
    signup,
)
from tests.factories import Api
from tests.smtp import SmtpServer


async def test_mail_waits_while_smtp_is_down_and_goes_out_once_it_is_back(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    smtp_server.stop()
    body = signup()
    assert (await api.client.post(REGISTER, json=body)).status_code == 202
    await runner.drain()

    rows = await email_rows(runtime)
    assert {r.kind for r in rows} == {"welcome", "verify_email"}
    for row in rows:
        assert (row.status, row.attempts, row.sent_at) == ("pending", 1, None)
        assert row.last_error
        assert row.next_attempt_at is not None
    # Not due yet: a sweep now sends nothing.
    await runner.run_now("maintenance.sweep")
    await runner.drain()
    assert {r.attempts for r in await email_rows(runtime)} == {1}

    smtp_server.start()
    later = datetime.now(UTC) + timedelta(seconds=service.backoff_seconds(1) + 1)
    with time_machine.travel(later, tick=True):
        await runner.run_now("maintenance.sweep")
        await runner.drain()
        mails = await smtp_server.wait_for(2)
        # Sent rows are not sent again, however often the job runs.
        for row in await email_rows(runtime):
            await runner.run_now(service.SEND_JOB, {"email_id": str(row.id)})
        await runner.run_now("maintenance.sweep")
        await runner.drain()

    assert len(smtp_server.messages) == 2
    assert set(smtp_server.message_ids().values()) == {1}
    rows = await email_rows(runtime)
    assert {(r.status, r.attempts) for r in rows} == {("sent", 2)}
    assert {f"<{r.id}@localhost>" for r in rows} == set(smtp_server.message_ids())
    # The verification link minted on the successful attempt works.
    [verify] = [m for m in mails if "Confirm" in str(m["Subject"])]
    assert (await api.client.post(VERIFY, json={"token": link(verify)[1]})).status_code == 200


async def test_a_mail_is_given_up_after_the_last_attempt(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    account = await api.create_user()
    await runner.drain()
    smtp_server.stop()
    assert (await api.client.post(RESET_REQUEST, json={"email": account.email})).status_code == 202
    await runner.drain()
    [row] = await email_rows(runtime, kind="password_reset")

    for attempt in range(2, service.MAX_ATTEMPTS + 1):
        # Just past the retry the last attempt set (its backoff counts from when that
        # attempt failed, which a loaded machine can put seconds after it began).
        assert row.next_attempt_at is not None, f"no retry set before attempt {attempt}"
        moment = row.next_attempt_at + timedelta(seconds=1)
        with time_machine.travel(moment, tick=True):
            await runner.run_now(service.SEND_JOB, {"email_id": str(row.id)})
        [row] = await email_rows(runtime, kind="password_reset")
        assert row.attempts == attempt
    assert (row.status, row.attempts) == ("failed", service.MAX_ATTEMPTS)
    assert "Connect" in (row.last_error or "")
    # The links minted for the failed attempts are of no use to anyone: none arrived.
    smtp_server.start()
    with time_machine.travel(moment + timedelta(hours=3), tick=True):
        await runner.run_now("maintenance.sweep")
        await runner.drain()
    assert by_subject(smtp_server.to(account.email), "Reset") == []


@pytest.mark.parametrize("smtp_options", [{"refuse_first_data": True}])
async def test_a_refused_send_is_retried_with_the_same_message_id(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    # The server answers the first DATA with 451: that row backs off, then goes out.
    account = await api.create_user()
    await runner.drain()
    rows = await email_rows(runtime)
    assert sorted(r.status for r in rows) == ["pending", "sent"]
    [waiting] = [r for r in rows if r.status == "pending"]
    assert "451" in (waiting.last_error or "")
    later = datetime.now(UTC) + timedelta(seconds=service.backoff_seconds(1) + 1)
    with time_machine.travel(later, tick=True):
        await runner.run_now("maintenance.sweep")
        await runner.drain()
    assert len(smtp_server.to(account.email)) == 2
    assert set(smtp_server.message_ids().values()) == {1}
    assert {r.status for r in await email_rows(runtime)} == {"sent"}


async def test_cleanup_removes_spent_tokens_and_old_mail(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    account = await api.create_user()
    await runner.drain()
    assert (await api.client.post(RESET_REQUEST, json={"email": account.email})).status_code == 202
    await runner.drain()
    [*_, reset] = smtp_server.to(account.email)
    # Used, and still-valid tokens: only the used one goes.
    response = await api.client.post(
        RESET, json={"token": link(reset)[1], "new_password": "quartz-Lantern-77-owl"}
    )
    assert response.status_code == 204

    async def counts() -> tuple[int, int]:
        async with runtime.db.session(write=False) as session:
            tokens = await session.scalar(select(func.count()).select_from(ActionToken))
            mails = await session.scalar(select(func.count()).select_from(EmailRow))
        return int(tokens or 0), int(mails or 0)

    assert await counts() == (2, 3)
    await service.cleanup(runtime)
    assert await counts() == (1, 3)  # the verification token is still good

    later = datetime.now(UTC) + timedelta(days=service.FINISHED_RETENTION_DAYS, seconds=1)
    with time_machine.travel(later, tick=True):
        await service.cleanup(runtime)
    assert await counts() == (0, 0)


async def test_a_deleted_account_gets_no_action_mail(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    account = await api.user()
    await runner.drain()
    smtp_server.stop()
    assert (await api.client.post(RESET_REQUEST, json={"email": account.email})).status_code == 202
    await runner.drain()
    assert (await api.client.delete("/api/v1/users/me", headers=account.headers)).status_code == 204
    smtp_server.start()
    later = datetime.now(UTC) + timedelta(seconds=service.backoff_seconds(1) + 1)
    with time_machine.travel(later, tick=True):
        await runner.run_now("maintenance.sweep")
        await runner.drain()
    [row] = await email_rows(runtime, kind="password_reset")
    assert row.status == "cancelled"
    assert by_subject(smtp_server.to(account.email), "Reset") == []


async def test_concurrent_senders_send_a_mail_once(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    account = await api.create_user()
    await runner.drain()
    smtp_server.stop()
    assert (await api.client.post(RESET_REQUEST, json={"email": account.email})).status_code == 202
    await runner.drain()
    [row] = await email_rows(runtime, kind="password_reset")
    smtp_server.start()
    later = datetime.now(UTC) + timedelta(seconds=service.backoff_seconds(1) + 1)
    with time_machine.travel(later, tick=True):
        # Five workers handed the same job at once (SKIP LOCKED and the lease on
        # PostgreSQL; SQLite serialises them): one sends, the others find nothing to do.
        await asyncio.gather(
            *(runner.run_now(service.SEND_JOB, {"email_id": str(row.id)}) for _ in range(5))
        )
    assert len(by_subject(smtp_server.to(account.email), "Reset")) == 1
    [row] = await email_rows(runtime, kind="password_reset")
    assert (row.status, row.attempts) == ("sent", 2)
