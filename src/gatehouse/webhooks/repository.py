"""Every SQL statement about webhook subscriptions and deliveries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.webhooks.models import WebhookDelivery, WebhookSubscription

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- subscriptions -------------------------------------------------------------------

    async def get(self, webhook_id: uuid.UUID, *, lock: bool = False) -> WebhookSubscription | None:
        stmt = select(WebhookSubscription).where(WebhookSubscription.id == webhook_id)
        if lock:
            # Locked to decide on the current row, not on what this session read before.
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        result: WebhookSubscription | None = await self.session.scalar(stmt)
        return result

    async def page(self, page: int, page_size: int) -> tuple[Sequence[WebhookSubscription], int]:
        total = await self.session.scalar(select(func.count()).select_from(WebhookSubscription))
        rows = await self.session.scalars(
            select(WebhookSubscription)
            .order_by(WebhookSubscription.created_at.desc(), WebhookSubscription.id.desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        return rows.all(), int(total or 0)

    async def enabled(self) -> Sequence[WebhookSubscription]:
        rows = await self.session.scalars(
            select(WebhookSubscription).where(WebhookSubscription.enabled.is_(True))
        )
        return rows.all()

    def add(self, subscription: WebhookSubscription) -> None:
        self.session.add(subscription)

    async def delete(self, subscription: WebhookSubscription) -> None:
        await self.session.delete(subscription)

    # --- deliveries ----------------------------------------------------------------------

    async def add_delivery(self, values: dict[str, Any]) -> uuid.UUID | None:
        """Insert a delivery unless this subscription already owes this event; its id."""
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = (
            insert(WebhookDelivery)
            .values(id=uuid.uuid4(), **values)
            .on_conflict_do_nothing(index_elements=["subscription_id", "event_id"])
            .returning(WebhookDelivery.id)
        )
        result: uuid.UUID | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return result

    def add_delivery_row(self, delivery: WebhookDelivery) -> None:
        self.session.add(delivery)

    async def deliveries_page(
        self, subscription_id: uuid.UUID, page: int, page_size: int, status: str | None
    ) -> tuple[Sequence[WebhookDelivery], int]:
        filters: list[ColumnElement[bool]] = [WebhookDelivery.subscription_id == subscription_id]
        if status is not None:
            filters.append(WebhookDelivery.status == status)
        total = await self.session.scalar(
            select(func.count()).select_from(WebhookDelivery).where(*filters)
        )
        rows = await self.session.scalars(
            select(WebhookDelivery)
            .where(*filters)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        return rows.all(), int(total or 0)

    async def claim_due(
        self, delivery_id: uuid.UUID, now: datetime
    ) -> tuple[WebhookDelivery, WebhookSubscription] | None:
        """The delivery if it is pending and due, locked; None if not (or taken)."""
        delivery: WebhookDelivery | None = await self.session.scalar(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == PENDING,
                WebhookDelivery.next_attempt_at <= now,
            )
            .with_for_update(skip_locked=True)
        )
        if delivery is None:
            return None
        subscription = await self.get(delivery.subscription_id)
        if subscription is None:
            return None
        return delivery, subscription

    async def pending(self) -> tuple[int, datetime | None]:
        """Deliveries waiting for their first or next attempt (disabled subscriptions'
        too: they go out once it is enabled again), and the oldest one's creation."""
        # The value spelled out in the SQL: a bound parameter would keep a generic plan
        # of a prepared statement from using the partial index on pending rows.
        count, oldest = (
            await self.session.execute(
                select(func.count(), func.min(WebhookDelivery.created_at)).where(
                    WebhookDelivery.status == literal_column(f"'{PENDING}'")
                )
            )
        ).one()
        return int(count or 0), oldest

    async def lock_delivery(self, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        result: WebhookDelivery | None = await self.session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
        )
        return result

    async def due_ids(self, now: datetime, limit: int) -> list[uuid.UUID]:
        """Pending deliveries due now, of enabled subscriptions, oldest first."""
        rows = await self.session.scalars(
            select(WebhookDelivery.id)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(
                WebhookDelivery.status == PENDING,
                WebhookDelivery.next_attempt_at <= now,
                WebhookSubscription.enabled.is_(True),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
        return list(rows.all())

    async def resume(self, subscription_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
        """Make a subscription's pending deliveries due now; their ids."""
        rows = await self.session.scalars(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.subscription_id == subscription_id,
                WebhookDelivery.status == PENDING,
            )
            .values(next_attempt_at=now)
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        )
        return list(rows.all())

    async def purge(self, finished_before: datetime) -> int:
        """Delete finished deliveries, and pending ones of disabled subscriptions, older
        than the cutoff."""
        stale_disabled = select(WebhookSubscription.id).where(
            WebhookSubscription.enabled.is_(False)
        )
        result = await self.session.execute(
            delete(WebhookDelivery)
            .where(
                or_(
                    and_(
                        WebhookDelivery.status != PENDING,
                        WebhookDelivery.finished_at < finished_before,
                    ),
                    and_(
                        WebhookDelivery.status == PENDING,
                        WebhookDelivery.created_at < finished_before,
                        WebhookDelivery.subscription_id.in_(stale_disabled),
                    ),
                )
            )
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)
