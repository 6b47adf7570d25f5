"""Fixtures of the events suite: a consumer on the test's exchange, a proxy to break
the link to RabbitMQ, and the outbox as the database holds it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from gatehouse.runtime import Runtime
from tests.events.consumer import EventConsumer
from tests.tcp_proxy import TcpProxy


@pytest.fixture
async def consumer(runtime: Runtime, rabbitmq_url: str) -> AsyncIterator[EventConsumer]:
    """A consumer with a queue of its own bound with `#` (straight to RabbitMQ, never
    through the proxy)."""
    started = await EventConsumer(rabbitmq_url, runtime.settings.worker.events_exchange).start()
    try:
        yield started
    finally:
        await started.close()


@pytest.fixture
def broker_proxy(rabbitmq_url: str) -> Iterator[TcpProxy]:
    with TcpProxy.for_url(rabbitmq_url) as proxy:
        yield proxy
