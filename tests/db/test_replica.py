"""The read replica (GATEHOUSE_DATABASE_REPLICA_URL) against a real streaming replica.

The module starts its own pair on loopback: a primary (`initdb`, `wal_level=replica`)
and a hot standby cloned from it with `pg_basebackup -R`, each on a free port, both torn
down afterwards. Three API instances share them: A and B share Redis (so a write
through A keeps the writer's reads through B on the primary), C has no Redis and skips
a replica that lags at all.

One test walks the story in order (the replica is paused, resumed, then stopped), so
pytest-xdist never splits it across workers and the pair starts once.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from gatehouse.app import create_app
from gatehouse.db import migrate
from gatehouse.kit.jobs import LeftForSweep
from gatehouse.runtime import Runtime
from gatehouse.users.models import Role
from tests import services
from tests.conftest import make_settings
from tests.factories import Account, Api
from tests.logs import LogCapture
from tests.redis_server import drop_keys
from tests.scrape import Scrape

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
REPLICATION_WAIT_SECONDS = 15.0
POLL_SECONDS = 0.02


def pg_bin() -> Path:
    """The newest installed server binaries; skipped loudly when there are none."""
    for directory in PG_BIN_DIRS:
        if (directory / "initdb").is_file() and (directory / "pg_basebackup").is_file():
            return directory
    services.skip_suite(
        "PostgreSQL server binaries",
        "initdb and pg_basebackup are not installed (Debian: apt-get install postgresql-15)",
    )
    raise AssertionError("unreachable")


def as_cluster_owner(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: as root, run them as `postgres`.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def run(command: list[str]) -> None:
    result = subprocess.run(
        as_cluster_owner(command), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{command[0]}: {result.stdout}{result.stderr}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Cluster:
    bin: Path
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        log = self.data.parent / f"{self.data.name}.log"
        run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w", "start"])

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])

    async def sql(self, statement: str) -> Any:
        engine = create_async_engine(self.url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return await conn.scalar(text(statement))
        finally:
            await engine.dispose()


@dataclass
class Pair:
    primary: Cluster
    replica: Cluster

    async def wait(self, until: str) -> None:
        """Until the replica has received (`until="receive"`) or replayed (`"replay"`)
        everything the primary has written so far."""
        target = await self.primary.sql("SELECT pg_current_wal_lsn()::text")
        query = f"SELECT pg_last_wal_{until}_lsn() >= '{target}'::pg_lsn"
        for _ in range(int(REPLICATION_WAIT_SECONDS / POLL_SECONDS)):
            if await self.replica.sql(query):
                return
            await asyncio.sleep(POLL_SECONDS)
        raise AssertionError(f"the replica did not {until} the primary's WAL in time")


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """A primary and its streaming hot standby on loopback, for this module."""
    binaries = pg_bin()
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        services.skip_suite("PostgreSQL server binaries", "running as root without runuser")
    # Not pytest's tmp_path: as root the clusters run as `postgres`, who cannot enter it.
    work = Path(tempfile.mkdtemp(prefix="gatehouse-replica-"))
    if os.geteuid() == 0:
        shutil.chown(work, "postgres", "postgres")
    primary = Cluster(binaries, work / "primary", free_port())
    replica = Cluster(binaries, work / "replica", free_port())
    try:
        run([str(binaries / "initdb"), "-D", str(primary.data), "-U", "postgres",
             "-A", "trust", "--no-sync"])  # fmt: skip
        settings = [
            "listen_addresses = '127.0.0.1'",
            f"port = {primary.port}",
            "unix_socket_directories = ''",
            "wal_level = replica",
            "max_wal_senders = 4",
            "fsync = off",
        ]
        with (primary.data / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(settings) + "\n")
        with (primary.data / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        primary.start()
        run([str(binaries / "pg_basebackup"), "-R", "-D", str(replica.data), "-h", "127.0.0.1",
             "-p", str(primary.port), "-U", "postgres", "-X", "stream", "-c", "fast"])  # fmt: skip
        with (replica.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {replica.port}\n")
        replica.start()
        migrate.upgrade(primary.url)
        yield Pair(primary, replica)
    finally:
        replica.stop()
        primary.stop()
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class Instance:
    runtime: Runtime
    client: httpx.AsyncClient

    async def users(self, account: Account, search: str) -> list[str]:
        response = await self.client.get(
            "/api/v1/users", params={"search": search}, headers=account.headers
        )
        assert response.status_code == 200, response.text
        return [user["email"] for user in response.json()["data"]]

    async def users_total(self, account: Account) -> int:
        response = await self.client.get("/api/v1/overview", headers=account.headers)
        assert response.status_code == 200, response.text
        total: int = response.json()["users"]["total"]
        return total

    async def metrics(self) -> Scrape:
        response = await self.client.get("/metrics")
        assert response.status_code == 200, response.text
        return Scrape.parse(response.text)


@dataclass
class Setup:
    pair: Pair
    a: Instance
    b: Instance
    c: Instance
    writer: Account
    onlooker: Account


@pytest.fixture(scope="module")
async def setup(
    pair: Pair, signing_key_pem: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Setup]:
    prefix = f"gatehouse-test-{uuid.uuid4().hex[:12]}:"
    shared: dict[str, Any] = {
        "database_replica_url": pair.replica.url,
        # Far longer than the story takes: the writer's reads stay on the primary
        # throughout, however slow the machine.
        "database_replica_sticky_seconds": 60.0,
        "database_pool_min": 2,
        "database_pool_max": 4,
    }
    variants: dict[str, dict[str, Any]] = {
        "a": {"redis_url": redis_url, "redis_prefix": prefix},
        "b": {"redis_url": redis_url, "redis_prefix": prefix},
        # Any lag at all is too much here: a paused replica is skipped.
        "c": {"database_replica_max_lag_seconds": 0.001},
    }
    instances: dict[str, Instance] = {}
    stack: list[tuple[Runtime, httpx.AsyncClient]] = []
    try:
        for name, overrides in variants.items():
            settings = make_settings(
                pair.primary.url,
                tmp_path_factory.mktemp(f"instance-{name}"),
                signing_key_pem,
                **shared,
                **overrides,
            )
            runtime = Runtime.create(settings)
            runtime.use_jobs(LeftForSweep())
            transport = httpx.ASGITransport(
                app=create_app(runtime=runtime), client=("127.0.0.1", 50000)
            )
            client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            stack.append((runtime, client))
            instances[name] = Instance(runtime, client)
        api = Api(instances["a"].client, instances["a"].runtime)
        writer = await api.user(Role.admin, email=f"writer-{uuid.uuid4().hex[:6]}@example.com")
        onlooker = await api.user(Role.admin, email=f"onlooker-{uuid.uuid4().hex[:6]}@example.com")
        yield Setup(pair, instances["a"], instances["b"], instances["c"], writer, onlooker)
    finally:
        for runtime, client in reversed(stack):
            await client.aclose()
            await runtime.close()
        await drop_keys(redis_url, prefix)


async def create_user(instance: Instance, admin: Account, email: str) -> None:
    response = await instance.client.post(
        "/api/v1/users",
        json={"email": email, "name": "Replicated", "password": "Tr1cky-Horse-Battery"},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text


def fallback_lines(json_logs: LogCapture, reason: str) -> list[dict[str, Any]]:
    return [
        r
        for r in json_logs.records()
        if r["event"] == "db.replica_fallback" and r.get("reason") == reason
    ]


async def test_lag_tolerant_reads_use_the_replica_but_never_hide_ones_own_write(
    setup: Setup, json_logs: LogCapture
) -> None:
    s = setup
    pair, a, b, c, writer, onlooker = s.pair, s.a, s.b, s.c, s.writer, s.onlooker
    reads = "gatehouse_db_replica_reads_total"
    fallbacks = "gatehouse_db_replica_fallbacks_total"

    # Readiness checks the replica too.
    ready = await a.client.get("/health/ready")
    assert ready.json()["status"] == "ok"
    assert ready.json()["checks"]["replica"]["status"] == "ok"

    # A user the writer created on the primary is listed, once replicated, from the
    # replica: the onlooker (who wrote nothing) is served there.
    first = f"first-{uuid.uuid4().hex[:8]}@example.com"
    await create_user(a, writer, first)
    await pair.wait("replay")
    before = await a.metrics()
    assert await b.users(onlooker, first) == [first]
    after = await a.metrics()
    assert after.since(before, reads, target="replica") == 1
    assert after.since(before, reads, target="primary") == 0

    # Replay paused: what the writer creates now exists on the primary alone.
    await pair.replica.sql("SELECT pg_wal_replay_pause()")
    second = f"second-{uuid.uuid4().hex[:8]}@example.com"
    await create_user(a, writer, second)
    await pair.wait("receive")
    before = await a.metrics()
    # The writer sees their own write at once, through the other instance too (the mark
    # is shared through Redis): the primary served them.
    assert await b.users(writer, second) == [second]
    writer_total = await b.users_total(writer)
    # The onlooker is served by the lagging replica, which does not have it yet.
    assert await a.users(onlooker, second) == []
    assert await a.users_total(onlooker) == writer_total - 1
    # Instance C will not use a replica this far behind: the primary answers.
    assert await c.users(onlooker, second) == [second]
    after = await a.metrics()
    assert after.since(before, reads, target="primary") == 3
    assert after.since(before, reads, target="replica") == 2
    assert after.since(before, fallbacks, reason="lagging") == 1
    assert after.value("gatehouse_db_replica_lag_seconds") > 0
    assert fallback_lines(json_logs, "lagging")

    # Replay resumed: the replica catches up and serves the onlooker the new user, and
    # the other lag-tolerant reads: an audit page, an audit export (its bound and one
    # batch), a GDPR export.
    await pair.replica.sql("SELECT pg_wal_replay_resume()")
    await pair.wait("replay")
    before = await a.metrics()
    assert await a.users(onlooker, second) == [second]
    page = await a.client.get(
        "/api/v1/audit-events",
        params={"action": "user.create", "actor_id": str(writer.id)},
        headers=onlooker.headers,
    )
    assert page.status_code == 200, page.text
    assert len(page.json()["items"]) == 2  # the two users the writer created
    export = await a.client.get(
        "/api/v1/audit-events/export",
        params={"action": "user.create", "actor_id": str(writer.id)},
        headers=onlooker.headers,
    )
    assert export.status_code == 200, export.text
    assert len(export.text.splitlines()) == 2
    mine = await b.client.get(f"/api/v1/users/{onlooker.id}/export", headers=onlooker.headers)
    assert mine.status_code == 200, mine.text
    after = await a.metrics()
    assert after.since(before, reads, target="replica") == 5
    assert after.since(before, reads, target="primary") == 0

    # The replica stops mid-run: every read is still answered, by the primary.
    pair.replica.stop()
    json_logs.clear()
    before = await a.metrics()
    for instance in (a, b, a, b):
        assert await instance.users(onlooker, second) == [second]
    assert await a.users_total(onlooker) == writer_total
    audit = await a.client.get("/api/v1/audit-events", headers=onlooker.headers)
    assert audit.status_code == 200, audit.text
    export = await b.client.get(f"/api/v1/users/{onlooker.id}/export", headers=onlooker.headers)
    assert export.status_code == 200, export.text
    assert export.json()["user"]["email"] == onlooker.email
    after = await a.metrics()
    assert after.since(before, fallbacks, reason="unavailable") == 7
    assert after.since(before, reads, target="primary") == 7
    assert after.value("gatehouse_db_replica_unavailable") == 1
    # Logged once per instance, not once per request.
    lines = fallback_lines(json_logs, "unavailable")
    assert 1 <= len(lines) <= 2, lines
    assert all(line["level"] == "warning" for line in lines)

    # Readiness: the replica is an optional dependency, so the instance is degraded.
    ready = await a.client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["replica"] == {
        **ready.json()["checks"]["replica"],
        "status": "unavailable",
        "required": False,
    }
