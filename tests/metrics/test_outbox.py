"""The outbox on RabbitMQ: an event waits (pending, its age), then the broker confirms it
(published) or returns it (a publish failure); read off `GET /metrics`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from gatehouse.events.models import OutboxEvent
from gatehouse.runtime import Runtime
from gatehouse.worker.embedded import InProcessRunner
from tests.events.consumer import EventConsumer
from tests.factories import Api
from tests.scrape import scrape

PENDING = "gatehouse_outbox_pending"
AGE = "gatehouse_outbox_oldest_pending_age_seconds"
PUBLISHED = "gatehouse_outbox_published_total"
FAILURES = "gatehouse_outbox_publish_failures_total"
TASKS = "gatehouse_tasks_total"


@pytest.fixture
def settings_overrides(broker_overrides: dict[str, Any]) -> dict[str, Any]:
    return broker_overrides


@pytest.fixture
async def consumer(runtime: Runtime, rabbitmq_url: str) -> AsyncIterator[EventConsumer]:
    """A queue of its own bound to the test's exchange: the events become routable."""
    started = await EventConsumer(rabbitmq_url, runtime.settings.worker.events_exchange).start()
    try:
        yield started
    finally:
        await started.close()


async def unpublished(runtime: Runtime) -> int:
    async with runtime.db.session(write=False) as session:
        count = await session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
        )
        return int(count or 0)


async def relay(runtime: Runtime) -> None:
    """The relay job, run once here as a worker would (the test runs no sweep)."""
    await InProcessRunner(runtime).run_now("events.relay")


async def test_an_event_is_pending_until_the_broker_confirms_it(
    api: Api, consumer: EventConsumer
) -> None:
    await api.create_user()  # its user.created waits in the outbox
    waiting = await scrape(api.client)
    assert waiting.value(PENDING) == await unpublished(api.runtime) == 1
    assert waiting.value(AGE) > 0

    await relay(api.runtime)
    done = await scrape(api.client)
    assert done.since(waiting, PUBLISHED, event_type="user.created") == 1
    assert done.since(waiting, FAILURES) == 0
    assert done.since(waiting, TASKS, task="events.relay", outcome="success") == 1
    assert done.value(PENDING) == await unpublished(api.runtime) == 0
    assert done.value(AGE) == 0


async def test_an_event_no_queue_takes_counts_a_failure_and_stays_pending(api: Api) -> None:
    # No consumer has bound a queue (and the catch-all queue is off): unroutable.
    await api.create_user()
    before = await scrape(api.client)
    await relay(api.runtime)
    after = await scrape(api.client)
    assert after.since(before, FAILURES, reason="unroutable") == 1
    assert after.since(before, FAILURES) == 1
    assert after.since(before, PUBLISHED) == 0
    assert after.value(PENDING) == await unpublished(api.runtime) == 1
