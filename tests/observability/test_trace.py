"""With tracing on, one admin request that creates a user is one trace: the request's
server span, its SQL, the outbox event's dispatch, the welcome mail's job and the
webhook delivery (whose request carries the trace on); the RabbitMQ message carries
it too, and so does every log line written meanwhile.

Through the real app, the in-process runner on SQLite, a real SMTP server, a real
HTTP receiver and RabbitMQ, with the SDK's in-memory exporter.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision
from opentelemetry.trace import SpanKind
from sqlalchemy import select

from gatehouse.events.models import OutboxEvent
from gatehouse.observability.tracing import REQUEST_ID_ATTRIBUTE, without_periodic_tasks
from gatehouse.runtime import Runtime
from gatehouse.worker.embedded import InProcessRunner
from tests.events.consumer import EventConsumer, eventually
from tests.factories import PASSWORD, Account, Api
from tests.http_receiver import HttpReceiver
from tests.logs import LogCapture
from tests.observability.support import attribute_text, named, one, trace_id, trace_of
from tests.smtp import SmtpServer

USERS = "/api/v1/users"
WEBHOOKS = "/api/v1/webhooks"
SQL_SCOPE = "opentelemetry.instrumentation.sqlalchemy"
# In a query string, where a credential sometimes travels: never in a span.
QUERY_SECRET = "query-credential-5f2a"
HOOK_SECRET = "hook-credential-9c1e"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as started:
        yield started


@pytest.fixture
def settings_overrides(
    spans: InMemorySpanExporter, smtp: SmtpServer, broker_overrides: dict[str, Any]
) -> dict[str, Any]:
    # `spans` first: the runtime's engine and clients are instrumented when made.
    return {
        **smtp.settings(),
        **broker_overrides,
        "webhook_allow_private_targets": True,
        "webhook_retry_schedule": [0],
    }


@pytest.fixture
async def consumer(runtime: Runtime, rabbitmq_url: str) -> AsyncIterator[EventConsumer]:
    started = await EventConsumer(rabbitmq_url, runtime.settings.worker.events_exchange).start()
    try:
        yield started
    finally:
        await started.close()


async def admin_with_webhook(api: Api, runner: InProcessRunner, url: str) -> Account:
    """An admin subscribed to user.created at `url`; what that took is dispatched."""
    admin = await api.user("admin")
    response = await api.client.post(
        WEBHOOKS, json={"url": url, "event_types": ["user.created"]}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    await runner.drain()
    return admin


async def outbox_row(runtime: Runtime, user_id: str) -> OutboxEvent:
    async with runtime.db.session(write=False) as session:
        row = await session.scalar(
            select(OutboxEvent).where(
                OutboxEvent.event_type == "user.created",
                OutboxEvent.aggregate_id == uuid.UUID(user_id),
            )
        )
    assert row is not None
    return row


async def test_one_request_is_one_trace_from_the_api_to_the_mail_and_the_webhook(
    api: Api,
    runtime: Runtime,
    runner: InProcessRunner,
    spans: InMemorySpanExporter,
    smtp: SmtpServer,
    receiver: HttpReceiver,
    consumer: EventConsumer,
    json_logs: LogCapture,
) -> None:
    admin = await admin_with_webhook(api, runner, f"{receiver.url}?key={HOOK_SECRET}")
    spans.clear()
    json_logs.clear()
    mails_before = len(smtp.messages)
    email = f"traced-{uuid.uuid4().hex[:8]}@example.com"

    response = await api.client.post(
        f"{USERS}?note={QUERY_SECRET}",
        json={"email": email, "name": "Tracy Trace", "password": PASSWORD},
        headers={**admin.headers, "X-Request-ID": "trace-create-1"},
    )
    assert response.status_code == 201, response.text
    user_id = response.json()["id"]
    await runner.drain()
    [hook] = [r for r in await receiver.wait_for(1) if r.json()["data"]["user_id"] == user_id]
    await smtp.wait_for(mails_before + 1)
    await eventually(lambda: bool(consumer.of_user(user_id)), what="the user.created message")

    finished = spans.get_finished_spans()
    # The request's server span, named after its route, says its request id.
    [server] = [s for s in finished if s.kind is SpanKind.SERVER]
    assert server.name == "POST /api/v1/users"
    assert (server.attributes or {})[REQUEST_ID_ATTRIBUTE] == "trace-create-1"
    trace = trace_id(server)
    traced = [s for s in finished if trace_id(s) == trace]

    # Its SQL: the user's row and the event's, each statement a span (no parameters).
    statements = [
        str((s.attributes or {}).get("db.statement", ""))
        for s in traced
        if s.instrumentation_scope is not None and s.instrumentation_scope.name == SQL_SCOPE
    ]
    assert any(st.startswith("INSERT INTO users") for st in statements), statements
    assert any(st.startswith("INSERT INTO outbox_events") for st in statements), statements

    # The event keeps the trace, and everything that followed from it is in the trace.
    row = await outbox_row(runtime, user_id)
    assert row.traceparent is not None
    assert trace_of(row.traceparent) == trace
    one(traced, "outbox.dispatch user.created")
    one(traced, "job events.dispatch")
    assert named(traced, "job emails.send"), sorted(s.name for s in traced)
    one(traced, "job webhooks.deliver")
    assert [s for s in traced if s.kind is SpanKind.CLIENT and s.name == "POST"]
    # Published to RabbitMQ in the same trace, and the message says so.
    assert [s for s in traced if s.kind is SpanKind.PRODUCER]
    [message] = consumer.of_user(user_id)
    assert trace_of(str(message.headers["traceparent"])) == trace

    # The receiver of the webhook can join the trace.
    assert trace_of(hook.headers["traceparent"]) == trace
    assert "baggage" not in hook.headers

    # Every log line says its request (null outside one); those of this request and of
    # the jobs it asked for say its trace.
    lines = json_logs.records()
    assert lines
    assert all("request_id" in line for line in lines)
    ours = [line for line in lines if line["request_id"] == "trace-create-1"]
    assert {"http.request", "webhooks.attempt"} <= {line["event"] for line in ours}
    assert all(line.get("trace_id") == trace for line in ours), ours

    # No span repeats the address, the password or a query string's credential.
    text = attribute_text(finished)
    for secret in (email, PASSWORD, QUERY_SECRET, HOOK_SECRET):
        assert secret not in text, secret


async def test_a_job_asked_for_without_a_trace_starts_one_of_its_own(
    api: Api, runtime: Runtime, runner: InProcessRunner, spans: InMemorySpanExporter
) -> None:
    """A user made outside any request (the CLI's way): its event has no trace to
    continue, and its dispatch is a trace of its own rather than nobody's."""
    account = await api.create_user()
    await runner.drain()
    row = await outbox_row(runtime, str(account.id))
    assert row.traceparent is None
    [dispatch] = named(spans.get_finished_spans(), "outbox.dispatch user.created")
    assert dispatch.parent is not None  # in the dispatching job's trace
    # A sweep that comes round during the test asks for the same job again (it finds
    # nothing left to send): the dispatch's trace is the one started by a dispatch job.
    jobs = named(spans.get_finished_spans(), "job events.dispatch")
    [job] = [job for job in jobs if trace_id(job) == trace_id(dispatch)]
    assert job.parent is None


async def test_the_health_checks_and_the_scrape_are_not_traced(
    api: Api, spans: InMemorySpanExporter
) -> None:
    """Nor what they do: the readiness check's query leaves no trace of its own."""
    for path in ("/health", "/health/ready", "/metrics", "/api/v1/users/me"):
        response = await api.client.get(path)
        assert response.status_code in {200, 401}, (path, response.text)
    finished = spans.get_finished_spans()
    [server] = [s for s in finished if s.kind is SpanKind.SERVER]
    assert server.name == "GET /api/v1/users/me"
    assert {trace_id(s) for s in finished} == {trace_id(server)}


def test_celerys_span_of_a_periodic_task_is_dropped_whatever_the_sampler_says() -> None:
    sampler = without_periodic_tasks(ALWAYS_ON)
    for name in ("run/maintenance.sweep", "run/maintenance.cleanup"):
        assert sampler.should_sample(None, 1, name).decision is Decision.DROP
    kept = sampler.should_sample(None, 1, "run/emails.send")
    assert kept.decision is Decision.RECORD_AND_SAMPLE
