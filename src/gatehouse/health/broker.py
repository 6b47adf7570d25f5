"""The readiness check's own connection to the broker.

An API process with a broker never publishes events itself (the relay runs in
`gatehouse worker`) and sends its job messages through Celery's synchronous client, so
there is no connection of its own whose state the check could read. Opening one per
probe would cost a TCP and AMQP handshake every few seconds per instance and fill the
broker's log with connection lines; instead one connection is kept, and each probe is a
round trip on it. A connection that failed is dropped and opened again by the next probe.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Self

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection
from yarl import URL

from gatehouse.runtime import Runtime

# How the connection shows in the broker's management UI and `rabbitmqctl list_connections`.
CONNECTION_NAME = "gatehouse-readiness"
# Closing a connection whose peer is gone must not keep a task (or the shutdown) waiting.
CLOSE_TIMEOUT_SECONDS = 2.0


class BrokerProbe:
    """A runtime part: `ping()` raises unless the broker answered a round trip."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    @classmethod
    def create(cls, runtime: Runtime) -> Self:
        url = runtime.settings.broker_url
        if url is None:
            raise RuntimeError("no broker configured (GATEHOUSE_BROKER_URL)")
        return cls(url)

    async def ping(self) -> None:
        # The caller bounds this with its timeout: a cancellation can land anywhere in
        # here, and whatever was half done is dropped, never awaited (that could wait).
        async with self._lock:
            try:
                channel = self._live_channel() or await self._open()
                # Basic.Qos is a synchronous method that changes nothing here (this
                # channel consumes nothing): the cheapest full round trip AMQP has.
                await channel.set_qos(prefetch_count=0)
            except BaseException:
                self._drop()
                raise

    def _live_channel(self) -> AbstractChannel | None:
        if (
            self._connection is None
            or self._connection.is_closed
            or self._channel is None
            or self._channel.is_closed
        ):
            return None
        return self._channel

    async def _open(self) -> AbstractChannel:
        self._drop()
        # Kept before connecting, so that an attempt cut short is closed too (an
        # unclosed aio-pika connection tries to close itself when garbage collected).
        self._connection = connection = aio_pika.Connection(
            URL(self.url), client_properties={"connection_name": CONNECTION_NAME}
        )
        await connection.connect()
        self._channel = channel = await connection.channel(publisher_confirms=False)
        return channel

    def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is None or connection.is_closed:
            return
        task = asyncio.get_running_loop().create_task(_close(connection))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        self._drop()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


async def _close(connection: AbstractConnection) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
            await connection.close()
