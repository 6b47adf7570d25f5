"""Every SQL statement of the admin overview: counts over other features' tables, read
only, each answered from an index.

The activity counts read the audit trail through `idx_audit_events_action_time`
(action, occurred_at, outcome): one index range per counted action, and every column
the statement needs is in the index, so PostgreSQL answers with an index-only scan and
never reads the wide rows (benchmarks/overview.py measures it at 1,000,000 rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.audit.models import AuditEvent
from gatehouse.auth.models import Session
from gatehouse.users.models import User
from gatehouse.webhooks.models import WebhookDelivery
from gatehouse.webhooks.repository import PENDING

# The audit actions the overview counts (docs/audit.md, "Actions").
SIGNUP = "auth.register"
LOGIN = "auth.login"


@dataclass(frozen=True)
class HourCount:
    """The audit rows of one action and outcome recorded in one UTC hour."""

    hour: datetime
    action: str
    outcome: str
    count: int


def _utc(value: datetime | str) -> datetime:
    # PostgreSQL hands the truncated hour back as a naive timestamp (already in UTC),
    # SQLite as text.
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class OverviewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def _hour_of_row(self) -> ColumnElement[Any]:
        if self.dialect == "postgresql":
            # In UTC whatever the connection's TimeZone: truncating in a zone an odd
            # number of half hours from UTC would shift every bucket.
            return func.date_trunc("hour", func.timezone("UTC", AuditEvent.occurred_at))
        # SQLite stores the UTC time as text, "YYYY-MM-DD HH:MM:SS.ffffff".
        return func.strftime("%Y-%m-%d %H:00:00", AuditEvent.occurred_at)

    async def activity_by_hour(self, since: datetime) -> list[HourCount]:
        """Sign-up and login rows per UTC hour, action and outcome, from `since` on.

        Hours, not days: one pass over the range gives both the hourly and the daily
        series (a UTC day is 24 whole UTC hours), and there are at most a few thousand
        groups to hand back. No plan per value is needed (unlike the trail's pages): the
        index holds every column read and leads with the action, so a generic plan is
        the same index-only range scan (benchmarks/overview.py shows both).
        """
        hour = self._hour_of_row().label("hour")
        rows = await self.session.execute(
            select(hour, AuditEvent.action, AuditEvent.outcome, func.count().label("n"))
            .where(AuditEvent.action.in_((SIGNUP, LOGIN)), AuditEvent.occurred_at >= since)
            .group_by(hour, AuditEvent.action, AuditEvent.outcome)
        )
        return [HourCount(_utc(row.hour), row.action, row.outcome, int(row.n)) for row in rows]

    async def active_sessions(self, now: datetime) -> int:
        """Sessions that a refresh would still accept: not revoked, within both limits."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(Session)
            .where(
                Session.revoked_at.is_(None),
                Session.expires_at > now,
                Session.absolute_expires_at > now,
            )
        )
        return int(count or 0)

    async def live_users_by_role(self) -> dict[str, int]:
        rows = await self.session.execute(
            select(User.role, func.count()).where(User.deleted_at.is_(None)).group_by(User.role)
        )
        return {role: int(count) for role, count in rows}

    async def pending_deliveries(self) -> tuple[int, datetime | None]:
        """How many webhook deliveries wait (due or backing off), and the oldest one's
        creation time."""
        row = (
            await self.session.execute(
                select(func.count(), func.min(WebhookDelivery.created_at)).where(
                    WebhookDelivery.status == PENDING
                )
            )
        ).one()
        count, oldest = row
        return int(count or 0), oldest
