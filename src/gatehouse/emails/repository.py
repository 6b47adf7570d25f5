"""Every SQL statement about email messages (the rows that are the email jobs)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.emails.models import EmailMessage

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
# Not sent on purpose: the account was deleted or its address changed before sending.
CANCELLED = "cancelled"


def _due(now: datetime) -> Any:
    return or_(EmailMessage.next_attempt_at.is_(None), EmailMessage.next_attempt_at <= now)


class EmailRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_once(self, values: dict[str, Any]) -> uuid.UUID | None:
        """Insert unless a row of the same (kind, dedupe_key) exists; the new id, or None.

        ON CONFLICT DO NOTHING rather than a look-up first: two dispatchers reacting to
        the same event cannot both insert, and the transaction is not aborted.
        """
        email_id = uuid.uuid4()
        bind = self.session.get_bind()
        dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
        stmt = (
            dialect.insert(EmailMessage)
            .values(id=email_id, **values)
            .on_conflict_do_nothing(index_elements=["kind", "dedupe_key"])
        )
        result = await self.session.execute(stmt)
        return email_id if getattr(result, "rowcount", 0) == 1 else None

    async def get(self, email_id: uuid.UUID) -> EmailMessage | None:
        result: EmailMessage | None = await self.session.get(EmailMessage, email_id)
        return result

    async def claim(self, email_id: uuid.UUID, now: datetime) -> EmailMessage | None:
        """The row if it is pending and due, locked; None if sent, leased or locked."""
        result: EmailMessage | None = await self.session.scalar(
            select(EmailMessage)
            .where(EmailMessage.id == email_id, EmailMessage.status == PENDING, _due(now))
            .with_for_update(skip_locked=True)
        )
        return result

    async def due_ids(self, now: datetime, limit: int) -> Sequence[uuid.UUID]:
        rows = await self.session.scalars(
            select(EmailMessage.id)
            .where(EmailMessage.status == PENDING, _due(now))
            .order_by(EmailMessage.created_at)
            .limit(limit)
        )
        return rows.all()

    async def mark_sent(self, email_id: uuid.UUID, now: datetime) -> bool:
        result = await self.session.execute(
            update(EmailMessage)
            .where(EmailMessage.id == email_id, EmailMessage.status == PENDING)
            .values(status=SENT, sent_at=now, next_attempt_at=None, last_error=None)
            .execution_options(synchronize_session=False)
        )
        return getattr(result, "rowcount", 0) == 1

    async def mark_failed_attempt(
        self, email_id: uuid.UUID, error: str, retry_at: datetime | None
    ) -> None:
        """Record a failed attempt: retried at `retry_at`, or failed for good if None."""
        values: dict[str, Any] = {"last_error": error[:1000]}
        if retry_at is None:
            values.update(status=FAILED, next_attempt_at=None)
        else:
            values["next_attempt_at"] = retry_at
        await self.session.execute(
            update(EmailMessage)
            .where(EmailMessage.id == email_id, EmailMessage.status == PENDING)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def delete_finished(self, before: datetime) -> int:
        """Remove sent, failed and cancelled mails created before `before` (they hold PII)."""
        result = await self.session.execute(
            delete(EmailMessage)
            .where(EmailMessage.status != PENDING, EmailMessage.created_at < before)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0))
