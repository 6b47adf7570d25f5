from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from gatehouse.db.base import Base
from gatehouse.kit.types import BigId, UTCDateTime


class AuditEvent(Base):
    """One audited action: append-only, each row chained to the one before by an HMAC.

    A request inserts the row without its chain position (`seq`, `prev_hash`, `hash`
    NULL: unsealed); the sealer (gatehouse.audit.sealer) fills them in, in id order,
    seconds later, once and for good.

    Personal data (the identifier typed at login, an email or name that changed, the
    client's IP and user agent) lives in `pii` only, and the chain covers its digest,
    not the data itself: erasing a person nulls `pii` and the chain still verifies.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Position in the chain: contiguous, assigned by the sealer under the chain lock;
    # NULL until then (NULLs are distinct: the unique index allows many).
    seq: Mapped[int | None] = mapped_column(BigId, unique=True, default=None)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Dotted, from a fixed vocabulary (gatehouse.audit.actions), e.g. "auth.login".
    action: Mapped[str] = mapped_column(String(100))
    # success | failure | denied
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(100), default=None)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    actor_role: Mapped[str | None] = mapped_column(String(50), default=None)
    target_type: Mapped[str | None] = mapped_column(String(50), default=None)
    target_id: Mapped[str | None] = mapped_column(String(100), default=None)
    request_id: Mapped[str | None] = mapped_column(String(200), default=None)
    # Safe details: changed field names, roles, counts; never personal data or secrets.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pii: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    pii_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    prev_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    hash: Mapped[str | None] = mapped_column(String(64), default=None)

    __table_args__ = (
        Index("idx_audit_events_actor", "actor_id", "id"),
        Index("idx_audit_events_target", "target_id", "id"),
        Index(
            "idx_audit_events_action",
            "action",
            "id",
            postgresql_ops={"action": "varchar_pattern_ops"},
        ),
        Index("idx_audit_events_outcome", "outcome", "id"),
        Index("idx_audit_events_occurred_at", "occurred_at", "id"),
        # "What did request X do?": without it, a full scan (the query API's request_id).
        Index("idx_audit_events_request", "request_id", "id"),
        # The admin overview's sign-ups and logins per hour: one range per action, and
        # outcome in the index, so the counts never read the rows (overview/repository.py).
        Index("idx_audit_events_action_time", "action", "occurred_at", "outcome"),
        # The sealer's queue and the backlog gauge: only the few unsealed rows.
        Index(
            "idx_audit_events_unsealed",
            "id",
            postgresql_where=text("seq IS NULL"),
            sqlite_where=text("seq IS NULL"),
        ),
    )


class AuditCheckpoint(Base):
    """The chain's head as the cleanup job saw it: (seq, hash) and how many rows there
    were, signed with the audit key.

    Append-only on PostgreSQL with no maintenance exception, so the flag that lets the
    retention job delete expired rows cannot remove a checkpoint; `verify` requires
    the chain to reach the newest one, so removing the newest rows is detected.
    """

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigId)
    hash: Mapped[str] = mapped_column(String(64))
    # Rows in the table up to `seq` then (retention removes some later): for the log.
    row_count: Mapped[int] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signature: Mapped[str] = mapped_column(String(64))
