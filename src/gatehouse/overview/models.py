"""The admin overview's own tables: the audit trail's sign-up and login counts per closed
UTC hour, rolled up by a maintenance step (overview/tasks.py), so the overview reads 30
days from a few thousand rows instead of the trail's index."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gatehouse.db.base import Base
from gatehouse.kit.types import UTCDateTime


class AuditActivityHour(Base):
    """How many audit rows of one counted action and outcome one closed UTC hour holds.

    Written once per hour and never updated: the trail is append-only, its retention
    removes rows only after a year and an erasure only nulls personal columns, so the
    count of a closed hour never changes.
    """

    __tablename__ = "audit_activity_hours"

    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    action: Mapped[str] = mapped_column(String(100), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class AuditActivityRollup(Base):
    """One row (id 1), once the rollup has run: every hour before `rolled_until` is in
    `audit_activity_hours`, an hour without activity included (it has no row there)."""

    __tablename__ = "audit_activity_rollup"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rolled_until: Mapped[datetime] = mapped_column(UTCDateTime)
