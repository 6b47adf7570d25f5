"""Background work in the embedded default (no broker: the jobs run in the API process):
webhook attempts, emails, every job, the backlog gauges and the audit chain check, as a
user causes them and `GET /metrics` shows them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from gatehouse.audit.models import AuditEvent
from gatehouse.runtime import Runtime
from gatehouse.worker.embedded import InProcessRunner
from tests.conftest import make_settings
from tests.factories import PASSWORD, Account, Api
from tests.http_receiver import HttpReceiver
from tests.logs import LogCapture
from tests.redis_server import free_port
from tests.scrape import scrape

DELIVERIES = "gatehouse_webhook_deliveries_total"
DURATION = "gatehouse_webhook_delivery_duration_seconds"
EMAILS = "gatehouse_emails_total"
TASKS = "gatehouse_tasks_total"
WEBHOOKS: dict[str, Any] = {
    "webhook_allow_private_targets": True,  # the receiver is on loopback
    "webhook_retry_schedule": [0],  # one retry, at once: a whole schedule in one drain
    "webhook_timeout_seconds": 5.0,
}


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as started:
        yield started


@pytest.fixture
async def admin(api: Api, runner: InProcessRunner) -> Account:
    account = await api.user("admin")
    await runner.drain()  # its own user.created is dispatched before anyone subscribes
    return account


async def subscribe(api: Api, admin: Account, url: str) -> None:
    response = await api.client.post(
        "/api/v1/webhooks", json={"url": url, "event_types": ["*"]}, headers=admin.headers
    )
    assert response.status_code == 201, response.text


async def create_user(api: Api, admin: Account) -> None:
    email = f"metrics-{uuid.uuid4().hex[:8]}@example.com"
    response = await api.client.post(
        "/api/v1/users",
        json={"email": email, "name": "Mel Metrics", "password": PASSWORD},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("settings_overrides", [WEBHOOKS], indirect=True)
async def test_a_webhook_attempt_that_failed_then_one_delivered_are_counted_and_timed(
    api: Api, runner: InProcessRunner, admin: Account, receiver: HttpReceiver
) -> None:
    await subscribe(api, admin, receiver.url)
    receiver.fail_next(1)
    before = await scrape(api.client)
    await create_user(api, admin)
    await runner.drain()
    after = await scrape(api.client)
    assert [r.status for r in receiver.requests] == [500, 200]
    assert after.since(before, DELIVERIES, outcome="failed") == 1
    assert after.since(before, DELIVERIES, outcome="delivered") == 1
    assert after.since(before, DELIVERIES) == 2
    assert after.since(before, f"{DURATION}_count", outcome="failed") == 1
    assert after.since(before, f"{DURATION}_count", outcome="delivered") == 1
    assert after.since(before, f"{DURATION}_sum") > 0
    assert after.since(before, TASKS, task="webhooks.deliver", outcome="success") == 2


@pytest.mark.parametrize("settings_overrides", [WEBHOOKS], indirect=True)
async def test_a_receiver_that_answers_410_gone_counts_a_dead_delivery(
    api: Api, runner: InProcessRunner, admin: Account, receiver: HttpReceiver
) -> None:
    await subscribe(api, admin, receiver.url)
    receiver.respond_with(410)
    before = await scrape(api.client)
    await create_user(api, admin)
    await runner.drain()
    after = await scrape(api.client)
    assert after.since(before, DELIVERIES, outcome="dead") == 1
    assert after.since(before, DELIVERIES) == 1


@pytest.mark.parametrize("settings_overrides", [WEBHOOKS], indirect=True)
async def test_a_delivery_is_pending_until_its_attempt_is_answered(
    api: Api, runner: InProcessRunner, admin: Account, receiver: HttpReceiver
) -> None:
    name = "gatehouse_webhook_deliveries_pending"
    await subscribe(api, admin, receiver.url)
    assert (await scrape(api.client)).value(name) == 0
    receiver.stall()
    try:
        await create_user(api, admin)
        await receiver.wait_for(1)  # the attempt is with the receiver, unanswered
        assert (await scrape(api.client)).value(name) == 1
    finally:
        receiver.release()
    await runner.drain()
    assert (await scrape(api.client)).value(name) == 0


async def test_without_a_broker_the_outbox_backlog_is_what_waits_for_the_dispatcher(
    api: Api,
) -> None:
    # No runner yet: the event stays undispatched.
    await api.create_user()
    waiting = await scrape(api.client)
    assert waiting.value("gatehouse_outbox_pending") == 1
    assert waiting.value("gatehouse_outbox_oldest_pending_age_seconds") > 0
    runner = InProcessRunner(api.runtime)
    await runner.run_now("events.dispatch")
    done = await scrape(api.client)
    assert done.value("gatehouse_outbox_pending") == 0
    assert done.value("gatehouse_outbox_oldest_pending_age_seconds") == 0
    assert done.since(waiting, TASKS, task="events.dispatch", outcome="success") == 1


async def test_a_sign_up_counts_its_mails_as_sent(api: Api, runner: InProcessRunner) -> None:
    before = await scrape(api.client)
    response = await api.client.post(
        "/api/v1/auth/register",
        json={"email": "sign-up@example.com", "name": "Sid Signup", "password": PASSWORD},
    )
    assert response.status_code == 202
    await runner.drain()
    after = await scrape(api.client)
    assert after.since(before, EMAILS, kind="welcome", outcome="sent") == 1
    assert after.since(before, EMAILS, kind="verify_email", outcome="sent") == 1
    assert after.since(before, EMAILS, outcome="failed") == 0
    assert after.since(before, TASKS, task="emails.send", outcome="success") == 2


@pytest.mark.parametrize(
    "settings_overrides",
    # Nothing listens there: the connection is refused.
    [{"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_security": "none"}],
    indirect=True,
)
async def test_a_mail_the_smtp_server_does_not_take_counts_failed(
    api: Api, runner: InProcessRunner
) -> None:
    before = await scrape(api.client)
    response = await api.client.post(
        "/api/v1/auth/register",
        json={"email": "no-smtp@example.com", "name": "Nat Nomail", "password": PASSWORD},
    )
    assert response.status_code == 202
    await runner.drain()  # one attempt each; the retries wait 30 s
    after = await scrape(api.client)
    assert after.since(before, EMAILS, kind="welcome", outcome="failed") == 1
    assert after.since(before, EMAILS, outcome="sent") == 0


@pytest.fixture
async def runtime_without_database(tmp_path: Path, signing_key_pem: str) -> AsyncIterator[Runtime]:
    """A process whose PostgreSQL is not there (nothing listens on the port)."""
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone"
    runtime = Runtime.create(make_settings(url, tmp_path / "gone", signing_key_pem))
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_job_that_fails_counts_a_failure_and_its_time(
    api: Api, runtime_without_database: Runtime
) -> None:
    before = await scrape(api.client)
    with pytest.raises(ConnectionRefusedError):
        await InProcessRunner(runtime_without_database).run_now(
            "emails.send", {"email_id": str(uuid.uuid4())}
        )
    after = await scrape(api.client)
    assert after.since(before, TASKS, task="emails.send", outcome="failure") == 1
    assert after.since(before, TASKS, task="emails.send", outcome="success") == 0
    assert after.since(before, "gatehouse_task_duration_seconds_count", task="emails.send") == 1


async def tamper(runtime: Runtime, row_id: int) -> None:
    """As a database superuser would: triggers off (PostgreSQL), no Gatehouse code."""
    async with runtime.db.engine.begin() as conn:
        if not runtime.db.is_sqlite:
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(
            text("UPDATE audit_events SET outcome = 'failure' WHERE id = :id"), {"id": row_id}
        )


async def last_audit_id(runtime: Runtime) -> int:
    async with runtime.db.session(write=False) as session:
        found = await session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()))
        assert found is not None
        return found


async def test_the_cleanup_checks_the_audit_chain_and_reports_it(
    api: Api, json_logs: LogCapture
) -> None:
    ok, checked = (
        "gatehouse_audit_chain_ok",
        "gatehouse_audit_chain_last_verified_timestamp_seconds",
    )
    runner = InProcessRunner(api.runtime)
    await api.user("admin")  # audited: a login
    before = await scrape(api.client)
    await runner.run_now("maintenance.cleanup")
    first = await scrape(api.client)
    assert first.value(ok) == 1
    assert first.value(checked) > before.value(checked)
    assert first.since(before, TASKS, task="maintenance.cleanup", outcome="success") == 1

    # A row written since that check, sealed by the sweep, then altered behind the
    # API's back: the next check, from that check's checkpoint on, finds it.
    await api.user("admin")
    await runner.run_now("maintenance.sweep")
    await tamper(api.runtime, await last_audit_id(api.runtime))
    await runner.run_now("maintenance.cleanup")
    second = await scrape(api.client)
    assert second.value(ok) == 0
    assert second.value(checked) > first.value(checked)
    lines = [r for r in json_logs.records() if r["event"] == "audit.chain_checked"]
    assert [(r["level"], r["ok"]) for r in lines] == [("info", True), ("error", False)]
    assert "altered" in lines[-1]["problem"]
