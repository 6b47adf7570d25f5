"""Where a unit of work's connection comes from: on SQLite, reads never wait for the
writer's connection or its lock; on PostgreSQL, a connection the server closed is
replaced at checkout, without a ping per request and without failing the request."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url

from gatehouse.users.models import User
from tests import services
from tests.factories import Api

ME = "/api/v1/users/me"
QUEUED_WRITERS = 16


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # One connection per pool: were reads and writes to share one, a held write would
    # leave a read none.
    return {"database_pool_min": 1, "database_pool_max": 1}


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_read_request_is_answered_while_a_writer_holds_the_lock(api: Api) -> None:
    user = await api.user("user", name="Before Write")
    events: list[str] = []

    async def queued_writer() -> None:
        async with api.runtime.db.session() as session:
            await session.execute(text("SELECT 1"))

    async with api.runtime.db.session() as writer:
        # BEGIN IMMEDIATE: the write lock and the writer's connection are taken.
        await writer.execute(update(User).where(User.id == user.id).values(name="Mid Write"))
        events.append("write lock held")
        # More writers wait than a shared pool would have connections (SQLAlchemy's
        # default, 15): each waits for the writer's connection, none holds a reader's.
        writers = [asyncio.create_task(queued_writer()) for _ in range(QUEUED_WRITERS)]
        await asyncio.sleep(0)
        assert not any(task.done() for task in writers)
        # The principal cache is empty: the request reads the database.
        response = await api.client.get(ME, headers=user.headers)
        events.append("read answered")
        async with api.runtime.unit_of_work(write=False) as uow:
            name = await uow.session.scalar(select(User.name).where(User.id == user.id))
        events.append("read-only unit of work done")
        async with api.runtime.unit_of_work() as uow, uow.reader() as reader:
            assert reader is not uow.session
            await reader.execute(text("SELECT 1"))
        events.append("a writing unit of work's reader done")
        assert writer.in_transaction()
        assert not any(task.done() for task in writers)
    events.append("write committed")
    await asyncio.gather(*writers)
    assert events == [
        "write lock held",
        "read answered",
        "read-only unit of work done",
        "a writing unit of work's reader done",
        "write committed",
    ]
    assert response.status_code == 200, response.text
    # Each read saw the last commit, not the write still open.
    assert response.json()["name"] == "Before Write"
    assert name == "Before Write"
    after = await api.client.get(f"{ME}", headers=user.headers)
    assert after.status_code == 200


@pytest.mark.parametrize("backend", ["postgres"])
async def test_requests_succeed_after_the_server_ended_every_connection(
    api: Api, database_url: str
) -> None:
    user = await api.user("user")
    assert (await api.client.get(ME, headers=user.headers)).status_code == 200
    database = make_url(database_url).database
    # What a PostgreSQL restart does to the pool; the timeout waits until each backend
    # has exited, so its connection is closed before the next request.
    await services.admin_sql(
        "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    )
    read = await api.client.get(ME, headers=user.headers)
    assert read.status_code == 200, read.text
    rotated = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}
    )
    assert rotated.status_code == 200, rotated.text
