"""The `<exchange>.recent` catch-all: before any consumer binds a type, its events are
still routable (published, not held back), and the queue keeps only the latest ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from gatehouse.runtime import Runtime
from tests.events.support import outbox_rows, relay_all
from tests.factories import Api


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the relay's SQL is covered on both backends elsewhere


@pytest.fixture
def settings_overrides(broker_overrides: dict[str, Any]) -> dict[str, Any]:
    return {**broker_overrides, "events_recent_length": 3}


@pytest.fixture
async def channel(rabbitmq_url: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(rabbitmq_url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


async def test_events_with_no_consumer_are_published_into_the_bounded_recent_queue(
    api: Api, runtime: Runtime, channel: aio_pika.abc.AbstractChannel
) -> None:
    exchange = runtime.settings.worker.events_exchange
    for n in range(5):
        await api.create_user("user", email=f"recent{n}@example.com")
    try:
        assert await relay_all(runtime) == 5
        assert all(row.published_at is not None for row in await outbox_rows(runtime))
        recent = await channel.declare_queue(f"{exchange}.recent", passive=True)
        assert recent.declaration_result.message_count == 3  # the latest 3 of 5
        first = await recent.get(no_ack=True)
        assert first is not None
        assert first.routing_key == "user.created"
        assert b"recent2@example.com" in first.body
    finally:
        await channel.queue_delete(f"{exchange}.recent")
        await channel.exchange_delete(exchange)
