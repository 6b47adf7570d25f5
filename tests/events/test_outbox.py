"""EVT-01 (the event exists iff the change does) and the outbox's own bookkeeping:
what the sweep enqueues, what the cleanup deletes, the figures for health/metrics."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from gatehouse.events import service, tasks
from gatehouse.events.models import OutboxEvent
from gatehouse.kit.time import utcnow
from gatehouse.runtime import Runtime
from gatehouse.uow import UnitOfWork
from gatehouse.users import service as users_service
from gatehouse.worker.embedded import InProcessRunner
from tests.events.consumer import EventConsumer
from tests.events.support import outbox_rows
from tests.factories import PASSWORD, Api, assert_envelope
from tests.logs import LogCapture

USERS = "/api/v1/users"


class RecordingQueue:
    """A JobQueue that only notes what it was asked to run."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def enqueue(self, name: str, **kwargs: str) -> None:
        self.names.append(name)


@pytest.fixture
def settings_overrides(broker_overrides: dict[str, Any]) -> dict[str, Any]:
    return broker_overrides


async def test_evt01_a_failure_after_the_insert_leaves_no_user_no_row_no_event(
    api: Api,
    runner: InProcessRunner,
    consumer: EventConsumer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = await api.user("admin")
    await consumer.wait_for(lambda: len(consumer.received) == 1)
    real = users_service.announce_created

    async def crash_after_recording(session: Any, user: Any) -> None:
        await real(session, user)  # user and outbox rows are written (flushed)...
        raise RuntimeError("crash before commit")  # ...and the unit of work fails

    doomed = f"doomed-{uuid.uuid4().hex[:8]}@example.com"
    with monkeypatch.context() as patch:
        patch.setattr(users_service, "announce_created", crash_after_recording)
        response = await api.client.post(
            USERS,
            json={"email": doomed, "name": "Doomed", "password": PASSWORD},
            headers=admin.headers,
        )
    assert_envelope(response, 500, "INTERNAL_ERROR")

    # A later change goes through; its event arriving proves that anything committed
    # before it would have arrived first (one exchange, one channel, in order).
    marker = await api.client.post(
        USERS,
        json={
            "email": f"marker-{uuid.uuid4().hex[:8]}@example.com",
            "name": "M",
            "password": PASSWORD,
        },
        headers=admin.headers,
    )
    assert marker.status_code == 201
    await consumer.wait_for(lambda: len(consumer.of_user(marker.json()["id"])) == 1)
    await runner.drain()
    rows = await outbox_rows(api.runtime)
    assert [row.payload["data"].get("email") for row in rows] == [
        admin.email,
        marker.json()["email"],
    ]
    assert all(m.body["data"].get("email") != doomed for m in consumer.received)
    report = consumer.report(str(row.event_id) for row in rows)
    assert (report.lost, report.phantom) == (0, 0), report
    listed = await api.client.get(USERS, params={"search": "doomed-"}, headers=admin.headers)
    assert listed.json()["meta"]["total_count"] == 0


async def add_row(
    runtime: Runtime, *, age: timedelta, published: bool, dispatched: bool, due: bool = True
) -> OutboxEvent:
    created = utcnow() - age
    row = OutboxEvent(
        event_id=uuid.uuid4(),
        event_type="user.deleted",
        aggregate_id=uuid.uuid4(),
        payload={"event_type": "user.deleted"},
        created_at=created,
        published_at=created if published else None,
        dispatched_at=created if dispatched else None,
        next_publish_at=None if due else utcnow() + timedelta(minutes=1),
    )
    async with runtime.db.session() as session:
        session.add(row)
    return row


async def test_the_sweep_enqueues_only_what_is_due(runtime: Runtime) -> None:
    queue = RecordingQueue()
    runtime.use_jobs(queue)
    await tasks.sweep(runtime)
    assert queue.names == []

    await add_row(runtime, age=timedelta(0), published=False, dispatched=True, due=False)
    await tasks.sweep(runtime)
    assert queue.names == []  # backing off: not due yet

    await add_row(runtime, age=timedelta(0), published=False, dispatched=False)
    await tasks.sweep(runtime)
    assert queue.names == ["events.relay", "events.dispatch"]


@pytest.mark.parametrize(
    "settings_overrides",
    [{"broker_url": "amqp://guest:guest@127.0.0.1:1/"}, {}],
    ids=["with a broker", "embedded"],
)
async def test_cleanup_deletes_old_rows_that_need_nothing_more(runtime: Runtime) -> None:
    old, new = timedelta(days=8), timedelta(days=1)
    keep = [
        await add_row(runtime, age=new, published=True, dispatched=True),
        await add_row(runtime, age=old, published=True, dispatched=False),
    ]
    gone = [await add_row(runtime, age=old, published=True, dispatched=True)]
    unpublished = await add_row(runtime, age=old, published=False, dispatched=True)
    if runtime.settings.broker_url is None:
        gone.append(unpublished)  # nothing would ever publish it
    else:
        keep.append(unpublished)

    await tasks.cleanup(runtime)
    left = {row.event_id for row in await outbox_rows(runtime)}
    assert left == {row.event_id for row in keep}


async def test_stats_count_what_waits(runtime: Runtime) -> None:
    await add_row(runtime, age=timedelta(minutes=5), published=False, dispatched=True)
    await add_row(runtime, age=timedelta(minutes=1), published=True, dispatched=False)
    await add_row(runtime, age=timedelta(0), published=True, dispatched=True)
    figures = await service.stats(runtime)
    assert figures.pending_publish == 1
    assert figures.pending_dispatch == 1
    assert figures.oldest_unpublished_seconds is not None
    assert 290 < figures.oldest_unpublished_seconds < 400
    assert figures.oldest_undispatched_seconds is not None
    assert 50 < figures.oldest_undispatched_seconds < 200


async def test_a_failing_reaction_leaves_its_event_undispatched_and_not_the_others(
    runtime: Runtime, json_logs: LogCapture
) -> None:
    rows = [
        await add_row(runtime, age=timedelta(0), published=True, dispatched=False) for _ in range(3)
    ]
    poison = rows[1].event_id
    seen: list[uuid.UUID] = []

    async def reaction(_uow: UnitOfWork, __: Runtime, event: OutboxEvent) -> None:
        seen.append(event.event_id)
        # A write that must be undone with the failure, and only then.
        event.last_error = "written by the reaction"
        if event.event_id == poison:
            raise RuntimeError("a bug in a reaction")

    assert await service.dispatch_batch(runtime, [reaction]) == 2
    after = {row.event_id: row for row in await outbox_rows(runtime)}
    assert after[poison].dispatched_at is None
    assert after[poison].last_error is None
    for row in (rows[0], rows[2]):
        assert after[row.event_id].dispatched_at is not None
        assert after[row.event_id].last_error == "written by the reaction"
    [failure] = [r for r in json_logs.records() if r["event"] == "outbox.dispatch_failed"]
    assert failure["event_id"] == str(poison)
    assert failure["level"] == "error"
    # Tried again with the next batch.
    assert await service.dispatch_batch(runtime, [reaction]) == 0
    assert seen == [row.event_id for row in rows] + [poison]
