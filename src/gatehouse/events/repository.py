"""Every SQL statement about the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from gatehouse.events.models import OutboxEvent


def _relayable(now: datetime) -> list[ColumnElement[bool]]:
    """Unpublished, due, and not stuck behind an earlier row of its aggregate that is
    backing off (it could not be published before that one anyway)."""
    earlier = aliased(OutboxEvent)
    backing_off = (
        select(earlier.id)
        .where(
            earlier.aggregate_id == OutboxEvent.aggregate_id,
            earlier.id < OutboxEvent.id,
            earlier.published_at.is_(None),
            earlier.next_publish_at > now,
        )
        .exists()
    )
    due = or_(OutboxEvent.next_publish_at.is_(None), OutboxEvent.next_publish_at <= now)
    return [OutboxEvent.published_at.is_(None), due, ~backing_off]


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim_unpublished(self, limit: int, now: datetime) -> Sequence[OutboxEvent]:
        """Lock up to `limit` relayable rows in id order, skipping rows others hold."""
        rows = await self.session.scalars(
            select(OutboxEvent)
            .where(*_relayable(now))
            .order_by(OutboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=OutboxEvent)
        )
        return rows.all()

    async def unpublished_of(
        self, aggregate_ids: Collection[uuid.UUID], up_to: int
    ) -> Sequence[tuple[int, uuid.UUID]]:
        """(id, aggregate) of every unpublished row of these aggregates up to `up_to`,
        locked or not, in id order."""
        if not aggregate_ids:
            return []
        rows = await self.session.execute(
            select(OutboxEvent.id, OutboxEvent.aggregate_id)
            .where(
                OutboxEvent.published_at.is_(None),
                OutboxEvent.aggregate_id.in_(aggregate_ids),
                OutboxEvent.id <= up_to,
            )
            .order_by(OutboxEvent.id)
        )
        return [(row_id, aggregate) for row_id, aggregate in rows.all() if aggregate]

    async def mark_published(self, ids: Collection[int], now: datetime) -> None:
        if ids:
            await self.session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id.in_(ids))
                .values(published_at=now, next_publish_at=None)
                .execution_options(synchronize_session=False)
            )

    async def claim_undispatched(self, limit: int) -> Sequence[OutboxEvent]:
        rows = await self.session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.dispatched_at.is_(None))
            .order_by(OutboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return rows.all()

    async def has_relayable(self, now: datetime) -> bool:
        found = await self.session.scalar(select(OutboxEvent.id).where(*_relayable(now)).limit(1))
        return found is not None

    async def has_undispatched(self) -> bool:
        found = await self.session.scalar(
            select(OutboxEvent.id).where(OutboxEvent.dispatched_at.is_(None)).limit(1)
        )
        return found is not None

    async def pending(self, unpublished: bool) -> tuple[int, datetime | None]:
        """How many rows wait to be published (or dispatched), and the oldest one's time."""
        column = OutboxEvent.published_at if unpublished else OutboxEvent.dispatched_at
        count = await self.session.scalar(
            select(func.count()).select_from(OutboxEvent).where(column.is_(None))
        )
        oldest = await self.session.scalar(
            select(OutboxEvent.created_at).where(column.is_(None)).order_by(OutboxEvent.id).limit(1)
        )
        return int(count or 0), oldest

    async def delete_done(self, before: datetime, *, require_published: bool) -> int:
        """Delete rows created before `before` that are dispatched (and published)."""
        stmt = delete(OutboxEvent).where(
            OutboxEvent.created_at < before, OutboxEvent.dispatched_at.is_not(None)
        )
        if require_published:
            stmt = stmt.where(OutboxEvent.published_at.is_not(None))
        result = await self.session.execute(stmt.execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)
