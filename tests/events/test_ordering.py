"""EVT-09: the events of one user reach consumers in commit order, even with several
relays at once (PostgreSQL, `FOR UPDATE SKIP LOCKED`).

Users are created and then updated in quick succession while five relays, each with
its own connection to RabbitMQ and its own database sessions, publish concurrently
in small batches. The consumer applies each user's events by `version`: it never has
to drop a stale one, and its copy of every user ends equal to the database.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from gatehouse.events import service
from gatehouse.events.publisher import EventPublisher
from gatehouse.runtime import Runtime
from gatehouse.users.models import User
from tests.events.consumer import EventConsumer
from tests.events.support import outbox_rows
from tests.factories import PASSWORD, Api

USERS = "/api/v1/users"
RELAYS = 5
USERS_COUNT = 30
UPDATES = 5


@pytest.fixture
def settings_overrides(broker_overrides: dict[str, Any]) -> dict[str, Any]:
    # Small batches, so that the relays interleave on the same users.
    return {**broker_overrides, "outbox_batch_size": 7}


@pytest.fixture
def backend() -> str:
    return "postgres"


async def test_evt09_each_users_events_arrive_in_version_order_with_five_relays(
    api: Api, runtime: Runtime, consumer: EventConsumer
) -> None:
    admin = await api.user("admin")
    writing = True

    async def user_story(n: int) -> None:
        created = await api.client.post(
            USERS,
            json={"email": f"o{n}-{uuid.uuid4().hex[:6]}@example.com", "name": "v1",
                  "password": PASSWORD},
            headers=admin.headers,
        )  # fmt: skip
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        for step in range(UPDATES):
            body: dict[str, str] = {"name": f"v{step + 2}"}
            if step % 2:
                body["role"] = "readonly" if step % 4 == 1 else "user"
            updated = await api.client.patch(f"{USERS}/{user_id}", json=body, headers=admin.headers)
            assert updated.status_code == 200, updated.text

    async def relay_loop(publisher: EventPublisher) -> int:
        published = 0
        while True:
            async with runtime.db.session() as session:
                done = await service.relay(session, publisher, runtime.settings.worker)
            published += done
            if done == 0:
                if not writing and all(r.published_at for r in await outbox_rows(runtime)):
                    return published
                await asyncio.sleep(0.01)

    async def write_all() -> None:
        nonlocal writing
        try:
            await asyncio.gather(*(user_story(n) for n in range(USERS_COUNT)))
        finally:
            writing = False

    publishers = [EventPublisher.create(runtime) for _ in range(RELAYS)]
    writer = asyncio.create_task(write_all())
    try:
        async with asyncio.timeout(60):
            per_relay = await asyncio.gather(*(relay_loop(p) for p in publishers))
            await writer
    finally:
        for publisher in publishers:
            await publisher.aclose()
    expected = 1 + USERS_COUNT * (1 + UPDATES)
    assert sum(per_relay) == expected
    assert sum(1 for count in per_relay if count) >= 2, per_relay  # they did share the work

    await consumer.wait_for(lambda: len(consumer.event_ids()) == expected)
    report = consumer.report(str(row.event_id) for row in await outbox_rows(runtime))
    assert (report.lost, report.phantom, report.duplicate_effects) == (0, 0, 0), report
    assert consumer.stale_dropped == 0
    for user_id, versions in consumer.applied.items():
        assert versions == sorted(versions), user_id
        assert [m.body["data"]["version"] for m in consumer.of_user(user_id)] == versions
    async with runtime.db.session(write=False) as session:
        for user in (await session.scalars(select(User))).all():
            copy = consumer.users[str(user.id)]
            assert (copy.version, copy.name, copy.role, copy.email) == (
                user.version, user.name, user.role, user.email,
            )  # fmt: skip
