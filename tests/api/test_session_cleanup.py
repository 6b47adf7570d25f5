"""Ended sessions are forgotten 90 days after they ended, with the IP and user agent
they hold; a live session, or one ended more recently, is kept."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import select

from gatehouse.auth import tasks
from gatehouse.auth.models import Session
from gatehouse.kit.time import utcnow
from tests.factories import Api


async def session_ids(api: Api) -> set[str]:
    async with api.runtime.db.session(write=False) as session:
        return {str(s) for s in (await session.scalars(select(Session.id))).all()}


async def test_sessions_ended_over_90_days_ago_are_deleted(api: Api) -> None:
    start = utcnow()
    with time_machine.travel(start, tick=False) as clock:
        account = await api.user()
        response = await api.client.post("/api/v1/auth/logout", headers=account.headers)
        assert response.status_code == 204
        [ended] = await session_ids(api)

        clock.shift(timedelta(days=89))
        await tasks.cleanup(api.runtime)
        assert await session_ids(api) == {ended}  # ended 89 days ago: kept
        await api.login(account)
        assert len(await session_ids(api)) == 2

        clock.shift(timedelta(days=2))
        await tasks.cleanup(api.runtime)
        remaining = await session_ids(api)
    assert len(remaining) == 1
    assert ended not in remaining
