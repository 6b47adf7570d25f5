"""The dead-letter queue `<prefix>.dead`: list what is there and why, and replay it.

Used by `gatehouse dead-letters [--replay]` (docs/operations.md, "Background work").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import amqp  # type: ignore[import-untyped]
from kombu.connection import Connection

from gatehouse.config import Settings
from gatehouse.worker.celery_app import REQUEST_ID_HEADER, Topology


@dataclass(frozen=True)
class DeadLetter:
    job: str
    task_id: str
    reason: str  # "rejected": failed for good; "delivery_limit": a worker died on it
    queue: str
    died_at: str
    request_id: str | None
    arguments: str


def _describe(message: Any) -> DeadLetter:
    headers = message.headers or {}
    death = (headers.get("x-death") or [{}])[0]  # the latest death comes first
    return DeadLetter(
        job=str(headers.get("task", "?")),
        task_id=str(headers.get("id", "?")),
        reason=str(death.get("reason", "?")),
        queue=str(death.get("queue", "?")),
        died_at=str(death.get("time", "?")),
        request_id=headers.get(REQUEST_ID_HEADER),
        arguments=str(headers.get("kwargsrepr", "")),
    )


def _dead_letter_channel(settings: Settings, connection: Connection) -> tuple[Any, int]:
    topology = Topology(settings.worker.task_queue_prefix)
    channel = connection.channel()  # type: ignore[no-untyped-call]
    topology.dead_letter_queue().bind(channel).declare()  # type: ignore[no-untyped-call]
    _, count, _ = channel.queue_declare(queue=topology.dead, passive=True)
    return channel, int(count)


def peek_dead_letters(settings: Settings, limit: int) -> tuple[int, list[DeadLetter]]:
    """How many messages the dead-letter queue holds, and the first `limit` of them."""
    with Connection(settings.broker_url, connect_timeout=5) as connection:  # type: ignore[no-untyped-call]
        channel, count = _dead_letter_channel(settings, connection)
        seen: list[DeadLetter] = []
        while len(seen) < min(limit, count):
            message = channel.basic_get(queue=Topology(settings.worker.task_queue_prefix).dead)
            if message is None:
                break
            seen.append(_describe(message))
        # Closing the channel unacknowledged puts them all back, in their order.
        return count, seen


def replay_dead_letters(settings: Settings, limit: int | None = None) -> list[DeadLetter]:
    """Move dead letters back to the queue they died in, with their retries renewed."""
    topology = Topology(settings.worker.task_queue_prefix)
    replayed: list[DeadLetter] = []
    with Connection(settings.broker_url, connect_timeout=5) as connection:  # type: ignore[no-untyped-call]
        channel, _ = _dead_letter_channel(settings, connection)
        channel.confirm_select()
        while limit is None or len(replayed) < limit:
            message = channel.basic_get(queue=topology.dead)
            if message is None:
                break
            letter = _describe(message)
            # Back where it died; a queue not of ours (a delay queue) means the tasks one.
            queue = letter.queue if letter.queue == topology.webhooks else topology.tasks
            headers = {k: v for k, v in message.headers.items() if not k.startswith("x-")}
            headers["retries"] = 0
            properties = {
                k: v
                for k, v in message.properties.items()
                if k in {"content_type", "content_encoding", "correlation_id", "priority"}
            }
            copy = amqp.Message(
                message.body, application_headers=headers, delivery_mode=2, **properties
            )
            # Acknowledged only once the broker has confirmed the copy: at least once.
            channel.basic_publish_confirm(copy, exchange="", routing_key=queue, confirm_timeout=10)
            channel.basic_ack(message.delivery_tag)
            replayed.append(replace(letter, queue=queue))
    return replayed
