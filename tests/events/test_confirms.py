"""EVT-04: a row is marked published only when the broker confirmed the message.

(a) a nack (a full queue with overflow=reject-publish) or no confirm in time (a
stalled link): the row stays unpublished and is retried with backoff; (b) no queue
bound (`mandatory` makes the broker return it): the row stays unpublished and
`outbox.unroutable` is logged at error level, the alert; once a queue is bound it
goes out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from gatehouse.events import service
from gatehouse.runtime import Runtime
from tests.events.consumer import EventConsumer
from tests.events.support import outbox_rows, relay_until_published
from tests.factories import Api
from tests.logs import LogCapture
from tests.tcp_proxy import TcpProxy


@pytest.fixture
def settings_overrides(
    broker_overrides: dict[str, Any], broker_proxy: TcpProxy, rabbitmq_url: str
) -> dict[str, Any]:
    return {
        **broker_overrides,
        "broker_url": broker_proxy.url(rabbitmq_url),
        "publish_timeout_seconds": 1.0,
    }


@pytest.fixture
def backend() -> str:
    # The relay's SQL is covered on both backends by test_publish and test_faults.
    return "sqlite"


@pytest.fixture
async def channel(rabbitmq_url: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(rabbitmq_url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


async def test_an_unroutable_event_is_not_marked_and_raises_the_alert(
    api: Api, runtime: Runtime, rabbitmq_url: str, json_logs: LogCapture
) -> None:
    account = await api.create_user("user")
    # Nobody is bound to the exchange: mandatory makes the broker return the message.
    assert await service.relay_batch(runtime) == 0
    [row] = await outbox_rows(runtime)
    assert row.published_at is None
    assert row.publish_attempts == 1
    assert row.next_publish_at is not None
    assert (row.last_error or "").startswith("unroutable")
    alerts = [r for r in json_logs.records() if r["event"] == "outbox.unroutable"]
    assert len(alerts) == 1
    assert alerts[0]["level"] == "error"
    assert alerts[0]["event_id"] == str(row.event_id)
    assert alerts[0]["event_type"] == "user.created"

    consumer = await EventConsumer(rabbitmq_url, runtime.settings.worker.events_exchange).start()
    try:
        await relay_until_published(runtime, consumer, 1)
        assert [m.routing_key for m in consumer.of_user(account.id)] == ["user.created"]
    finally:
        await consumer.close()
    [row] = await outbox_rows(runtime)
    assert row.published_at is not None


async def test_a_nacked_event_stays_unpublished_and_is_retried(
    api: Api,
    runtime: Runtime,
    rabbitmq_url: str,
    channel: aio_pika.abc.AbstractChannel,
    json_logs: LogCapture,
) -> None:
    exchange = await channel.declare_exchange(
        runtime.settings.worker.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    # A queue that is always full and refuses more: the broker nacks the publish.
    full = await channel.declare_queue(
        exclusive=True, arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
    )
    await full.bind(exchange, "#")
    await api.create_user("user")
    assert await service.relay_batch(runtime) == 0
    [row] = await outbox_rows(runtime)
    assert row.published_at is None
    assert row.publish_attempts == 1
    assert "Nack" in (row.last_error or "")
    assert [r["level"] for r in json_logs.records() if r["event"] == "outbox.publish_failed"] == [
        "warning"
    ]

    await full.delete(if_unused=False, if_empty=False)
    consumer = await EventConsumer(rabbitmq_url, runtime.settings.worker.events_exchange).start()
    try:
        await relay_until_published(runtime, consumer, 1)
    finally:
        await consumer.close()


async def test_no_confirm_in_time_leaves_the_row_unpublished(
    api: Api, runtime: Runtime, consumer: EventConsumer, broker_proxy: TcpProxy
) -> None:
    first = await api.create_user("user")
    assert await service.relay_batch(runtime) == 1  # the link is up and warm
    await consumer.wait_for(lambda: len(consumer.received) == 1)

    second = await api.create_user("user")
    broker_proxy.stall()
    try:
        assert await service.relay_batch(runtime) == 0
        row = (await outbox_rows(runtime))[-1]
        assert row.published_at is None
        assert row.publish_attempts == 1
        assert "no confirm" in (row.last_error or "")
    finally:
        broker_proxy.resume()
    # The stalled publish may still reach the broker after the link recovers: at
    # least once, so the consumer may see it twice, but it processes it once.
    await relay_until_published(runtime, consumer, 2)
    assert [m.routing_key for m in consumer.of_user(second.id)][:1] == ["user.created"]
    report = consumer.report(str(r.event_id) for r in await outbox_rows(runtime))
    assert (report.lost, report.phantom, report.duplicate_effects) == (0, 0, 0), report
    assert consumer.of_user(first.id)


async def test_a_failed_event_holds_back_the_users_later_events(
    api: Api, runtime: Runtime, rabbitmq_url: str
) -> None:
    exchange = runtime.settings.worker.events_exchange
    # Only user.updated is routed: the user's user.created comes back unroutable.
    updates_only = await EventConsumer(rabbitmq_url, exchange, binding="user.updated").start()
    try:
        admin = await api.user("admin")
        account = await api.create_user("user")
        renamed = await api.client.patch(
            f"/api/v1/users/{account.id}", json={"name": "Renamed"}, headers=admin.headers
        )
        assert renamed.status_code == 200

        assert await service.relay_batch(runtime) == 0
        _, created, updated = await outbox_rows(runtime)
        assert created.publish_attempts == 1
        # Never tried: publishing it before user.created got through would break the order.
        assert (updated.publish_attempts, updated.published_at) == (0, None)
        assert await service.relay_batch(runtime) == 0  # still held back
        assert updates_only.received == []

        everything = await EventConsumer(rabbitmq_url, exchange).start()
        try:
            await relay_until_published(runtime, everything, 3)
            assert [m.routing_key for m in everything.of_user(account.id)] == [
                "user.created",
                "user.updated",
            ]
        finally:
            await everything.close()
        await updates_only.wait_for(lambda: len(updates_only.received) == 1)
    finally:
        await updates_only.close()
