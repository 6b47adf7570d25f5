"""Writing events: in the caller's transaction, so the event exists iff the change does."""

from __future__ import annotations

import uuid

from gatehouse.events.models import OutboxEvent
from gatehouse.events.schemas import EventData, envelope, event_type_of
from gatehouse.kit.time import utcnow
from gatehouse.observability import tracing
from gatehouse.uow import UnitOfWork

RELAY_JOB = "events.relay"
DISPATCH_JOB = "events.dispatch"


async def record(
    uow: UnitOfWork, data: EventData, *, aggregate_id: uuid.UUID | None
) -> OutboxEvent:
    """Add an event to the outbox; relayed and dispatched once the transaction commits."""
    session = uow.session
    # The change is written first, so the event's id is taken after the row lock that
    # orders this user's writers (commit order per user).
    await session.flush()
    event_type = event_type_of(data)
    event_id = uuid.uuid4()
    now = utcnow()
    row = OutboxEvent(
        event_id=event_id,
        event_type=event_type,
        aggregate_id=aggregate_id,
        payload=envelope(event_type, event_id, now, data),
        request_id=uow.actor.request_id,
        traceparent=tracing.current_traceparent(),
        created_at=now,
    )
    session.add(row)
    await session.flush()
    uow.jobs.after_commit(RELAY_JOB)
    uow.jobs.after_commit(DISPATCH_JOB)
    return row
