from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, Uuid, func, text
from sqlalchemy.orm import Mapped, mapped_column

from gatehouse.db.base import Base
from gatehouse.kit.time import utcnow
from gatehouse.kit.types import BigId, UTCDateTime


class OutboxEvent(Base):
    """An event, written in the same transaction as the change it announces.

    Two independent cursors read it: the relay publishes to RabbitMQ (`published_at`)
    and the dispatcher runs Gatehouse's own reactions, webhooks and emails
    (`dispatched_at`), so an unreachable broker never holds back a webhook.
    """

    __tablename__ = "outbox_events"

    # Commit order per user: the user's row lock orders its writers, and each takes
    # its id from the sequence after that lock.
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    event_type: Mapped[str] = mapped_column(String(100))
    aggregate_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    # The envelope exactly as published: {event_type, event_id, timestamp, data}.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(200), default=None)
    # The W3C traceparent of the span that wrote it (tracing on): its relay, dispatch
    # and jobs continue that trace, and the RabbitMQ message carries it.
    traceparent: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Backoff after a failed publish; NULL means "now".
    next_publish_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (
        Index(
            "idx_outbox_events_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
        Index(
            "idx_outbox_events_undispatched",
            "id",
            postgresql_where=text("dispatched_at IS NULL"),
            sqlite_where=text("dispatched_at IS NULL"),
        ),
        Index("idx_outbox_events_aggregate_id", "aggregate_id", "id"),
        Index("idx_outbox_events_created_at", "created_at"),
    )
