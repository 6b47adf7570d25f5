"""Writing events: in the caller's transaction, so the event exists iff the change does."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.events.models import OutboxEvent
from gatehouse.events.schemas import EventData, envelope, event_type_of
from gatehouse.kit.context import current_request_id
from gatehouse.kit.jobs import enqueue_after_commit
from gatehouse.kit.time import utcnow

RELAY_JOB = "events.relay"
DISPATCH_JOB = "events.dispatch"


async def record(
    session: AsyncSession, data: EventData, *, aggregate_id: uuid.UUID | None
) -> OutboxEvent:
    """Add an event to the outbox; relayed and dispatched once the transaction commits."""
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
        request_id=current_request_id(),
        created_at=now,
    )
    session.add(row)
    await session.flush()
    enqueue_after_commit(session, RELAY_JOB)
    enqueue_after_commit(session, DISPATCH_JOB)
    return row
