"""Off by default: with neither GATEHOUSE_TRACING_ENABLED nor GATEHOUSE_SENTRY_DSN, the
same request leaves no trace anywhere (no span, no traceparent on the RabbitMQ message,
the webhook or the outbox row, no trace id in a log line) and nothing is set up: no
middleware, no instrumentation, no Sentry client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import sentry_sdk
from sqlalchemy import select

from gatehouse.app import create_app
from gatehouse.events.models import OutboxEvent
from gatehouse.kit.deprecation import DeprecationMiddleware
from gatehouse.kit.middleware import BodyGuardMiddleware, HeadMiddleware, RequestContextMiddleware
from gatehouse.observability import errors, tracing
from gatehouse.runtime import Runtime
from gatehouse.worker.embedded import InProcessRunner
from tests.events.consumer import EventConsumer, eventually
from tests.factories import PASSWORD, Api
from tests.http_receiver import HttpReceiver
from tests.logs import LogCapture
from tests.observability.support import EXPORTER

USERS = "/api/v1/users"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def settings_overrides(broker_overrides: dict[str, Any]) -> dict[str, Any]:
    return {
        **broker_overrides,
        "webhook_allow_private_targets": True,
        "webhook_retry_schedule": [0],
    }


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as started:
        yield started


@pytest.fixture
async def consumer(runtime: Runtime, rabbitmq_url: str) -> AsyncIterator[EventConsumer]:
    started = await EventConsumer(rabbitmq_url, runtime.settings.worker.events_exchange).start()
    try:
        yield started
    finally:
        await started.close()


def test_nothing_is_set_up(runtime: Runtime) -> None:
    app = create_app(runtime=runtime)
    assert not tracing.enabled()
    assert not errors.enabled()
    assert not sentry_sdk.get_client().is_active()
    # No middleware of theirs on the request path, and the app is not instrumented.
    middleware: list[object] = [m.cls for m in app.user_middleware]
    assert middleware == [
        DeprecationMiddleware,
        RequestContextMiddleware,
        HeadMiddleware,
        BodyGuardMiddleware,
    ]
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)


async def test_a_request_leaves_no_trace(
    api: Api,
    runtime: Runtime,
    runner: InProcessRunner,
    receiver: HttpReceiver,
    consumer: EventConsumer,
    json_logs: LogCapture,
) -> None:
    admin = await api.user("admin")
    subscribed = await api.client.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "event_types": ["user.created"]},
        headers=admin.headers,
    )
    assert subscribed.status_code == 201, subscribed.text
    await runner.drain()

    response = await api.client.post(
        USERS,
        json={
            "email": f"plain-{uuid.uuid4().hex[:8]}@example.com",
            "name": "P",
            "password": PASSWORD,
        },
        headers={**admin.headers, "X-Request-ID": "untraced-1"},
    )
    assert response.status_code == 201, response.text
    user_id = response.json()["id"]
    await runner.drain()
    await eventually(
        lambda: any(user_id in r.body.decode() for r in receiver.requests),
        what="the user.created webhook",
    )
    await eventually(lambda: bool(consumer.of_user(user_id)), what="the user.created message")

    # Every delivery (the admin's own user.created may arrive too, once subscribed).
    assert receiver.requests
    assert all("traceparent" not in hook.headers for hook in receiver.requests)
    [message] = consumer.of_user(user_id)
    assert "traceparent" not in message.headers
    async with runtime.db.session(write=False) as session:
        rows = (await session.scalars(select(OutboxEvent))).all()
    assert rows
    assert all(row.traceparent is None for row in rows)
    assert EXPORTER.get_finished_spans() == ()
    lines = json_logs.records()
    assert any(line["request_id"] == "untraced-1" for line in lines)
    assert all("request_id" in line for line in lines)
    assert not [line for line in lines if "trace_id" in line or "span_id" in line]
