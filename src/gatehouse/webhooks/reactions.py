"""What this feature does when an event is dispatched (in the dispatcher's transaction)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.events.models import OutboxEvent
from gatehouse.runtime import Runtime


async def on_event(session: AsyncSession, runtime: Runtime, event: OutboxEvent) -> None:
    return None
