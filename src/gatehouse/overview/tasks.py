"""This feature's sweep step: roll the audit trail's sign-up and login counts of each
newly closed UTC hour into `audit_activity_hours`, so the overview reads 30 days from
that small table and only the last hour or so from the trail."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from gatehouse.kit.tasks import FeatureTasks
from gatehouse.kit.time import utcnow
from gatehouse.overview.repository import OverviewRepository
from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.overview")

# An hour is rolled only this long after it ends: an audit row is stamped when the
# request writes it and becomes visible when its transaction commits, a moment later
# (and another host's clock may be a little behind). A row that a roll missed would be
# missing from the overview for good; one not yet rolled is still counted live.
SETTLE = timedelta(minutes=5)
# Rolled from at most this far back: the overview's 30 days start at most 30 days and
# 23 hours before now.
KEPT = timedelta(days=31)
# Rolled-up hours older than this are dropped (a few days past what the overview reads).
RETENTION = timedelta(days=35)


def last_closed_hour_end(now: datetime) -> datetime:
    """The end of the newest hour that may be rolled at `now`."""
    return (now - SETTLE).replace(minute=0, second=0, microsecond=0)


async def roll_up_activity(runtime: Runtime) -> None:
    """Roll every hour closed since the last roll, and drop what is past RETENTION.

    Part of the sweep, which runs every few seconds: outside the first minutes of an
    hour it costs one primary-key read, on a read-only transaction (on SQLite a write
    transaction would take the database's write lock every few seconds).
    """
    until = last_closed_hour_end(utcnow())
    async with runtime.db.session(write=False) as session:
        rolled = await OverviewRepository(session).rolled_until()
    if rolled is not None and rolled >= until:
        return
    async with runtime.db.session() as session:
        repository = OverviewRepository(session)
        # Read again in the writing transaction: another worker may have rolled since.
        rolled = await repository.rolled_until()
        if rolled is not None and rolled >= until:
            return
        since = until - KEPT if rolled is None else max(rolled, until - KEPT)
        written = await repository.roll(since, until)
        purged = await repository.purge_rolled_before(until - RETENTION)
    log.info(
        "overview.activity_rolled",
        since=since.isoformat(),
        until=until.isoformat(),
        hour_rows=written,
        purged=purged,
    )


TASKS = FeatureTasks(sweep=roll_up_activity)
