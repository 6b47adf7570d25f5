"""What this feature does when an event is dispatched (in the dispatcher's transaction).

user.created → a welcome mail, and a verification mail while the address is not
verified; user.updated with a new email → a verification mail to the new address.
Each mail is keyed by the event id, so dispatching an event again writes nothing new.
"""

from __future__ import annotations

import uuid
from typing import Any

from gatehouse.emails.service import queue_email
from gatehouse.emails.templates import Kind
from gatehouse.events.models import OutboxEvent
from gatehouse.runtime import Runtime
from gatehouse.uow import UnitOfWork
from gatehouse.users.repository import UserRepository


async def on_event(uow: UnitOfWork, runtime: Runtime, event: OutboxEvent) -> None:
    if event.event_type not in {"user.created", "user.updated"}:
        return
    data: dict[str, Any] = event.payload.get("data", {})
    try:
        user_id = uuid.UUID(str(data["user_id"]))
    except (KeyError, ValueError):
        return
    # The account as it is now: a deleted one gets no mail, and a mail goes to the
    # address the account has now, not the one in an older event.
    user = await UserRepository(uow.session).get(user_id)
    if user is None:
        return
    key = str(event.event_id)
    settings = runtime.settings

    async def queue(kind: Kind) -> None:
        await queue_email(
            uow, settings, kind=kind, user=user, dedupe_key=key, request_id=event.request_id
        )

    if event.event_type == "user.created":
        await queue(Kind.welcome)
        if user.email_verified_at is None and user.email == data.get("email"):
            await queue(Kind.verify_email)
        return
    new_email = (data.get("changes") or {}).get("email")
    if new_email is not None and user.email == new_email and user.email_verified_at is None:
        await queue(Kind.verify_email)
