"""A consumer of Gatehouse's events as docs/events.md tells integrators to write one,
and the ledger checker of the event fault cases.

The consumer has a queue of its own bound with `#` to the test's exchange. For each
delivery it runs one local transaction: insert the `event_id` into a table with a
unique key (a duplicate stops here), then apply the event to its copy of the users,
dropping an event whose `version` is not newer than the one it has; then it acks.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

DEFAULT_WITHIN = 30.0


@dataclass(frozen=True)
class Received:
    routing_key: str
    body: dict[str, Any]
    delivery_mode: int | None
    content_type: str | None
    message_id: str | None
    type: str | None
    headers: dict[str, Any]
    redelivered: bool

    @property
    def event_id(self) -> str:
        return str(self.body["event_id"])

    @property
    def user_id(self) -> str | None:
        value = self.body.get("data", {}).get("user_id")
        return str(value) if value is not None else None


@dataclass(frozen=True)
class LedgerReport:
    committed: int
    observed: int
    lost: int
    phantom: int
    duplicates_delivered: int
    duplicate_effects: int

    def __str__(self) -> str:
        return (
            f"committed {self.committed}, observed {self.observed}, lost {self.lost}, "
            f"phantom {self.phantom}, duplicates delivered {self.duplicates_delivered}, "
            f"duplicate effects {self.duplicate_effects}"
        )


@dataclass
class UserCopy:
    version: int
    email: str
    name: str
    role: str
    deleted: bool = False


class EventConsumer:
    def __init__(self, url: str, exchange: str, *, binding: str = "#") -> None:
        self.url = url
        self.exchange_name = exchange
        self.binding = binding
        self.received: list[Received] = []
        self.users: dict[str, UserCopy] = {}
        # Versions applied per user, in the order they were applied (stale ones dropped).
        self.applied: dict[str, list[int]] = {}
        self.stale_dropped = 0
        self.db = sqlite3.connect(":memory:")
        self.db.executescript(
            """
            CREATE TABLE processed_events (event_id TEXT PRIMARY KEY);
            -- One row per effect; the unique table above keeps it at one per event.
            CREATE TABLE effects (event_id TEXT NOT NULL, event_type TEXT NOT NULL);
            """
        )
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._queue: aio_pika.abc.AbstractQueue | None = None

    async def start(self) -> EventConsumer:
        self._connection = await aio_pika.connect(self.url)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=100)
        exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        self._queue = await channel.declare_queue(exclusive=True)
        await self._queue.bind(exchange, routing_key=self.binding)
        await self._queue.consume(self._on_message)
        return self

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        self.db.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        item = Received(
            routing_key=message.routing_key or "",
            body=json.loads(message.body),
            delivery_mode=int(message.delivery_mode) if message.delivery_mode else None,
            content_type=message.content_type,
            message_id=message.message_id,
            type=message.type,
            headers=dict(message.headers or {}),
            redelivered=bool(message.redelivered),
        )
        self.received.append(item)
        self.process(item)
        await message.ack()

    def process(self, item: Received) -> None:
        """Apply one event exactly once in effect (the integrator's recipe)."""
        try:
            with self.db:
                self.db.execute("INSERT INTO processed_events VALUES (?)", (item.event_id,))
                self.db.execute(
                    "INSERT INTO effects VALUES (?, ?)", (item.event_id, item.body["event_type"])
                )
                self._apply(item.body)
        except sqlite3.IntegrityError:
            return  # seen before: a duplicate delivery, no second effect

    def _apply(self, envelope: dict[str, Any]) -> None:
        data = envelope["data"]
        user_id = data.get("user_id")
        if user_id is None:
            return
        current = self.users.get(user_id)
        if current is not None and data["version"] <= current.version:
            self.stale_dropped += 1
            return
        kind = envelope["event_type"]
        if kind == "user.created":
            self.users[user_id] = UserCopy(
                data["version"], data["email"], data["name"], data["role"]
            )
        elif current is not None:
            current.version = data["version"]
            if kind == "user.updated":
                for name, value in data["changes"].items():
                    if hasattr(current, name):
                        setattr(current, name, value)
            elif kind == "user.deleted":
                current.deleted = True
        self.applied.setdefault(user_id, []).append(data["version"])

    # --- reading what arrived ------------------------------------------------------------

    def of_user(self, user_id: uuid.UUID | str) -> list[Received]:
        return [item for item in self.received if item.user_id == str(user_id)]

    def event_ids(self) -> set[str]:
        return {item.event_id for item in self.received}

    async def wait_for(
        self, condition: Callable[[], bool], within: float = DEFAULT_WITHIN, what: str = ""
    ) -> None:
        await eventually(condition, within, what or "the expected events")

    def report(self, committed: Iterable[str | uuid.UUID]) -> LedgerReport:
        """The ledger check: committed (the DB's truth) against what was processed."""
        truth = {str(event_id) for event_id in committed}
        processed = {row[0] for row in self.db.execute("SELECT event_id FROM processed_events")}
        repeated = self.db.execute(
            "SELECT COALESCE(SUM(n - 1), 0) FROM "
            "(SELECT COUNT(*) AS n FROM effects GROUP BY event_id HAVING n > 1)"
        ).fetchone()[0]
        return LedgerReport(
            committed=len(truth),
            observed=len(processed),
            lost=len(truth - processed),
            phantom=len(processed - truth),
            duplicates_delivered=len(self.received) - len(self.event_ids()),
            duplicate_effects=int(repeated),
        )


async def eventually(
    condition: Callable[[], bool], within: float = DEFAULT_WITHIN, what: str = "the condition"
) -> None:
    """Poll until `condition()` holds; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        await asyncio.sleep(0.05)


async def until(
    check: Callable[[], Awaitable[bool]], within: float = DEFAULT_WITHIN, what: str = "the check"
) -> None:
    """Poll until `await check()` is true; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        await asyncio.sleep(0.05)
