"""Faults between Gatehouse and RabbitMQ, and the ledger check of the event fault cases.

The shared broker is never touched: Gatehouse reaches it through a TCP proxy of the
test's own, which refuses, resets or stalls connections on demand. The consumer is
connected straight to the broker and deduplicates by `event_id` (docs/events.md).

- EVT-02: the broker is unreachable while users are created: every request answers
  201, and every event arrives once the broker is reachable again (lost = 0).
- EVT-03: the relay dies after the broker confirmed a batch and before it marked it:
  the batch is published again, duplicates arrive, their effects happen once.
- The fault campaign: random cuts, outages and stalls while users change.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gatehouse.events import service
from gatehouse.events.publisher import EventPublisher
from gatehouse.runtime import Runtime
from gatehouse.users.models import User
from gatehouse.worker.embedded import InProcessRunner
from tests.events.consumer import EventConsumer, LedgerReport, until
from tests.events.support import outbox_rows, relay_all, relay_until_published
from tests.factories import PASSWORD, Api
from tests.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
USERS = "/api/v1/users"
SEED = 20261125
FAULTS = 25


@pytest.fixture
def settings_overrides(
    broker_overrides: dict[str, Any], broker_proxy: TcpProxy, rabbitmq_url: str
) -> dict[str, Any]:
    return {
        **broker_overrides,
        "broker_url": broker_proxy.url(rabbitmq_url),
        "publish_timeout_seconds": 1.0,
        "outbox_sweep_seconds": 0.2,
        "outbox_batch_size": 20,
    }


async def committed_event_ids(runtime: Runtime) -> list[str]:
    return [str(row.event_id) for row in await outbox_rows(runtime)]


async def all_published(runtime: Runtime) -> bool:
    return all(row.published_at is not None for row in await outbox_rows(runtime))


async def wait_all_delivered(
    runtime: Runtime, consumer: EventConsumer, within: float = 30.0
) -> LedgerReport:
    """Until every committed event was processed by the consumer and every row is
    marked published; the ledger report then."""
    committed = set(await committed_event_ids(runtime))
    await consumer.wait_for(
        lambda: committed <= consumer.event_ids(), within, f"{len(committed)} events"
    )
    await until(lambda: all_published(runtime), within, "every row marked published")
    return consumer.report(await committed_event_ids(runtime))


def say(capsys: pytest.CaptureFixture[str], line: str) -> None:
    """The figure goes to the terminal even when pytest captures output."""
    with capsys.disabled():
        print(f"\n    {line}")


# --- EVT-02 ---------------------------------------------------------------------------------


async def test_evt02_users_created_while_the_broker_is_down_are_all_delivered(
    api: Api,
    runner: InProcessRunner,
    consumer: EventConsumer,
    broker_proxy: TcpProxy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin = await api.user("admin")
    await consumer.wait_for(lambda: len(consumer.received) == 1)  # the link worked
    broker_proxy.block()
    count = 50
    statuses = []
    for n in range(count):
        response = await api.client.post(
            USERS,
            json={"email": f"down-{n}-{uuid.uuid4().hex[:6]}@example.com", "name": "Down",
                  "password": PASSWORD},
            headers=admin.headers,
        )  # fmt: skip
        statuses.append(response.status_code)
    assert statuses == [201] * count
    await runner.drain()
    rows = await outbox_rows(api.runtime)
    waiting = [row for row in rows if row.published_at is None]
    assert len(waiting) == count
    # The outage was not the rows' fault: none was charged an attempt or a backoff.
    assert {(row.publish_attempts, row.next_publish_at) for row in waiting} == {(0, None)}
    assert broker_proxy.counters.refused > 0

    broker_proxy.resume()
    # No request kicks the relay now: the sweep finds the rows.
    report = await wait_all_delivered(api.runtime, consumer)
    created = [m for m in consumer.received if m.routing_key == "user.created"]
    assert len(created) == count + 1
    assert (report.lost, report.phantom, report.duplicate_effects) == (0, 0, 0), report
    say(capsys, f"EVT-02 broker down for {count} creations: {count} x 201, {report}")


# --- EVT-03 ---------------------------------------------------------------------------------


class RelayCrash(Exception):
    pass


async def test_evt03_a_relay_dying_after_the_confirm_causes_duplicates_not_double_effects(
    api: Api, runtime: Runtime, consumer: EventConsumer, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = runtime.part(EventPublisher)
    crashes = 50
    for _ in range(crashes):
        await api.create_user("user")
        # Published and confirmed, then the unit of work dies before its commit: the
        # marks are lost with it, exactly as if the process had been killed there.
        with contextlib.suppress(RelayCrash):
            async with runtime.db.session() as session:
                assert await service.relay(session, publisher, runtime.settings.worker) >= 1
                raise RelayCrash
        assert not await all_published(runtime)
        await relay_all(runtime)  # the next relay publishes the same rows again
    report = await wait_all_delivered(runtime, consumer)
    assert report.committed == crashes
    assert report.duplicates_delivered >= crashes
    assert (report.lost, report.phantom, report.duplicate_effects) == (0, 0, 0), report
    say(capsys, f"EVT-03 {crashes} relay crashes between confirm and mark: {report}")


VICTIM = """
import asyncio, os, signal
from gatehouse.config import load_settings
from gatehouse.events import repository, service
from gatehouse.runtime import Runtime

async def mark_published(self, ids, now):
    # Confirmed by the broker, about to be marked: the process is killed right here.
    os.kill(os.getpid(), signal.SIGKILL)

repository.OutboxRepository.mark_published = mark_published

async def main():
    runtime = Runtime.create(load_settings())
    await service.relay_batch(runtime)

asyncio.run(main())
"""


@pytest.mark.parametrize("backend", ["postgres"])
async def test_evt03_a_relay_process_killed_before_marking_loses_nothing(
    api: Api,
    runtime: Runtime,
    consumer: EventConsumer,
    rabbitmq_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = runtime.settings
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")},
        "GATEHOUSE_ENV": "test",
        "GATEHOUSE_DATA_DIR": str(tmp_path / "victim"),
        "GATEHOUSE_DATABASE_URL": settings.database_url,
        "GATEHOUSE_BROKER_URL": rabbitmq_url,
        "GATEHOUSE_EVENTS_EXCHANGE": settings.worker.events_exchange,
        "GATEHOUSE_LOG_LEVEL": "WARNING",
    }
    kills = 2
    for _ in range(kills):
        for _ in range(3):
            await api.create_user("user")
        before = len(consumer.received)
        victim = await asyncio.create_subprocess_exec(
            sys.executable, "-c", VICTIM, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(victim.communicate(), 60)
        assert victim.returncode == -signal.SIGKILL, output.decode(errors="replace")
        # The broker had confirmed them: they reached the consumer before the kill.
        await consumer.wait_for(lambda b=before: len(consumer.received) >= b + 3)  # type: ignore[misc]
        assert not await all_published(runtime)
        # The killed relay's row locks are gone with its connection: a new relay
        # takes the same rows and publishes them again.
        await relay_until_published(runtime, consumer, len(consumer.event_ids()))
    report = await wait_all_delivered(runtime, consumer)
    assert report.duplicates_delivered >= kills * 3
    assert (report.lost, report.phantom, report.duplicate_effects) == (0, 0, 0), report
    say(capsys, f"EVT-03 {kills} relay processes killed (SIGKILL) before marking: {report}")


# --- the campaign ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgres"])  # the production setting; ~10 s
async def test_fault_campaign(
    api: Api,
    runner: InProcessRunner,
    consumer: EventConsumer,
    broker_proxy: TcpProxy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # One generator per side: the fault schedule is the same on every run.
    rng = random.Random(SEED)
    fault_rng = random.Random(SEED + 1)
    admin = await api.user("admin")
    users: list[str] = []
    changes = 300
    faults: Counter[str] = Counter()

    async def write() -> None:
        for n in range(changes - 1):  # the admin's creation is the first change
            alive = [u for u in users if u]
            roll = rng.random()
            if not alive or roll < 0.25:
                response = await api.client.post(
                    USERS,
                    json={"email": f"c{n}-{uuid.uuid4().hex[:6]}@example.com", "name": f"N{n}",
                          "password": PASSWORD},
                    headers=admin.headers,
                )  # fmt: skip
                assert response.status_code == 201, response.text
                users.append(response.json()["id"])
            elif roll < 0.30:
                victim = rng.choice(alive)
                response = await api.client.delete(f"{USERS}/{victim}", headers=admin.headers)
                assert response.status_code == 204, response.text
                users[users.index(victim)] = ""
            else:
                target = rng.choice(alive)
                # A new name each time, so that every update is a change.
                body = {"name": f"N{n}"}
                if rng.random() < 0.3:
                    body["role"] = rng.choice(["user", "readonly"])
                response = await api.client.patch(
                    f"{USERS}/{target}", json=body, headers=admin.headers
                )
                assert response.status_code == 200, response.text
            await asyncio.sleep(rng.uniform(0, 0.01))

    async def break_things() -> None:
        for _ in range(FAULTS):
            await asyncio.sleep(fault_rng.uniform(0.03, 0.15))
            kind = fault_rng.choice(["cut", "block", "stall"])
            faults[kind] += 1
            if kind == "cut":
                broker_proxy.cut()
                continue
            getattr(broker_proxy, kind)()
            await asyncio.sleep(fault_rng.uniform(0.1, 0.4))
            broker_proxy.resume()

    await asyncio.gather(write(), break_things())
    broker_proxy.resume()
    report = await wait_all_delivered(api.runtime, consumer, within=60)
    assert report.committed == changes
    assert (report.lost, report.phantom, report.duplicate_effects) == (0, 0, 0), report

    # Per user, the consumer applied every version in order, and ends where the DB is.
    assert consumer.stale_dropped == 0
    for versions in consumer.applied.values():
        assert versions == sorted(versions)
    async with api.runtime.db.session(write=False) as session:
        db_users = (await session.scalars(select(User))).all()
    for user in db_users:
        copy = consumer.users[str(user.id)]
        assert (copy.version, copy.name, copy.role, copy.deleted) == (
            user.version, user.name, user.role, user.deleted_at is not None,
        ), user.email  # fmt: skip
        if not copy.deleted:
            assert copy.email == user.email
    say(
        capsys,
        f"campaign (seed {SEED}): {faults.total()} faults injected over {changes} changes "
        f"({faults['cut']} resets, {faults['block']} outages, {faults['stall']} stalls), "
        f"{report.lost} events lost, {report.duplicate_effects} duplicate effects "
        f"({report.duplicates_delivered} duplicates delivered and dropped)",
    )
