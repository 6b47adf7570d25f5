"""Publishing outbox events to RabbitMQ, with publisher confirms and `mandatory`.

A message counts as published only once the broker confirmed it (basic.ack) and did
not return it as unroutable. Everything else (a nack, a basic.return, no confirm
within `publish_timeout_seconds`, a lost connection) is reported as a failure of
that message, never raised: the outbox row stays unpublished and is retried.

The connection is opened on first use and again on the next use after it failed.
aio-pika's RobustConnection is deliberately not used: a publish during its
background recovery waits for the recovery, and it never notices a stalled link,
whereas the relay wants each batch to succeed or fail within a bounded time and
already retries on its own schedule (the next trigger or sweep).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Self
from urllib.parse import urlsplit

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aiormq.exceptions import DeliveryError, PublishError
from opentelemetry.trace import SpanKind
from yarl import URL

from gatehouse.observability import tracing
from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.events")

CONNECTION_NAME = "gatehouse-outbox-relay"
# After a failed connect, later attempts fail at once for this long: every commit
# kicks the relay, and an outage must not turn each kick into a connection attempt.
RECONNECT_PAUSE_SECONDS = 1.0
# Events stay in the bounded "<exchange>.recent" queue for a week at most.
RECENT_TTL_MS = 7 * 24 * 3600 * 1000
# Closing a connection whose peer is gone must not hold the relay up.
CLOSE_TIMEOUT_SECONDS = 2.0


class BrokerUnavailable(Exception):
    """The broker cannot be reached (or not set up) right now."""


@dataclass(frozen=True)
class Outgoing:
    """One outbox row as the publisher needs it."""

    event_id: uuid.UUID
    event_type: str
    payload: Mapping[str, Any]
    created_at: datetime
    request_id: str | None = None
    aggregate_id: uuid.UUID | None = None
    traceparent: str | None = None


class Failure(StrEnum):
    # Routed to no queue (basic.return): nobody would get it; this one is the alert.
    unroutable = "unroutable"
    # The broker refused it (basic.nack: e.g. a full queue with overflow=reject-publish).
    rejected = "rejected"
    # No confirm in time, or the connection failed: the broker may or may not have it.
    link = "link"


@dataclass(frozen=True)
class Outcome:
    """What became of one message: confirmed, or why not."""

    event_id: uuid.UUID
    failure: Failure | None = None
    error: str | None = None

    @property
    def confirmed(self) -> bool:
        return self.failure is None


def _message(item: Outgoing, traceparent: str | None) -> aio_pika.Message:
    headers: dict[str, Any] = {}
    if item.request_id is not None:
        headers["request_id"] = item.request_id
    if item.aggregate_id is not None:
        headers["aggregate_id"] = str(item.aggregate_id)
    if traceparent is not None:
        headers["traceparent"] = traceparent
    return aio_pika.Message(
        body=json.dumps(item.payload, separators=(",", ":"), ensure_ascii=False).encode(),
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(item.event_id),
        type=item.event_type,
        timestamp=item.created_at,
        app_id="gatehouse",
        headers=headers,
    )


class EventPublisher:
    """This process's connection to the events exchange (a runtime part)."""

    def __init__(self, url: str, exchange: str, timeout: float, recent_length: int = 0) -> None:
        self.url = url
        self.exchange_name = exchange
        self.timeout = timeout
        self.recent_length = recent_length
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._lock = asyncio.Lock()
        # Whether the last attempt to connect worked: an outage is logged once, not
        # on every commit that kicks the relay.
        self._reachable: bool | None = None
        self._retry_at = 0.0
        self._last_error = ""

    @classmethod
    def create(cls, runtime: Runtime) -> Self:
        url = runtime.settings.broker_url
        if url is None:
            raise RuntimeError("no broker configured (GATEHOUSE_BROKER_URL)")
        worker = runtime.settings.worker
        return cls(
            url,
            worker.events_exchange,
            worker.publish_timeout_seconds,
            worker.events_recent_length,
        )

    async def connect(self) -> AbstractExchange:
        """The declared exchange on a live connection; BrokerUnavailable if none can be had."""
        exchange = self._live_exchange()
        if exchange is not None:
            return exchange
        async with self._lock:
            exchange = self._live_exchange()
            if exchange is not None:
                return exchange
            if time.monotonic() < self._retry_at:
                raise BrokerUnavailable(self._last_error)
            await self._discard()
            try:
                async with asyncio.timeout(self.timeout):
                    exchange = await self._open()
            except Exception as exc:
                await self._discard()
                self._last_error = error = _describe(exc, self.url)
                self._retry_at = time.monotonic() + RECONNECT_PAUSE_SECONDS
                if self._reachable is not False:
                    log.warning("outbox.broker_unavailable", error=error)
                self._reachable = False
                raise BrokerUnavailable(error) from exc
            self._reachable = True
            log.info("outbox.broker_connected", exchange=self.exchange_name)
            return exchange

    async def _open(self) -> AbstractExchange:
        # Kept before connecting, so that a failed attempt is closed too (an unclosed
        # aio-pika connection tries to close itself when garbage collected).
        self._connection = connection = aio_pika.Connection(
            URL(self.url), client_properties={"connection_name": CONNECTION_NAME}
        )
        await connection.connect(timeout=self.timeout)
        self._channel = channel = await connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        self._exchange = exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        if self.recent_length:
            # With `mandatory`, an event type no consumer has bound yet would be
            # returned, and hold back that user's later events; this bounded queue
            # keeps every type routable (the oldest messages make way for new ones).
            recent = await channel.declare_queue(
                f"{self.exchange_name}.recent",
                durable=True,
                arguments={
                    "x-max-length": self.recent_length,
                    "x-overflow": "drop-head",
                    "x-message-ttl": RECENT_TTL_MS,
                },
            )
            await recent.bind(exchange, routing_key="#")
        return exchange

    @property
    def connected(self) -> bool:
        return self._live_exchange() is not None

    def _live_exchange(self) -> AbstractExchange | None:
        if (
            self._exchange is None
            or self._connection is None
            or self._connection.is_closed
            or self._channel is None
            or self._channel.is_closed
        ):
            return None
        return self._exchange

    async def publish(self, items: Sequence[Outgoing]) -> list[Outcome]:
        """Publish concurrently and wait for every confirm; one outcome per item, in order."""
        if not items:
            return []
        try:
            exchange = await self.connect()
        except BrokerUnavailable as exc:
            error = f"broker unavailable: {exc}"
            return [Outcome(item.event_id, Failure.link, error) for item in items]
        outcomes = list(await asyncio.gather(*(self._publish_one(exchange, i) for i in items)))
        if any(outcome.failure is Failure.link for outcome in outcomes):
            # The next use starts on a fresh connection rather than trusting one that
            # may be half-open (a stalled link never closes by itself).
            async with self._lock:
                if self._exchange is exchange:
                    await self._discard()
        return outcomes

    async def _publish_one(self, exchange: AbstractExchange, item: Outgoing) -> Outcome:
        try:
            # Bounds the whole publish, including the wait for its confirm.
            async with asyncio.timeout(self.timeout):
                # In the trace of the change (the row's), whichever job relays it; the
                # message carries the publish span's traceparent, or the row's as is.
                with tracing.span(
                    f"publish {self.exchange_name}",
                    traceparent=item.traceparent,
                    kind=SpanKind.PRODUCER,
                    attributes={
                        "messaging.system": "rabbitmq",
                        "messaging.destination.name": self.exchange_name,
                        "messaging.rabbitmq.destination.routing_key": item.event_type,
                        "messaging.message.id": str(item.event_id),
                    },
                ):
                    traceparent = tracing.current_traceparent() or item.traceparent
                    await exchange.publish(
                        _message(item, traceparent), routing_key=item.event_type, mandatory=True
                    )
        except PublishError as exc:
            returned = exc.message.delivery if exc.message is not None else None
            reply = getattr(returned, "reply_text", None) or "NO_ROUTE"
            return Outcome(item.event_id, Failure.unroutable, f"unroutable: {reply}")
        except DeliveryError as exc:
            frame = type(exc.frame).__name__ if exc.frame is not None else "no frame"
            return Outcome(item.event_id, Failure.rejected, f"refused by the broker: {frame}")
        except TimeoutError:
            error = f"no confirm within {self.timeout:g}s"
            return Outcome(item.event_id, Failure.link, error)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return Outcome(item.event_id, Failure.link, _describe(exc, self.url))
        return Outcome(item.event_id)

    async def _discard(self) -> None:
        connection = self._connection
        self._connection = self._channel = self._exchange = None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(min(CLOSE_TIMEOUT_SECONDS, self.timeout)):
                    await connection.close()

    async def aclose(self) -> None:
        async with self._lock:
            await self._discard()


def _describe(exc: BaseException, url: str) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    # A connection error may quote the URL, and the URL carries the broker's password.
    password = urlsplit(url).password
    if password:
        text = text.replace(password, "***")
    return text[:500]
