"""Small helpers of the events suite."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from gatehouse.events import service
from gatehouse.events.models import OutboxEvent
from gatehouse.runtime import Runtime
from gatehouse.worker import registry
from tests.events.consumer import EventConsumer

# No key of an event may name one of these.
SECRET_KEYS = ("password", "hash", "token", "secret")


async def outbox_rows(runtime: Runtime) -> list[OutboxEvent]:
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
        return list(rows.all())


async def relay_all(runtime: Runtime, batches: int = 1000) -> int:
    """Run the relay until a batch publishes nothing; how many it published in all."""
    total = 0
    for _ in range(batches):
        published = await service.relay_batch(runtime)
        if published == 0:
            break
        total += published
    return total


async def dispatch_all(runtime: Runtime) -> int:
    total = 0
    while done := await service.dispatch_batch(runtime, registry.reactions()):
        total += done
    return total


async def relay_until_published(
    runtime: Runtime, consumer: EventConsumer, count: int, within: float = 20.0
) -> None:
    """Relay until every row is published and `count` events arrived (a row that
    failed backs off for a second or more first)."""
    deadline = time.monotonic() + within
    while True:
        await relay_all(runtime)
        rows = await outbox_rows(runtime)
        if all(row.published_at for row in rows) and len(consumer.event_ids()) >= count:
            return
        if time.monotonic() > deadline:
            pending = sum(1 for row in rows if row.published_at is None)
            raise AssertionError(f"{pending} rows still unpublished after {within:g}s")
        await asyncio.sleep(0.1)
