"""Moving outbox rows on: the relay to RabbitMQ and the dispatcher of our own reactions.

Both claim rows with `FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite serialises writers),
so any number of them may run at once. Ordering promise of the relay: the events of
one aggregate (a user) reach the exchange in commit order. A row is therefore only
published once every earlier unpublished row of its aggregate is in the same batch,
and a batch is published in waves (the first pending event of each aggregate, then the
second...), so that a later event never goes out after an earlier one failed.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.config import WorkerSettings
from gatehouse.events.models import OutboxEvent
from gatehouse.events.publisher import (
    BrokerUnavailable,
    EventPublisher,
    Failure,
    Outcome,
    Outgoing,
)
from gatehouse.events.repository import OutboxRepository
from gatehouse.kit import metrics
from gatehouse.kit.context import Actor
from gatehouse.kit.tasks import Reaction
from gatehouse.kit.time import utcnow
from gatehouse.observability import tracing
from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.events")

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 300.0


def backoff(attempts: int) -> timedelta:
    """Wait before the next publish of a row that failed `attempts` times: 1 s, 2 s,
    4 s... at most 5 minutes."""
    exponent = min(max(attempts, 1) - 1, 16)
    return timedelta(seconds=min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**exponent))


def _outgoing(row: OutboxEvent) -> Outgoing:
    return Outgoing(
        event_id=row.event_id,
        event_type=row.event_type,
        payload=row.payload,
        created_at=row.created_at,
        request_id=row.request_id,
        aggregate_id=row.aggregate_id,
        traceparent=row.traceparent,
    )


# --- the relay ---------------------------------------------------------------------------


async def relay_batch(runtime: Runtime) -> int:
    """Publish one batch of due outbox rows; returns how many the broker confirmed.

    Without a broker (the embedded default) nothing is published. When the broker
    cannot be reached, no row is touched: the outage is not the rows' fault, and the
    next trigger or sweep tries again as soon as it is back.
    """
    if runtime.settings.broker_url is None:
        return 0
    publisher = runtime.part(EventPublisher)
    try:
        # Before the unit of work: no row lock (nor SQLite's write lock) is held while
        # waiting for a broker that is not there.
        await publisher.connect()
    except BrokerUnavailable:
        return 0  # logged by the publisher, once per outage
    async with runtime.db.session() as session:
        return await relay(session, publisher, runtime.settings.worker)


async def relay(session: AsyncSession, publisher: EventPublisher, settings: WorkerSettings) -> int:
    """Claim, publish and mark one batch inside the caller's unit of work."""
    repo = OutboxRepository(session)
    now = utcnow()
    rows = await repo.claim_unpublished(settings.outbox_batch_size, now)
    if not rows:
        return 0
    # One queue per aggregate (a row without one is its own), in id order.
    queues: dict[uuid.UUID | int, deque[OutboxEvent]] = {}
    for row in await _in_order(repo, rows):
        key = row.aggregate_id if row.aggregate_id is not None else row.id
        queues.setdefault(key, deque()).append(row)
    confirmed: list[int] = []
    while queues:
        # A wave: the next row of every aggregate, published concurrently.
        wave = [(key, queue.popleft()) for key, queue in queues.items()]
        outcomes = await publisher.publish([_outgoing(row) for _, row in wave])
        broken = False
        for (key, row), outcome in zip(wave, outcomes, strict=True):
            if outcome.confirmed:
                confirmed.append(row.id)
                metrics.OUTBOX_PUBLISHED.labels(row.event_type).inc()
                continue
            _failed(row, outcome, now)
            # The aggregate's later rows wait until this one got through.
            queues[key].clear()
            broken = broken or outcome.failure is Failure.link
        if broken:
            # The link is gone: the rest of the batch waits for the next run.
            break
        queues = {key: queue for key, queue in queues.items() if queue}
    await repo.mark_published(confirmed, utcnow())
    log.debug("outbox.relayed", published=len(confirmed), claimed=len(rows))
    return len(confirmed)


async def _in_order(repo: OutboxRepository, rows: Sequence[OutboxEvent]) -> list[OutboxEvent]:
    """The claimed rows that may go now: none of their aggregate's earlier unpublished
    rows is missing from the batch (held by another relay, or backing off)."""
    claimed = {row.id for row in rows}
    aggregates = {row.aggregate_id for row in rows if row.aggregate_id is not None}
    blocked_from: dict[uuid.UUID, int] = {}
    for row_id, aggregate in await repo.unpublished_of(aggregates, rows[-1].id):
        if row_id not in claimed and aggregate not in blocked_from:
            blocked_from[aggregate] = row_id
    return [
        row
        for row in rows
        if row.aggregate_id is None or row.id < blocked_from.get(row.aggregate_id, row.id + 1)
    ]


def _failed(row: OutboxEvent, outcome: Outcome, now: datetime) -> None:
    metrics.OUTBOX_FAILURES.labels(outcome.failure or Failure.link).inc()
    row.publish_attempts += 1
    row.last_error = outcome.error
    row.next_publish_at = now + backoff(row.publish_attempts)
    fields = {
        "event_id": str(row.event_id),
        "event_type": row.event_type,
        "attempts": row.publish_attempts,
        "retry_at": row.next_publish_at.isoformat(),
        "error": outcome.error,
        "request_id": row.request_id,
    }
    if outcome.failure is Failure.unroutable:
        # Confirmed by the broker, yet no queue is bound for it: nobody would get it.
        log.error("outbox.unroutable", **fields)
    else:
        log.warning("outbox.publish_failed", **fields)


# --- the dispatcher ----------------------------------------------------------------------


async def dispatch_batch(runtime: Runtime, reactions: Sequence[Reaction]) -> int:
    """Run Gatehouse's own reactions (emails, webhooks: the caller collects them) for
    one batch of undispatched rows, in the same unit of work that marks them; returns
    how many were dispatched."""
    async with runtime.unit_of_work() as uow:
        session = uow.session
        repo = OutboxRepository(session)
        rows = await repo.claim_undispatched(runtime.settings.worker.outbox_batch_size)
        done = 0
        for row in rows:
            # Read now: rolling the savepoint back expires what it touched.
            about = {
                "event_id": str(row.event_id),
                "event_type": row.event_type,
                "request_id": row.request_id,
            }
            try:
                # A reaction that fails undoes only its own writes; the row stays
                # undispatched and is tried again with the next batch.
                uow.act_as(Actor.system(row.request_id))
                # In the trace of the request that wrote the event: the jobs its
                # reactions ask for (a mail, a webhook delivery) carry it on.
                with tracing.span(
                    f"outbox.dispatch {row.event_type}",
                    traceparent=row.traceparent,
                    attributes={"gatehouse.event_id": about["event_id"]},
                ):
                    async with session.begin_nested():
                        for handler in reactions:
                            await handler(uow, runtime, row)
            except Exception:
                log.exception("outbox.dispatch_failed", **about)
                continue
            row.dispatched_at = utcnow()
            done += 1
        return done


# --- sweep, cleanup, figures -------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    relay: bool
    dispatch: bool


async def due_work(runtime: Runtime) -> Due:
    """Whether rows wait for the relay (only with a broker) or for the dispatcher."""
    async with runtime.db.session(write=False) as session:
        repo = OutboxRepository(session)
        relay = runtime.settings.broker_url is not None and await repo.has_relayable(utcnow())
        return Due(relay=relay, dispatch=await repo.has_undispatched())


async def delete_expired(runtime: Runtime) -> int:
    """Delete rows past `outbox_retention_days` that are dispatched and published (or
    dispatched only, without a broker: nothing will ever publish them)."""
    before = utcnow() - timedelta(days=runtime.settings.worker.outbox_retention_days)
    async with runtime.db.session() as session:
        return await OutboxRepository(session).delete_done(
            before, require_published=runtime.settings.broker_url is not None
        )


@dataclass(frozen=True)
class OutboxStats:
    """For health and metrics. The publish figures are None without a broker."""

    pending_publish: int | None
    pending_dispatch: int
    oldest_unpublished_seconds: float | None
    oldest_undispatched_seconds: float | None


def age_seconds(now: datetime, moment: datetime | None) -> float | None:
    # A row stamped a little ahead of this clock (another host's) is not negative lag.
    return None if moment is None else max(0.0, (now - moment).total_seconds())


async def backlog(session: AsyncSession, *, broker: bool) -> OutboxStats:
    """What waits in the outbox, read in the caller's session (without a broker nothing
    is ever published: that backlog does not exist)."""
    now = utcnow()
    repo = OutboxRepository(session)
    dispatch_count, dispatch_oldest = await repo.pending(unpublished=False)
    if not broker:
        return OutboxStats(None, dispatch_count, None, age_seconds(now, dispatch_oldest))
    publish_count, publish_oldest = await repo.pending(unpublished=True)
    return OutboxStats(
        publish_count,
        dispatch_count,
        age_seconds(now, publish_oldest),
        age_seconds(now, dispatch_oldest),
    )


async def stats(runtime: Runtime) -> OutboxStats:
    async with runtime.db.session(write=False) as session:
        return await backlog(session, broker=runtime.settings.broker_url is not None)
