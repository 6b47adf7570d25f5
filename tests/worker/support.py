"""Real `gatehouse worker` processes for the worker suite, and what the tests read from
them: their JSON log lines, the broker's queues, PostgreSQL's lock waits."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kombu.connection import Connection as _Connection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GATEHOUSE = str(BIN / "gatehouse")
PYTHON = str(BIN / "python")
STARTUP_LIMIT = 60.0
Connection: Any = _Connection  # untyped
T = TypeVar("T")


def env_for(values: dict[str, Any]) -> dict[str, str]:
    """The process environment for settings given as `make_settings` keywords."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    for key, value in values.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            value = ",".join(str(item) for item in value)
        env[f"GATEHOUSE_{key.upper()}"] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def wait_until(
    check: Callable[[], T | None], *, within: float = 30.0, what: str = "condition"
) -> T:
    """Poll `check` until it returns something truthy (bounded); fail the test otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if result:
            return result
        if loop.time() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Worker:
    """One `gatehouse worker` (its own process group: a kill takes its pool too)."""

    proc: subprocess.Popen[bytes]
    log: Path
    name: str
    default: bool = True  # a plain `gatehouse worker` (not beat, not a control run)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:  # a line being written right now
                    continue
        return records

    def events(self, event: str, **match: Any) -> list[dict[str, Any]]:
        return [
            r
            for r in self.records()
            if r.get("event") == event and all(r.get(k) == v for k, v in match.items())
        ]

    def ready(self) -> bool:
        if not self.alive:
            pytest.fail(f"worker {self.name} exited ({self.proc.returncode}):\n{self.output()}")
        return any(str(r.get("event", "")).endswith(" ready.") for r in self.records())

    def kill(self) -> None:
        """SIGKILL the whole worker, as when its machine or container dies."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        stop(self)


def stop(*workers: Worker) -> None:
    """SIGTERM (a warm shutdown) to all at once, then wait; SIGKILL after 20 s."""
    running = [w for w in workers if w.alive]
    for worker in running:
        os.killpg(worker.proc.pid, signal.SIGTERM)
    for worker in running:
        try:
            worker.proc.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()


@dataclass
class Workers:
    """The workers a module started; all stopped at its end."""

    env: dict[str, str]
    directory: Path
    started: list[Worker] = field(default_factory=list)

    def start(
        self, *args: str, env: dict[str, str] | None = None, program: list[str] | None = None
    ) -> Worker:
        name = f"p{len(self.started) + 1}"
        log = self.directory / f"{name}.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [*(program or [GATEHOUSE, "worker"]), *args],
                cwd=ROOT,
                env=env or self.env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = Worker(proc, log, name, default=program is None and env is None)
        self.started.append(worker)
        return worker

    @property
    def alive(self) -> list[Worker]:
        """The live plain workers."""
        return [w for w in self.started if w.alive and w.default]

    async def ready(self, *workers: Worker) -> None:
        for worker in workers:
            await wait_until(worker.ready, within=STARTUP_LIMIT, what=f"{worker.name} ready")

    async def ensure(self, count: int) -> list[Worker]:
        """At least `count` live workers of the default kind, ready."""
        missing = count - len(self.alive)
        await self.ready(*[self.start() for _ in range(max(missing, 0))])
        await self.ready(*self.alive)
        return self.alive

    def holder(self, request_id: str, delivery: int = 1) -> Worker | None:
        """The worker that ran the `delivery`-th delivery of that request's job."""
        runs = self.runs(request_id)
        if len(runs) < delivery:
            return None
        return next(w for w in self.started if w.name == runs[delivery - 1]["worker"])

    def runs(self, request_id: str, event: str = "worker.job_started") -> list[dict[str, Any]]:
        """Every log line `event` for that request id, in any worker, by time."""
        found = [
            {**record, "worker": worker.name}
            for worker in self.started
            for record in worker.events(event, request_id=request_id)
        ]
        return sorted(found, key=lambda r: str(r.get("timestamp")))

    def stop_all(self) -> None:
        stop(*self.started)


def queue_depth(broker_url: str, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of a queue, straight from the broker."""
    with Connection(broker_url, connect_timeout=5) as connection:
        _, messages, consumers = connection.default_channel.queue_declare(queue=queue, passive=True)
        return int(messages), int(consumers)


def delete_topology(broker_url: str, prefix: str, events_exchange: str | None = None) -> None:
    """Remove the queues and exchanges of one prefix (and an events exchange)."""
    with Connection(broker_url, connect_timeout=5) as connection:
        channel = connection.default_channel
        for suffix in ("tasks", "webhooks", "dead"):
            channel.queue_delete(queue=f"{prefix}.{suffix}")
        for exchange in (f"{prefix}.jobs", f"{prefix}.dlx", events_exchange):
            if exchange:
                channel.exchange_delete(exchange=exchange)


class TableLock:
    """An ACCESS EXCLUSIVE lock held in an open transaction: any statement on the table,
    `SKIP LOCKED` claims included, waits for it. A job stuck here is mid-task."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.held = True

    async def waiters(self) -> set[int]:
        """The backends waiting for a lock in this database (the stuck jobs)."""
        # Statistics views keep one snapshot per transaction, and this one stays open.
        await self.connection.execute(text("SELECT pg_stat_clear_snapshot()"))
        rows = await self.connection.scalars(
            text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return set(rows.all())

    async def end_sessions(self, pids: set[int]) -> None:
        """End the database sessions of a killed worker. PostgreSQL notices a dead
        client only when it next writes to it: left alone, the session of a job killed
        while it waited here would take the lock first, lock the row, and make the
        rerun's `SKIP LOCKED` claim pass it by (the sweep would send it later)."""
        for pid in pids:
            await self.connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    async def release(self) -> None:
        if self.held:
            await self.connection.rollback()
            self.held = False


@asynccontextmanager
async def table_locked(database_url: str, table: str) -> AsyncIterator[TableLock]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            await connection.begin()
            await connection.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            lock = TableLock(connection)
            try:
                yield lock
            finally:
                await lock.release()
    finally:
        await engine.dispose()


async def waiting_on(lock: TableLock, count: int = 1) -> set[int]:
    """Until `count` sessions wait for the lock (bounded); their backend pids."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while len(pids := await lock.waiters()) < count:
        if loop.time() > deadline:
            pytest.fail("no job came to wait on the table lock within 30s")
        await asyncio.sleep(0.02)
    return pids
