"""The embedded default (no broker): nothing goes to RabbitMQ, every event is still
dispatched to Gatehouse's own reactions, and a restart loses nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping

from sqlalchemy import text

from gatehouse.events import service
from gatehouse.runtime import Runtime
from gatehouse.worker.embedded import InProcessRunner
from gatehouse.worker.maintenance import SWEEP_JOB
from tests.events.consumer import until
from tests.events.support import outbox_rows
from tests.factories import PASSWORD, Api

USERS = "/api/v1/users"


async def dispatched(runtime: Runtime) -> bool:
    return all(row.dispatched_at is not None for row in await outbox_rows(runtime))


async def test_without_a_broker_events_are_dispatched_and_never_published(
    api: Api, runner: InProcessRunner
) -> None:
    assert api.runtime.settings.broker_url is None
    admin = await api.user("admin")
    response = await api.client.post(
        USERS,
        json={"email": f"e-{uuid.uuid4().hex[:8]}@example.com", "name": "E", "password": PASSWORD},
        headers=admin.headers,
    )
    assert response.status_code == 201
    await runner.drain()
    rows = await outbox_rows(api.runtime)
    assert [row.event_type for row in rows] == ["user.created", "user.created"]
    assert all(row.dispatched_at is not None for row in rows)
    # No broker: the relay does nothing and leaves the rows as they are.
    assert await service.relay_batch(api.runtime) == 0
    assert all(row.published_at is None and row.publish_attempts == 0 for row in rows)
    figures = await service.stats(api.runtime)
    assert (figures.pending_publish, figures.pending_dispatch) == (None, 0)


async def test_rows_left_by_a_stopped_runner_are_processed_by_the_next(
    api: Api, runtime: Runtime
) -> None:
    # A runner that never ran its queue, as if the process died right after the
    # commits: its in-memory kicks are lost, the rows are not.
    crashed = InProcessRunner(runtime)
    runtime.use_jobs(crashed)
    for _ in range(5):
        await api.create_user("user")
    await crashed.stop()
    assert not await dispatched(runtime)

    restarted = InProcessRunner(runtime)
    runtime.use_jobs(restarted)
    await restarted.start()  # its first sweep finds the pending rows
    try:
        await until(lambda: dispatched(runtime), 10, "the rows to be dispatched")
    finally:
        await restarted.stop()
    rows = await outbox_rows(runtime)
    assert len(rows) == 5
    assert all(row.dispatched_at is not None for row in rows)


async def test_a_stop_during_a_sweep_lets_it_finish_and_leaves_the_database_free(
    runtime: Runtime,
) -> None:
    """A stop never cuts a sweep off mid-transaction: on SQLite a transaction cancelled
    mid-statement kept the write lock, and the next writer waited out the busy timeout."""
    runner = InProcessRunner(runtime)
    sweep_entered = asyncio.Event()
    finished: list[bool] = []
    real_sweep = runner.jobs[SWEEP_JOB]

    async def slow_sweep(rt: Runtime, kwargs: Mapping[str, str]) -> None:
        async with rt.db.session() as session:
            await session.execute(text("DELETE FROM refresh_tokens"))
            sweep_entered.set()
            await asyncio.sleep(0.3)  # inside the write transaction
        await real_sweep(rt, kwargs)
        finished.append(True)

    runner.jobs[SWEEP_JOB] = slow_sweep
    runtime.use_jobs(runner)
    await runner.start()
    await sweep_entered.wait()
    await runner.stop()
    assert finished == [True]
    # The write lock is free: a writer gets in at once rather than after a busy wait.
    async with runtime.db.session() as session:
        await session.execute(text("DELETE FROM refresh_tokens"))
