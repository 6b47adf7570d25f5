"""Every SQL statement of the admin overview: counts over other features' tables, read
only, each answered from an index; and the rollup of the activity counts, the only
writes, made by the maintenance step (overview/tasks.py), never by a read.

The activity counts read the audit trail through `idx_audit_events_action_time`
(action, occurred_at, outcome): one index range per counted action, and every column
the statement needs is in the index, so PostgreSQL answers with an index-only scan and
never reads the wide rows. The rollup makes that range short: the closed hours it has
counted are read from `audit_activity_hours` (a few thousand rows), the trail only from
`rolled_until` on, normally under an hour of rows (benchmarks/overview.py measures
both at 1,000,000 rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.audit.models import AuditEvent
from gatehouse.auth.models import Session
from gatehouse.overview.models import AuditActivityHour, AuditActivityRollup
from gatehouse.users.models import User

# The audit actions the overview counts (docs/audit.md, "Actions").
SIGNUP = "auth.register"
LOGIN = "auth.login"
# The rollup's state is one row.
ROLLUP_ID = 1


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

    async def activity_by_hour(
        self, since: datetime, until: datetime | None = None
    ) -> list[HourCount]:
        """Sign-up and login rows per UTC hour, action and outcome, from `since` on
        (and before `until` if given).

        Hours, not days: one pass over the range gives both the hourly and the daily
        series (a UTC day is 24 whole UTC hours), and there are at most a few thousand
        groups to hand back. No plan per value is needed (unlike the trail's pages): the
        index holds every column read and leads with the action, so a generic plan is
        the same index-only range scan (benchmarks/overview.py shows both).
        """
        hour = self._hour_of_row().label("hour")
        query = (
            select(hour, AuditEvent.action, AuditEvent.outcome, func.count().label("n"))
            .where(AuditEvent.action.in_((SIGNUP, LOGIN)), AuditEvent.occurred_at >= since)
            .group_by(hour, AuditEvent.action, AuditEvent.outcome)
        )
        if until is not None:
            query = query.where(AuditEvent.occurred_at < until)
        rows = await self.session.execute(query)
        return [HourCount(_utc(row.hour), row.action, row.outcome, int(row.n)) for row in rows]

    async def rolled_until(self) -> datetime | None:
        """The end of the hours the rollup has counted; None until it first runs."""
        return await self.session.scalar(
            select(AuditActivityRollup.rolled_until).where(AuditActivityRollup.id == ROLLUP_ID)
        )

    async def rolled_activity(self, since: datetime, until: datetime) -> list[HourCount]:
        """The rolled-up counts of the hours in [since, until): a primary-key range."""
        rows = await self.session.execute(
            select(AuditActivityHour).where(
                AuditActivityHour.hour >= since, AuditActivityHour.hour < until
            )
        )
        return [HourCount(r.hour, r.action, r.outcome, r.count) for r in rows.scalars()]

    async def roll(self, since: datetime, until: datetime) -> int:
        """Count the closed hours in [since, until) into the rollup and move
        `rolled_until` up to `until`; the number of hour rows written.

        Safe to run twice at once (two workers' sweeps): a closed hour's counts are the
        same whoever counts them, so a row already there is left as it is, and
        `rolled_until` only ever moves forward.
        """
        counts = await self.activity_by_hour(since, until)
        insert = postgresql_insert if self.dialect == "postgresql" else sqlite_insert
        if counts:
            await self.session.execute(
                insert(AuditActivityHour).on_conflict_do_nothing(),
                [
                    {"hour": c.hour, "action": c.action, "outcome": c.outcome, "count": c.count}
                    for c in counts
                ],
            )
        await self.session.execute(
            insert(AuditActivityRollup)
            .values(id=ROLLUP_ID, rolled_until=until)
            .on_conflict_do_nothing()
        )
        await self.session.execute(
            update(AuditActivityRollup)
            .where(AuditActivityRollup.id == ROLLUP_ID, AuditActivityRollup.rolled_until < until)
            .values(rolled_until=until)
        )
        return len(counts)

    async def purge_rolled_before(self, before: datetime) -> int:
        """Drop the rolled-up hours before `before`: the overview never reads them."""
        result = await self.session.execute(
            delete(AuditActivityHour).where(AuditActivityHour.hour < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)

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
