"""The embedded default (no broker): nothing goes to RabbitMQ, every event is still
dispatched to Gatehouse's own reactions, and a restart loses nothing."""

from __future__ import annotations

import uuid

from gatehouse.events import service
from gatehouse.runtime import Runtime
from gatehouse.worker.embedded import InProcessRunner
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
