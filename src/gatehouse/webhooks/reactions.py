"""What this feature does when an event is dispatched (in the dispatcher's transaction)."""

from __future__ import annotations

from gatehouse.events.models import OutboxEvent
from gatehouse.runtime import Runtime
from gatehouse.uow import UnitOfWork
from gatehouse.webhooks.service import fan_out


async def on_event(uow: UnitOfWork, runtime: Runtime, event: OutboxEvent) -> None:
    """Owe the event to each enabled subscription that wants it; deliver after commit."""
    await fan_out(uow, event)
