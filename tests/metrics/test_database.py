"""The database pool gauges, the checkout wait and SQLite's write-lock wait, read off
`GET /metrics` while a second runtime of the test's own holds connections."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from gatehouse.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import Api
from tests.scrape import Scrape, scrape

# The pool reads are checked out from, as configured (on SQLite, the readers' pool).
POOL = {"sqlite": (2, 4), "postgres": (2, 4)}
HOLD_PAUSE = 0.3  # how long a connection (or the write lock) is held from a waiter


@contextlib.asynccontextmanager
async def second_runtime(
    database_url: str, tmp_path: Path, signing_key_pem: str, **overrides: object
) -> AsyncIterator[Runtime]:
    settings = make_settings(database_url, tmp_path / "second", signing_key_pem, **overrides)
    runtime = Runtime.create(settings)
    try:
        yield runtime
    finally:
        await runtime.close()


async def hold(stack: contextlib.AsyncExitStack, runtime: Runtime, count: int) -> None:
    for _ in range(count):
        conn = await stack.enter_async_context(runtime.db.read_engine.connect())
        await conn.execute(text("SELECT 1"))


def pool(scrape: Scrape, earlier: Scrape) -> dict[str, float]:
    return {
        part: scrape.since(earlier, f"gatehouse_db_pool_{part}")
        for part in ("size", "max", "checked_out", "overflow")
    }


async def test_the_pool_gauges_follow_the_connections_a_process_holds(
    api: Api, backend: str, database_url: str, tmp_path: Path, signing_key_pem: str
) -> None:
    size, most = POOL[backend]
    async with second_runtime(
        database_url, tmp_path, signing_key_pem, database_pool_min=2, database_pool_max=4
    ) as runtime:
        before = await scrape(api.client)  # the second pool has not been used yet
        async with contextlib.AsyncExitStack() as stack:
            await hold(stack, runtime, size + 1)
            held = await scrape(api.client)
        released = await scrape(api.client)
    disposed = await scrape(api.client)
    assert pool(held, before) == {"size": size, "max": most, "checked_out": size + 1, "overflow": 1}
    # Back in the pool; the one beyond its size closed.
    assert pool(released, before) == {"size": size, "max": most, "checked_out": 0, "overflow": 0}
    # A disposed pool (the runtime closed) counts no more.
    assert pool(disposed, before) == {"size": 0, "max": 0, "checked_out": 0, "overflow": 0}


def slow(scrape: Scrape, name: str) -> float:
    """Observations of histogram `name` above 0.1 s."""
    return scrape.value(f"{name}_count") - scrape.value(f"{name}_bucket", le="0.1")


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_checkout_that_waits_for_a_busy_pool_is_timed(
    api: Api, database_url: str, tmp_path: Path, signing_key_pem: str
) -> None:
    name = "gatehouse_db_pool_wait_seconds"
    async with second_runtime(
        database_url, tmp_path, signing_key_pem, database_pool_min=1, database_pool_max=1
    ) as runtime:
        before = await scrape(api.client)
        async with contextlib.AsyncExitStack() as stack:
            await hold(stack, runtime, 1)

            async def waiter() -> None:
                async with contextlib.AsyncExitStack() as own:
                    await hold(own, runtime, 1)

            waiting = asyncio.create_task(waiter())
            await asyncio.sleep(HOLD_PAUSE)  # the waiter waits at least this long
            assert not waiting.done()
        await waiting
        after = await scrape(api.client)
    assert after.since(before, f"{name}_count") >= 2  # the holder's and the waiter's
    # The waiter's checkout, and only it, took longer than 0.1 s.
    assert slow(after, name) - slow(before, name) == 1


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_writer_waiting_for_sqlites_write_lock_is_timed(api: Api) -> None:
    name = "gatehouse_sqlite_write_lock_wait_seconds"
    runtime = api.runtime
    before = await scrape(api.client)
    async with runtime.db.session() as holder:
        await holder.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the lock is ours

        async def writer() -> None:
            async with runtime.db.session() as session:
                await session.execute(text("SELECT 1"))

        waiting = asyncio.create_task(writer())
        await asyncio.sleep(HOLD_PAUSE)
        assert not waiting.done()
    await waiting
    after = await scrape(api.client)
    assert after.since(before, f"{name}_count") == 2
    assert slow(after, name) - slow(before, name) == 1
    # A reader takes no write lock: the scrapes' own reads were not counted.
