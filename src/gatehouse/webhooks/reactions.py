"""What this feature does when an event is dispatched (in the dispatcher's transaction)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.events.models import OutboxEvent
from gatehouse.runtime import Runtime
from gatehouse.webhooks.service import fan_out


async def on_event(session: AsyncSession, runtime: Runtime, event: OutboxEvent) -> None:
    """Owe the event to each enabled subscription that wants it; deliver after commit."""
    await fan_out(session, event)
