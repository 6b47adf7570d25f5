"""The admin overview: sign-ups and logins over time from the audit trail, and what is
live or waiting right now. Reads only; never commits, records nothing.

Not audited: the answer is counts, nobody's data (reading the trail itself is audited,
`audit.read`). A role that may not see it is refused, and that refusal is audited as
every `403` is (`authz.denied`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.events import service as outbox
from gatehouse.kit.time import utcnow
from gatehouse.overview.repository import LOGIN, SIGNUP, HourCount, OverviewRepository
from gatehouse.overview.schemas import (
    Activity,
    ActivityBucket,
    ActivityCounts,
    OutboxLag,
    Overview,
    SessionCounts,
    UserCounts,
    UsersByRole,
    WebhookBacklog,
)
from gatehouse.uow import UnitOfWork
from gatehouse.users.models import Role
from gatehouse.webhooks.repository import WebhookRepository

HOURS = 24
DAYS = 30
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# (action, outcome) → the counter it adds to; every other outcome of the action (none
# is written today) counts as a failure, so the failures are never under-reported.
_SUCCESS_FIELD = {SIGNUP: "signups", LOGIN: "logins"}
_FAILURE_FIELD = {SIGNUP: "signups_failed", LOGIN: "logins_failed"}


def _field(row: HourCount) -> str:
    table = _SUCCESS_FIELD if row.outcome == "success" else _FAILURE_FIELD
    return table[row.action]


def _series(
    counts: Iterable[tuple[datetime, str, int]], first: datetime, step: timedelta, size: int
) -> list[ActivityBucket]:
    """`size` buckets of `step` from `first`, zero-filled; counts outside are left out."""
    totals: dict[datetime, Counter[str]] = {first + n * step: Counter() for n in range(size)}
    for start, field, count in counts:
        if start in totals:
            totals[start][field] += count
    return [ActivityBucket(start=start, **_counts(c).model_dump()) for start, c in totals.items()]


def _counts(counter: Counter[str]) -> ActivityCounts:
    return ActivityCounts(
        signups=counter["signups"],
        signups_failed=counter["signups_failed"],
        logins=counter["logins"],
        logins_failed=counter["logins_failed"],
    )


def _activity(buckets: list[ActivityBucket], until: datetime) -> Activity:
    total: Counter[str] = Counter()
    for bucket in buckets:
        total.update(bucket.model_dump(exclude={"start"}))
    return Activity(since=buckets[0].start, until=until, totals=_counts(total), buckets=buckets)


class OverviewService:
    def __init__(self, uow: UnitOfWork, *, broker: bool) -> None:
        self.uow = uow
        # Without a broker nothing is ever published: that backlog does not exist.
        self.broker = broker

    async def overview(self) -> Overview:
        # Counts tolerate a few seconds' lag: the read replica may serve them.
        return await self.uow.replica_ok(self._overview)

    async def _overview(self, session: AsyncSession) -> Overview:
        now = utcnow()
        this_hour = now.replace(minute=0, second=0, microsecond=0)
        today = this_hour.replace(hour=0)
        first_hour = this_hour - (HOURS - 1) * HOUR
        first_day = today - (DAYS - 1) * DAY
        repository = OverviewRepository(session)

        rows = await self._activity(repository, min(first_hour, first_day))
        hourly = _series(((r.hour, _field(r), r.count) for r in rows), first_hour, HOUR, HOURS)
        daily = _series(
            ((r.hour.replace(hour=0), _field(r), r.count) for r in rows), first_day, DAY, DAYS
        )

        roles = await repository.live_users_by_role()
        by_role = UsersByRole(**{role.value: roles.get(role.value, 0) for role in Role})
        return Overview(
            generated_at=now,
            last_24_hours=_activity(hourly, now),
            last_30_days=_activity(daily, now),
            sessions=SessionCounts(active=await repository.active_sessions(now)),
            users=UserCounts(total=sum(roles.values()), by_role=by_role),
            outbox=await self._outbox(session),
            webhooks=await self._webhooks(session, now),
        )

    async def _activity(self, repository: OverviewRepository, since: datetime) -> list[HourCount]:
        """Every counted row's hour from `since` on: the hours the rollup has counted
        from its table, the rest (normally the last hour or so) live from the trail.

        Nothing is written here: without a worker to roll the hours the trail answers
        for all of them, the same counts, only slower.
        """
        rolled = await repository.rolled_until()
        if rolled is None or rolled <= since:
            return await repository.activity_by_hour(since)
        # The rolled hours end at `rolled` as read above, whatever a roll commits
        # between these statements: no hour is counted twice or left out.
        return [
            *await repository.rolled_activity(since, rolled),
            *await repository.activity_by_hour(rolled),
        ]

    async def _outbox(self, session: AsyncSession) -> OutboxLag:
        found = await outbox.backlog(session, broker=self.broker)
        return OutboxLag(
            pending_dispatch=found.pending_dispatch,
            oldest_undispatched_seconds=found.oldest_undispatched_seconds,
            pending_publish=found.pending_publish,
            oldest_unpublished_seconds=found.oldest_unpublished_seconds,
        )

    async def _webhooks(self, session: AsyncSession, now: datetime) -> WebhookBacklog:
        pending, oldest = await WebhookRepository(session).pending()
        return WebhookBacklog(
            pending_deliveries=pending, oldest_pending_seconds=outbox.age_seconds(now, oldest)
        )
