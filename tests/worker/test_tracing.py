"""A trace crosses RabbitMQ into `gatehouse worker`: a sign-up through the traced API is
continued by the Celery tasks it causes (the dispatch of its event, its mails), which a
real worker process exports over OTLP/HTTP to a loopback receiver; the worker's log
lines of those tasks carry the same trace id. And a task that fails for good reaches
Sentry (a loopback ingest) from the worker with the request's id and user."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import SpanKind

from gatehouse.app import create_app
from gatehouse.kit.context import user_id_var
from gatehouse.observability import tracing
from gatehouse.runtime import Runtime
from gatehouse.worker.celery_app import CeleryJobQueue
from tests.http_receiver import HttpReceiver
from tests.observability.support import EXPORTER, PROVIDER, SentryIngest, trace_id
from tests.worker.conftest import Stack
from tests.worker.support import env_for, table_locked, wait_until


@dataclass(frozen=True)
class ExportedSpan:
    service: str
    name: str
    trace_id: str


@pytest.fixture
def collector() -> Iterator[HttpReceiver]:
    """A loopback stand-in for an OpenTelemetry collector's OTLP/HTTP endpoint."""
    with HttpReceiver(path="/v1/traces") as receiver:
        yield receiver


def exported(collector: HttpReceiver) -> list[ExportedSpan]:
    found = []
    for request in collector.requests:
        assert request.path == "/v1/traces", request.path
        assert request.headers["content-type"] == "application/x-protobuf"
        batch = ExportTraceServiceRequest.FromString(request.body)
        for resource_spans in batch.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(
                        ExportedSpan(attributes["service.name"], span.name, span.trace_id.hex())
                    )
    return found


async def test_a_sign_up_is_one_trace_from_the_api_through_the_celery_worker(
    stack: Stack, collector: HttpReceiver
) -> None:
    env = {
        **env_for(stack.values),
        "GATEHOUSE_TRACING_ENABLED": "true",
        "OTEL_SERVICE_NAME": "gatehouse-worker-test",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}",
        # Exported within a moment, not the default 5 s.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    worker = stack.workers.start(env=env)
    tracing.activate(PROVIDER)
    EXPORTER.clear()
    runtime = Runtime.create(stack.settings)
    jobs = CeleryJobQueue(stack.settings)
    runtime.use_jobs(jobs)
    address = f"otel-{uuid.uuid4().hex[:8]}@example.com"
    request_id = f"traced-signup-{uuid.uuid4().hex[:10]}"
    try:
        await stack.workers.ready(worker)
        app = create_app(runtime=runtime)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.post(
                "/api/v1/auth/register",
                json={"email": address, "name": "Otto Tel", "password": "amber-Canyon-31-fox"},
                headers={"X-Request-ID": request_id},
            )
        assert response.status_code == 202, response.text
        await wait_until(lambda: len(stack.smtp.to(address)) >= 2, within=60, what="the mails")
        [server] = [s for s in EXPORTER.get_finished_spans() if s.kind is SpanKind.SERVER]
        trace = trace_id(server)

        def worker_spans() -> list[ExportedSpan]:
            spans = [s for s in exported(collector) if s.trace_id == trace]
            return spans if len([s for s in spans if s.name == "job emails.send"]) >= 2 else []

        spans = await wait_until(worker_spans, within=30, what="the worker's spans")
    finally:
        tracing.deactivate()
        EXPORTER.clear()
        await jobs.close()
        await runtime.close()
        worker.stop()

    names = {span.name for span in spans}
    # Celery's task spans (continuing the message's traceparent) and ours inside them.
    assert {"run/events.dispatch", "job events.dispatch", "run/emails.send"} <= names, names
    assert "outbox.dispatch user.created" in names
    assert any(name.startswith(("SELECT", "UPDATE", "INSERT")) for name in names), names
    assert {span.service for span in spans} == {"gatehouse-worker-test"}
    # The worker's log lines of this request's tasks lead to the trace.
    lines = [line for line in worker.records() if line.get("request_id") == request_id]
    assert {"worker.job_started", "email.sent"} <= {line["event"] for line in lines}
    assert all(line.get("trace_id") == trace for line in lines), lines


async def test_a_task_that_fails_for_good_reaches_sentry_from_the_worker(stack: Stack) -> None:
    with SentryIngest() as ingest:
        worker = stack.workers.start(
            env={**env_for(stack.values), "GATEHOUSE_SENTRY_DSN": ingest.dsn}
        )
        try:
            await stack.workers.ready(worker)
            [email_id] = await stack.pending_emails(1)
            request_id = f"fails-{uuid.uuid4().hex[:10]}"
            user_id = str(uuid.uuid4())
            # The database never answers in time: each attempt hits the soft time limit.
            async with table_locked(stack.values["database_url"], "email_messages"):
                token = user_id_var.set(user_id)  # as the API does for its caller
                try:
                    stack.enqueue("emails.send", request_id, email_id=str(email_id))
                finally:
                    user_id_var.reset(token)

                def reported() -> list[dict[str, Any]]:
                    return [
                        event
                        for event in ingest.events()
                        if event.get("exception") and event["tags"].get("request_id") == request_id
                    ]

                [event] = await wait_until(reported, within=60, what="the report in Sentry")
        finally:
            worker.stop()
    assert event["tags"]["job"] == "emails.send"
    assert event["user"] == {"id": user_id}
    assert event["exception"]["values"][-1]["type"] == "SoftTimeLimitExceeded"
    assert event["environment"] == "test"
