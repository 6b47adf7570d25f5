"""The hourly rollup of the overview's activity counts (the worker's sweep step): the
overview answers the same whether it has run or not, and counts what came after it live.

Times are travelled (time_machine, not ticking), as in test_overview.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import func, select

from gatehouse.audit.models import AuditEvent
from gatehouse.overview.models import AuditActivityHour
from gatehouse.overview.repository import OverviewRepository
from gatehouse.overview.tasks import roll_up_activity
from gatehouse.users.models import Role
from gatehouse.worker import registry
from tests.factories import Account, Api
from tests.overview.test_overview import fail_login, overview, sign_up, signed_up

NOW = datetime(2026, 3, 10, 14, 20, tzinfo=UTC)
THIS_HOUR = datetime(2026, 3, 10, 14, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


async def rolled_until(api: Api) -> datetime | None:
    async with api.runtime.db.session(write=False) as session:
        return await OverviewRepository(session).rolled_until()


async def rolled_hours(api: Api) -> dict[datetime, int]:
    """Every rolled-up hour and how many counted audit rows it holds."""
    async with api.runtime.db.session(write=False) as session:
        rows = await session.execute(
            select(AuditActivityHour.hour, func.sum(AuditActivityHour.count)).group_by(
                AuditActivityHour.hour
            )
        )
        return {hour: int(total) for hour, total in rows}


async def some_activity(api: Api, clock: Any) -> Account:
    """Sign-ups and logins spread over a month, yesterday and this hour; the admin."""
    clock.move_to(NOW - timedelta(days=12, hours=3))
    await sign_up(api, "early@example.com")
    await fail_login(api, "early@example.com")
    clock.move_to(NOW - timedelta(days=1, hours=2))  # 12:20 yesterday
    await api.login(signed_up("early@example.com"))
    await sign_up(api, "early@example.com")  # taken: a failed sign-up
    clock.move_to(NOW - timedelta(hours=3))  # 11:20 today
    await sign_up(api, "late@example.com")
    await api.login(signed_up("late@example.com"))
    clock.move_to(NOW - timedelta(minutes=5))  # this hour: never rolled yet
    await fail_login(api, "late@example.com")
    clock.move_to(NOW)
    return await api.user(Role.admin)


def test_the_rollup_runs_with_the_sweep() -> None:
    assert roll_up_activity in registry.sweeps()


async def test_the_answer_is_the_same_with_and_without_the_rollup(api: Api, clock: Any) -> None:
    admin = await some_activity(api, clock)
    before = await overview(api, admin)
    assert before["last_30_days"]["totals"] == {
        "signups": 2,
        "signups_failed": 1,
        "logins": 3,
        "logins_failed": 2,
    }
    assert await rolled_until(api) is None

    await roll_up_activity(api.runtime)

    assert await rolled_until(api) == THIS_HOUR
    assert await rolled_hours(api) == {
        datetime(2026, 2, 26, 11, tzinfo=UTC): 2,
        datetime(2026, 3, 9, 12, tzinfo=UTC): 2,
        datetime(2026, 3, 10, 11, tzinfo=UTC): 2,
    }
    assert await overview(api, admin) == before


async def test_activity_after_the_last_roll_is_counted_live(api: Api, clock: Any) -> None:
    admin = await some_activity(api, clock)
    await roll_up_activity(api.runtime)

    clock.move_to(NOW + timedelta(minutes=30))  # 14:50, the same hour
    await fail_login(api, "late@example.com")
    await sign_up(api, "later@example.com")
    clock.move_to(NOW + timedelta(hours=1, minutes=2))  # 15:22
    await api.login(signed_up("later@example.com"))
    admin = await api.login(admin)  # its token of 14:20 has expired
    after = await overview(api, admin)

    assert await rolled_until(api) == THIS_HOUR  # no roll since
    assert after["last_30_days"]["totals"] == {
        "signups": 3,
        "signups_failed": 1,
        "logins": 5,
        "logins_failed": 3,
    }
    hours = {b["start"]: b | {"start": None} for b in after["last_24_hours"]["buckets"]}
    assert hours["2026-03-10T11:00:00Z"] == {
        "signups": 1,
        "signups_failed": 0,
        "logins": 1,
        "logins_failed": 0,
        "start": None,
    }
    assert hours["2026-03-10T14:00:00Z"] == {
        "signups": 1,
        "signups_failed": 0,
        "logins": 1,
        "logins_failed": 2,
        "start": None,
    }
    assert hours["2026-03-10T15:00:00Z"] == {
        "signups": 0,
        "signups_failed": 0,
        "logins": 2,
        "logins_failed": 0,
        "start": None,
    }

    # Rolled up to 15:00, the same answer.
    await roll_up_activity(api.runtime)
    assert await rolled_until(api) == datetime(2026, 3, 10, 15, tzinfo=UTC)
    assert await overview(api, admin) == after


async def test_rolling_twice_or_at_once_counts_each_hour_once(api: Api, clock: Any) -> None:
    admin = await some_activity(api, clock)
    before = await overview(api, admin)

    await asyncio.gather(roll_up_activity(api.runtime), roll_up_activity(api.runtime))
    await roll_up_activity(api.runtime)
    rolled = await rolled_hours(api)
    # Two workers that both read the same old state roll the same hours again.
    for _ in range(2):
        async with api.runtime.db.session() as session:
            await OverviewRepository(session).roll(NOW - timedelta(days=31), THIS_HOUR)

    assert await rolled_hours(api) == rolled
    assert sum(rolled.values()) == 6
    assert await overview(api, admin) == before


async def test_hours_without_activity_are_rolled_too(api: Api, clock: Any) -> None:
    await roll_up_activity(api.runtime)
    assert await rolled_until(api) == THIS_HOUR
    assert await rolled_hours(api) == {}

    clock.move_to(NOW + timedelta(hours=3, minutes=40))  # 18:00
    await roll_up_activity(api.runtime)
    assert await rolled_until(api) == datetime(2026, 3, 10, 17, tzinfo=UTC)
    # Just after an hour ends it is left a few minutes for rows still being committed.
    clock.move_to(datetime(2026, 3, 10, 18, 2, tzinfo=UTC))
    await roll_up_activity(api.runtime)
    assert await rolled_until(api) == datetime(2026, 3, 10, 17, tzinfo=UTC)
    clock.move_to(datetime(2026, 3, 10, 18, 10, tzinfo=UTC))
    await roll_up_activity(api.runtime)
    assert await rolled_until(api) == datetime(2026, 3, 10, 18, tzinfo=UTC)


async def test_old_rolled_hours_are_dropped_and_the_trail_kept(api: Api, clock: Any) -> None:
    clock.move_to(NOW - timedelta(days=40, hours=2))
    await sign_up(api, "old@example.com")
    clock.move_to(NOW - timedelta(days=20))
    await api.login(signed_up("old@example.com"))
    clock.move_to(NOW - timedelta(days=19))
    await roll_up_activity(api.runtime)
    assert await rolled_hours(api) == {
        datetime(2026, 1, 29, 12, tzinfo=UTC): 1,
        datetime(2026, 2, 18, 14, tzinfo=UTC): 1,
    }

    clock.move_to(NOW)
    await roll_up_activity(api.runtime)
    assert await rolled_hours(api) == {datetime(2026, 2, 18, 14, tzinfo=UTC): 1}
    async with api.runtime.db.session(write=False) as session:
        trail = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "auth.register")
        )
    assert trail == 1
