"""Requests/s and latency of a real Gatehouse server against a bare FastAPI hello, with wrk.

`make bench` runs this (benchmarks/README.md says what it measures and how to read it).
In short: a fresh database seeded with 100,000 users; the server as in production
(`gatehouse serve`, one process, pinned to CPU 0) and the bare hello app under the same
uvicorn settings; per round, wrk (pinned to CPU 1) drives each scenario after a warm-up;
the results go to benchmarks/results/<date>-<commit>.json and .md. Every server, wrk
process and temp database is stopped or dropped on the way out, even on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pyrage import x25519
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from benchmarks.report import (
    HELLO,
    Measurement,
    Report,
    ScaleOut,
    WrkRun,
    parse_wrk,
    result_stem,
)
from gatehouse.users.models import User
from gatehouse.users.seed import BULK_PASSWORD, SAMPLE_PASSWORD

ROOT = Path(__file__).resolve().parents[1]
WRK_DIR = ROOT / "benchmarks" / "wrk"
RESULTS_DIR = ROOT / "benchmarks" / "results"
ADMIN_EMAIL = "alice.admin@example.com"  # from `gatehouse seed`
USER_EMAIL = "uma.user@example.com"
LOGIN_EMAIL = "bench.login@example.com"
LOGIN_PASSWORD = "quiet harbour lantern 42"  # noqa: S105  (a throwaway account in a temp db)
REDIS_URL = os.environ.get("GATEHOUSE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_ADMIN_URL = os.environ.get(
    "GATEHOUSE_BENCH_POSTGRES_URL",
    os.environ.get(
        "GATEHOUSE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    ),
)
# Every rate limit on, each budget far above what one benchmark client sends: the
# limiter runs (and costs what it costs) on every request, and refuses none.
BUDGET = "1000000000/hour"
RATE_LIMITS = (
    "RATE_LIMIT_ANONYMOUS",
    "RATE_LIMIT_AUTHENTICATED",
    "RATE_LIMIT_LOGIN",
    "RATE_LIMIT_REGISTER",
    "RATE_LIMIT_REFRESH",
    "RATE_LIMIT_PASSWORD_RESET",
    "LOGIN_IP_FAILURES",
)
GET_IDS = 2000  # users read by GET /users/{id}, in turn
PUT_IDS = 5000  # users renamed by PUT /users/{id}, in turn

SCENARIOS = {
    HELLO: "bare FastAPI `GET /hello` (the denominator)",
    "health": "`GET /health`",
    "me": "`GET /api/v1/users/me`",
    "user": "`GET /api/v1/users/{id}` (admin, audited read)",
    "list-first": "`GET /api/v1/users?page=1&page_size=20`",
    "list-deep": "`GET /api/v1/users?page=4000&page_size=20`",
    "refresh": "`POST /api/v1/auth/refresh`",
    "update": "`PUT /api/v1/users/{id}` (admin, new name, If-Match)",
    "create": "`POST /api/v1/users` (admin, bcrypt 12)",
    "login": "`POST /api/v1/auth/token` (bcrypt 12)",
    "storm": "`GET /api/v1/users/me` during a login storm",
}
SLOW = {"create", "login"}  # bcrypt per request: fewer connections, no point in more


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float | None:
    """CPU time of every live process in a process group (a server and its workers)."""
    total, seen = 0.0, False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            seen = True
    return total if seen else None


def memory_mb(pid: int) -> dict[str, float]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    return found


# --- processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gatehouse_command() -> list[str]:
    script = Path(sys.executable).parent / "gatehouse"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gatehouse.cli.main"]


def gatehouse(env: dict[str, str], *args: str) -> str:
    """Run one CLI command to completion; its output on failure."""
    done = subprocess.run(  # noqa: S603
        [*gatehouse_command(), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"gatehouse {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout + done.stderr


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def serve(
    command: list[str],
    env: dict[str, str],
    log_path: Path,
    cpu: int | None,
    ready_path: str = "/health/ready",
) -> Iterator[Server]:
    """A server on a free loopback port (`{port}` in the command); always stopped."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]  # taskset execs: the pid stays
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: its workers are ours to stop
            cwd=ROOT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_until_up(server, ready_path)
        yield server
    finally:
        stop(process)


def _wait_until_up(server: Server, path: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited at start:\n{server.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.base_url}{path}", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """SIGTERM to the process's own group, SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


# --- wrk --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """One wrk invocation, but for its duration."""

    path: str
    script: str = "static.lua"
    args: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    connections: int = 16

    def command(self, base_url: str, seconds: int, cpu: int | None) -> list[str]:
        wrk = shutil.which("wrk") or "wrk"
        command = [wrk, "-t1", f"-c{self.connections}", f"-d{seconds}s", "--timeout", "30s"]
        for header in self.headers:
            command += ["-H", header]
        command += ["-s", self.script, f"{base_url}{self.path}"]
        if self.args:
            command += ["--", *self.args]
        return ["taskset", "-c", str(cpu), *command] if cpu is not None else command


def start_wrk(load: Load, base_url: str, seconds: int, cpu: int | None) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603
        load.command(base_url, seconds, cpu),
        cwd=WRK_DIR,  # the scripts dofile("common.lua")
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish_wrk(process: subprocess.Popen[str], seconds: int) -> WrkRun:
    try:
        output, _ = process.communicate(timeout=seconds + 90)
    except subprocess.TimeoutExpired:
        stop(process)
        raise RuntimeError("wrk did not finish") from None
    finally:
        stop(process)
    return parse_wrk(output)


def run_wrk(load: Load, base_url: str, seconds: int, cpu: int | None) -> WrkRun:
    return finish_wrk(start_wrk(load, base_url, seconds, cpu), seconds)


def wait_quiet(server: Server, limit: float = 30.0) -> None:
    """Until the server has finished what the last wrk left in flight: wrk stops sending
    at its deadline, but the server still runs the requests it had (a second or two of
    bcrypt in the slow scenarios), which would otherwise count against the next run."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = group_cpu_seconds(server.pid)
        time.sleep(0.25)
        after = group_cpu_seconds(server.pid)
        if before is None or after is None or (after - before) / 0.25 < 0.1:
            return


@dataclass
class Measured:
    run: WrkRun
    cpu: float | None  # cores


def measure(load: Load, server: Server, seconds: int, cpu: int | None) -> Measured:
    """One wrk run, and the server's CPU (its whole process group) meanwhile."""
    before, started = group_cpu_seconds(server.pid), time.perf_counter()
    run = run_wrk(load, server.base_url, seconds, cpu)
    after, elapsed = group_cpu_seconds(server.pid), time.perf_counter() - started
    used = None if before is None or after is None else (after - before) / elapsed
    return Measured(run, used)


# --- the backends and the settings ------------------------------------------------------


def write_keys(directory: Path) -> dict[str, str]:
    """The signing, audit, backup and encryption keys of our own, as production wants them."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (directory / "jwt.pem").write_bytes(pem)
    (directory / "audit.key").write_text(secrets.token_urlsafe(48))
    # Production refuses to start without a backup key; the benchmark never backs up.
    (directory / "backup.key").write_text(str(x25519.Identity.generate()))
    # Production refuses to start without encryption keys (webhook secrets at rest).
    encryption_key = base64.b64encode(secrets.token_bytes(32)).decode()
    (directory / "encryption.keys").write_text(f"bench:{encryption_key}\n")
    for path in directory.iterdir():
        path.chmod(0o600)
    return {
        "GATEHOUSE_JWT_PRIVATE_KEY_FILE": str(directory / "jwt.pem"),
        "GATEHOUSE_AUDIT_KEY_FILE": str(directory / "audit.key"),
        "GATEHOUSE_BACKUP_KEY_FILE": str(directory / "backup.key"),
        "GATEHOUSE_ENCRYPTION_KEYS_FILE": str(directory / "encryption.keys"),
    }


def production_env(workdir: Path, database_url: str | None, redis_prefix: str) -> dict[str, str]:
    """As close to production as the harness gets: GATEHOUSE_ENV=production on PostgreSQL
    (SQLite is refused there, so it runs as development with the same settings)."""
    # The caller's own GATEHOUSE_* settings must not leak into the measured server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env |= write_keys(workdir / "keys")
    env |= {
        "GATEHOUSE_ENV": "production" if database_url else "development",
        "GATEHOUSE_DATA_DIR": str(workdir / "data"),
        "GATEHOUSE_BCRYPT_ROUNDS": "12",
        "GATEHOUSE_LOG_FORMAT": "json",
        "GATEHOUSE_LOG_LEVEL": "INFO",
        "GATEHOUSE_METRICS_ACCESS": "loopback",
        "GATEHOUSE_RATE_LIMIT_ENABLED": "true",
        # The measured admin logs in with a password alone. Production requires MFA of
        # admins; a token whose login used a second factor passes that policy on its
        # `amr` without a query, the same cost as the policy off.
        "GATEHOUSE_MFA_REQUIRED_ROLES": "",
    }
    env |= {f"GATEHOUSE_{name}": BUDGET for name in RATE_LIMITS}
    if database_url:
        env["GATEHOUSE_DATABASE_URL"] = database_url
        if reachable(REDIS_URL):
            env |= {"GATEHOUSE_REDIS_URL": REDIS_URL, "GATEHOUSE_REDIS_PREFIX": redis_prefix}
    return env


def setup_env(env: dict[str, str]) -> dict[str, str]:
    """For seeding and minting sessions only: development (seeding is refused in
    production), bcrypt cost 4 and no limiter, so the setup takes seconds."""
    return env | {
        "GATEHOUSE_ENV": "development",
        "GATEHOUSE_BCRYPT_ROUNDS": "4",
        "GATEHOUSE_RATE_LIMIT_ENABLED": "false",
    }


async def _admin_sql(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 1.0):
            return True
    except OSError:
        return False


@contextmanager
def postgres_database(prefix: str = "gatehouse_bench") -> Iterator[str]:
    """A temp PostgreSQL database, dropped on the way out."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin_sql(POSTGRES_ADMIN_URL, f'CREATE DATABASE "{name}"'))
    try:
        yield url
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        asyncio.run(_admin_sql(POSTGRES_ADMIN_URL, drop))


def database_url(env: dict[str, str]) -> str:
    return env.get("GATEHOUSE_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{Path(env['GATEHOUSE_DATA_DIR']).resolve() / 'gatehouse.db'}"
    )


async def bulk_users(url: str, count: int, offset: int = 0) -> list[tuple[str, str, int]]:
    """(id, email, version) of seeded bulk users, in a stable order."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(User.id, User.email, User.version)
                .where(User.email.like("bulk-%"))
                .order_by(User.email)
                .offset(offset)
                .limit(count)
            )
            return [(str(row[0]), row[1], row[2]) for row in rows]
    finally:
        await engine.dispose()


async def versions(url: str, ids: Sequence[str]) -> list[tuple[str, int]]:
    """The current version of each user, as a client that read them would know it."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(User.id, User.version).where(User.id.in_([uuid.UUID(i) for i in ids]))
            )
            return [(str(row[0]), row[1]) for row in rows]
    finally:
        await engine.dispose()


# --- sessions -------------------------------------------------------------------------


@dataclass
class Session:
    """A logged-in client: the current access token and the refresh token to renew it."""

    access: str
    refresh: str

    @property
    def bearer(self) -> str:
        return f"Authorization: Bearer {self.access}"


async def _login(client: httpx.AsyncClient, email: str, password: str) -> Session:
    response = await client.post(
        "/api/v1/auth/token", json={"username": email, "password": password}
    )
    if response.status_code != 200:
        raise RuntimeError(f"logging in as {email} failed: {response.status_code} {response.text}")
    body = response.json()
    return Session(body["access_token"], body["refresh_token"])


async def mint(base_url: str, emails: Sequence[str]) -> tuple[Session, Session, list[str]]:
    """The admin's and the user's sessions, and one refresh token for each bulk email."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0) as client:
        admin = await _login(client, ADMIN_EMAIL, SAMPLE_PASSWORD)
        user = await _login(client, USER_EMAIL, SAMPLE_PASSWORD)
        gate = asyncio.Semaphore(8)

        async def one(email: str) -> str:
            async with gate:
                return (await _login(client, email, BULK_PASSWORD)).refresh

        pool = await asyncio.gather(*(one(email) for email in emails))
    return admin, user, list(pool)


def renew(base_url: str, session: Session) -> None:
    """A fresh access token (an access token lives 15 minutes), by the refresh grant."""
    response = httpx.post(
        f"{base_url}/api/v1/auth/refresh", json={"refresh_token": session.refresh}, timeout=60.0
    )
    if response.status_code != 200:
        raise RuntimeError(f"refreshing a setup session failed: {response.text}")
    body = response.json()
    session.access, session.refresh = body["access_token"], body["refresh_token"]


def create_login_account(base_url: str, admin: Session) -> None:
    """The login scenario's account, created by the measured server: hashed at cost 12."""
    response = httpx.post(
        f"{base_url}/api/v1/users",
        json={"email": LOGIN_EMAIL, "name": "Bench Login", "password": LOGIN_PASSWORD},
        headers={"Authorization": f"Bearer {admin.access}"},
        timeout=60.0,
    )
    if response.status_code != 201:
        raise RuntimeError(f"creating the login account failed: {response.text}")


# --- the run --------------------------------------------------------------------------


@dataclass
class Setup:
    """What the scenarios need, prepared once per backend."""

    env: dict[str, str]
    workdir: Path
    admin: Session
    user: Session
    refresh_pools: list[list[str]]  # one per refresh wrk run, used in turn
    get_ids: Path
    put_ids: list[str]
    database_url: str


def prepare(env: dict[str, str], workdir: Path, args: argparse.Namespace) -> Setup:
    setup = setup_env(env)
    gatehouse(setup, "migrate")
    started = time.perf_counter()
    gatehouse(setup, "seed", "--env", "development", "--count", str(args.users))
    args.seed_seconds = time.perf_counter() - started
    print(f"  seeded {args.users:,} users in {args.seed_seconds:.1f} s", flush=True)
    url = database_url(env)
    if url.startswith("postgresql"):
        # A table just filled has no visibility map and stale statistics until
        # autovacuum reaches it, minutes later: index-only scans then read every row
        # they skip. A service that has run for a while has both; so does this one.
        asyncio.run(_admin_sql(url, "VACUUM (ANALYZE) users"))
    pool_size = args.connections * 2  # more tokens than connections: see refresh.lua
    # A refresh pool for every refresh run: warm-up and measured, each round.
    pools = 2 * args.rounds if "refresh" in args.scenarios else 0
    users = asyncio.run(bulk_users(url, max(GET_IDS, PUT_IDS, pool_size * pools)))
    if len(users) < max(2 * args.connections, pool_size * pools):
        raise RuntimeError(f"too few bulk users ({len(users)}): raise --users")
    emails = [email for _, email, _ in users[: pool_size * pools]]
    with serve(
        [*gatehouse_command(), "serve", "--host", "127.0.0.1", "--port", "{port}"],
        setup,
        workdir / "server-setup.log",
        None,
    ) as server:
        admin, user, tokens = asyncio.run(mint(server.base_url, emails))
    print(f"  minted {len(tokens)} refresh tokens (cost-4 logins of bulk users)", flush=True)
    # The renamed users are others than the read ones, so reads see stable rows.
    reads = min(GET_IDS, len(users) // 2)
    get_ids = workdir / "get-ids.txt"
    get_ids.write_text("\n".join(i for i, _, _ in users[:reads]) + "\n")
    put_ids = [i for i, _, _ in users[reads : reads + PUT_IDS]]
    return Setup(
        env=env,
        workdir=workdir,
        admin=admin,
        user=user,
        refresh_pools=[tokens[n * pool_size : (n + 1) * pool_size] for n in range(pools)],
        get_ids=get_ids,
        put_ids=put_ids,
        database_url=url,
    )


def load_for(scenario: str, setup: Setup, args: argparse.Namespace) -> Load:
    """The wrk load of a scenario, made afresh for every run (new tokens, versions)."""
    admin, user = (setup.admin.bearer,), (setup.user.bearer,)
    tag = uuid.uuid4().hex[:8]
    slow = args.slow_connections
    match scenario:
        case "hello":
            return Load("/hello", connections=args.connections)
        case "health":
            return Load("/health", connections=args.connections)
        case "me" | "storm":
            return Load("/api/v1/users/me", headers=user, connections=args.connections)
        case "user":
            return Load(
                "/api/v1/users",
                "user_by_id.lua",
                (str(setup.get_ids),),
                admin,
                args.connections,
            )
        case "list-first":
            return Load("/api/v1/users?page=1&page_size=20", headers=admin)
        case "list-deep":
            return Load("/api/v1/users?page=4000&page_size=20", headers=admin)
        case "refresh":
            pool = setup.workdir / f"refresh-{tag}.txt"
            pool.write_text("\n".join(setup.refresh_pools.pop(0)) + "\n")
            return Load("/api/v1/auth/refresh", "refresh.lua", (str(pool),), (), args.connections)
        case "update":
            current = asyncio.run(versions(setup.database_url, setup.put_ids))
            path = setup.workdir / f"put-{tag}.txt"
            path.write_text("".join(f"{i} {v}\n" for i, v in current))
            return Load("/api/v1/users", "update_user.lua", (str(path), tag), admin)
        case "create":
            return Load("/api/v1/users", "create_user.lua", (tag,), admin, slow)
        case "login":
            body = json.dumps({"username": LOGIN_EMAIL, "password": LOGIN_PASSWORD})
            return Load("/api/v1/auth/token", args=(body,), connections=slow)
    raise ValueError(f"unknown scenario {scenario}")


def login_ceiling(seconds: int, cpu: int | None) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks.ceiling", "--seconds", str(seconds)]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    done = subprocess.run(  # noqa: S603
        command, cwd=ROOT, capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    found: dict[str, float] = json.loads(done.stdout)
    return found


def print_row(label: str, run: WrkRun, cpu: float | None, note: str = "") -> None:
    shown = f"{cpu * 100:5.0f} %" if cpu is not None else "    n/a"
    print(
        f"    {label:<12} {run.rps:9.1f} req/s  p50 {run.p50_ms:8.1f}  p95 {run.p95_ms:8.1f}  "
        f"p99 {run.p99_ms:8.1f} ms  cpu {shown}  errors {run.errors}{note}",
        flush=True,
    )


def one_scenario(
    scenario: str,
    round_number: int,
    setup: Setup,
    app: Server,
    hello: Server,
    args: argparse.Namespace,
    report: Report,
) -> None:
    server = hello if scenario == HELLO else app
    load = load_for(scenario, setup, args)
    warm = run_wrk(load, server.base_url, args.warmup, args.wrk_cpu)
    wait_quiet(server)
    # Afresh: the warm-up spent its refresh tokens, moved the versions on and used the
    # emails of its counter.
    load = load_for(scenario, setup, args)
    storm: subprocess.Popen[str] | None = None
    if scenario == "storm":
        # Logins at the ceiling (every slow connection busy) from before until after
        # the measured seconds of /users/me.
        storm = start_wrk(
            load_for("login", setup, args), app.base_url, args.duration + 3, args.wrk_cpu
        )
        time.sleep(1.5)
    try:
        measured = measure(load, server, args.duration, args.wrk_cpu)
    finally:
        login_run = finish_wrk(storm, args.duration + 3) if storm is not None else None
        wait_quiet(server)
    warmup_errors = warm.errors + (login_run.errors if login_run else 0)
    report.measurements.append(
        Measurement(scenario, round_number, measured.run, measured.cpu, warmup_errors)
    )
    note = ""
    if login_run is not None:
        report.storm_logins[round_number] = login_run.rps
        note = f"  (logins meanwhile {login_run.rps:.2f}/s, errors {login_run.errors})"
    if warm.errors:
        note += f"  (warm-up errors {warm.errors}: {warm.statuses} {warm.samples})"
    if measured.run.samples:
        note += f"  {measured.run.samples}"
    print_row(scenario, measured.run, measured.cpu, note)


def run_rounds(setup: Setup, args: argparse.Namespace, report: Report) -> None:
    env = setup.env
    app_command = [*gatehouse_command(), "serve", "--host", "127.0.0.1", "--port", "{port}"]
    hello_command = [sys.executable, "-m", "benchmarks.hello", "--port", "{port}"]
    with ExitStack() as stack:
        app = stack.enter_context(
            serve(app_command, env, setup.workdir / "server.log", args.server_cpu)
        )
        hello = stack.enter_context(
            serve(hello_command, env, setup.workdir / "hello.log", args.server_cpu, "/hello")
        )
        renew(app.base_url, setup.admin)
        if "login" in args.scenarios:
            create_login_account(app.base_url, setup.admin)
        for round_number in range(1, args.rounds + 1):
            print(f"\n  round {round_number} of {args.rounds}", flush=True)
            renew(app.base_url, setup.admin)
            renew(app.base_url, setup.user)
            if "login" in args.scenarios:
                ceiling = login_ceiling(min(args.duration, 5), args.server_cpu)
                report.ceiling[round_number] = ceiling["per_second"]
                report.ceiling_cpu[round_number] = ceiling["cpu_share"]
                print(
                    f"    login ceiling: {ceiling['per_second']:.2f} bcrypt-12 verifications/s "
                    f"(the process had {ceiling['cpu_share'] * 100:.0f} % of its core)",
                    flush=True,
                )
            for scenario in args.scenarios:
                one_scenario(scenario, round_number, setup, app, hello, args, report)
        report.rss_mb = memory_mb(app.pid)
    report.server_warnings = log_warnings(setup.workdir / "server.log")
    if report.server_warnings:
        print(f"\n  the server logged warnings: {report.server_warnings}", flush=True)
        print(
            f"\n  API process after the run: VmRSS {report.rss_mb['VmRSS']:.0f} MB, "
            f"VmHWM {report.rss_mb['VmHWM']:.0f} MB",
            flush=True,
        )


def log_warnings(path: Path) -> dict[str, int]:
    """Warnings and errors in the server's JSON log, by event: a run where Redis timed
    out, say, measured the fallback, not the production shape."""
    found: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("warning", "error", "critical"):
            event = f"{entry['level']}: {entry.get('event', '?')}"
            found[event] = found.get(event, 0) + 1
    return found


def run_scale_out(setup: Setup, args: argparse.Namespace, report: Report) -> None:
    """1 and 2 API processes, unpinned, against the same PostgreSQL and Redis."""
    print("\n  scale-out (no pinning)", flush=True)
    for workers in (1, 2):
        command = [
            *gatehouse_command(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--workers",
            str(workers),
        ]
        log = setup.workdir / f"server-{workers}-workers.log"
        with serve(command, setup.env, log, None) as server:
            renew(server.base_url, setup.admin)
            renew(server.base_url, setup.user)
            for scenario in ("me", "user"):
                load = load_for(scenario, setup, args)
                warm = run_wrk(load, server.base_url, args.warmup, None)
                wait_quiet(server)
                measured = measure(load_for(scenario, setup, args), server, args.duration, None)
                wait_quiet(server)
                result = ScaleOut(workers, scenario, measured.run, measured.cpu)
                if warm.errors:
                    print(f"    warm-up errors {warm.errors}: {warm.statuses}")
                report.scale_out.append(result)
                print_row(f"{scenario} x{workers}", measured.run, measured.cpu)


def seed_million(args: argparse.Namespace) -> dict[str, float]:
    """`gatehouse seed --count 1000000` on a PostgreSQL database of its own, timed."""
    print("\n  gatehouse seed --count 1000000 (PostgreSQL)", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="gatehouse-bench-") as tmp,
        postgres_database("gatehouse_bench_seed") as url,
    ):
        env = setup_env(production_env(Path(tmp), url, f"bench-seed-{uuid.uuid4().hex[:8]}:"))
        gatehouse(env, "migrate")
        started = time.perf_counter()
        output = gatehouse(env, "seed", "--env", "development", "--count", "1000000")
        seconds = time.perf_counter() - started
    found = re.search(r"Bulk users inserted: \d+ in ([\d.]+) s", output)
    insert = float(found.group(1)) if found else float("nan")
    print(f"    {seconds:.1f} s (bulk insert {insert:.1f} s)", flush=True)
    return {"million_seconds": seconds, "million_insert_seconds": insert}


def run_backend(backend: str, args: argparse.Namespace, report: Report) -> None:
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gatehouse-bench-")))
        url = stack.enter_context(postgres_database()) if backend == "postgres" else None
        prefix = f"bench-{uuid.uuid4().hex[:8]}:"
        env = production_env(workdir, url, prefix)
        report.settings["environment"] = f"GATEHOUSE_ENV={env['GATEHOUSE_ENV']}"
        report.settings["redis"] = "GATEHOUSE_REDIS_URL" in env
        try:
            setup = prepare(env, workdir, args)
            report.seed["users_seconds"] = args.seed_seconds
            run_rounds(setup, args, report)
            if backend == "postgres" and args.scale_out:
                run_scale_out(setup, args, report)
        finally:
            if args.keep_logs:
                shutil.copytree(workdir, args.keep_logs, dirs_exist_ok=True, symlinks=True)
            if "GATEHOUSE_REDIS_URL" in env:
                _drop_redis_keys(prefix)


def _drop_redis_keys(prefix: str) -> None:
    """The run's cache and limiter keys (its own prefix): Redis is shared."""
    from redis import Redis  # lazy: only with Redis

    client = Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


# --- main -----------------------------------------------------------------------------


def _git(*args: str) -> str:
    return subprocess.run(  # noqa: S603
        ["git", *args],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def machine() -> dict[str, str | int | bool]:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": load_average(),
        "cores": os.cpu_count() or 1,
        "cpu": f"{os.cpu_count()} x {model}",
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "commit": _git("rev-parse", "--short", "HEAD") or "unknown",
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "wrk": wrk_version(),
    }


def wrk_version() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        return "missing"
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    return (done.stdout + done.stderr).splitlines()[0] if done.stdout or done.stderr else "?"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="measured seconds per run")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured seconds before")
    parser.add_argument("--users", type=int, default=100_000, help="bulk users seeded")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument(
        "--slow-connections", type=int, default=4, help="wrk connections for bcrypt scenarios"
    )
    parser.add_argument(
        "--scenarios",
        type=lambda value: [s.strip() for s in value.split(",") if s.strip()],
        default=[s for s in SCENARIOS if s != HELLO],
        help=f"comma-separated, from: {', '.join(s for s in SCENARIOS if s != HELLO)} "
        "(hello always runs: it is the denominator)",
    )
    parser.add_argument("--no-scale-out", dest="scale_out", action="store_false")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="no CPU pinning")
    parser.add_argument(
        "--seed-million",
        action="store_true",
        help="also time `gatehouse seed --count 1000000` on PostgreSQL",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a try: 2,000 users, 1 round of 2 s, 1 s warm-up"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results directory")
    parser.add_argument("--keep-logs", type=Path, help="copy the servers' logs here")
    if parser.parse_args(argv).quick:
        # Defaults, so that an explicit option still wins.
        parser.set_defaults(users=2000, rounds=1, duration=2, warmup=1, scale_out=False)
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    wanted = set(args.scenarios) | {HELLO}
    if "storm" in wanted:
        wanted |= {"me", "login"}  # the storm is read against both
    args.scenarios = [s for s in SCENARIOS if s in wanted]
    cpus = os.cpu_count() or 1
    args.pin = args.pin and cpus >= 2 and shutil.which("taskset") is not None
    args.server_cpu = 0 if args.pin else None
    args.wrk_cpu = 1 if args.pin else None
    if args.pin:
        # This process only waits; kept off the server's core all the same.
        os.sched_setaffinity(0, set(range(1, cpus)))
    return args


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM too stops the servers and cleans up on the way out


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("gatehouse bench: wrk is missing (`make wrk` installs it)", file=sys.stderr)
        return 2
    info = machine()
    backend_label = {"postgres": "PostgreSQL + Redis", "sqlite": "SQLite"}[args.backend]
    pinning = (
        "server, hello and the bcrypt ceiling on CPU 0, wrk on CPU 1"
        if args.pin
        else "no CPU pinning"
    )
    report = Report(
        machine=info,
        settings={
            "backend_label": backend_label,
            "environment": "?",
            "users": args.users,
            "rounds": args.rounds,
            "duration": args.duration,
            "warmup": args.warmup,
            "connections": args.connections,
            "slow_connections": args.slow_connections,
            "pinning": pinning,
            "scenarios": args.scenarios,
            "rate_limit_budget": BUDGET,
            "scale_out_note": "Both servers unpinned (`gatehouse serve --workers N`), wrk "
            "unpinned too, all sharing the machine's cores with PostgreSQL and Redis; "
            f"{args.connections} connections, {args.duration} s after {args.warmup} s of "
            "warm-up, one run each.",
        },
        backend=args.backend,
        labels=dict(SCENARIOS),
    )
    print(f"Gatehouse benchmark — {info['date']}, commit {info['commit']}")
    print(f"  {info['cpu']}; Python {info['python']}; {info['system']}; {info['wrk']}")
    print(f"  load average before the run: {info['load_average']} (other work skews figures)")
    print(
        f"  {backend_label}; {args.users:,} users; {args.rounds} round(s) of {args.duration} s "
        f"after {args.warmup} s warm-up; {args.connections} connections "
        f"({args.slow_connections} for bcrypt); {pinning}",
        flush=True,
    )
    failed = False
    if args.backend == "postgres" and not reachable(POSTGRES_ADMIN_URL):
        where = urlsplit(POSTGRES_ADMIN_URL)
        print(f"\n!!! PostgreSQL SKIPPED: unreachable at {where.hostname}:{where.port}")
        return 1 if os.environ.get("REQUIRE_SERVICES") == "1" else 0
    run_backend(args.backend, args, report)
    if args.seed_million:
        if reachable(POSTGRES_ADMIN_URL):
            report.seed |= seed_million(args)
        else:
            print("\n!!! seed --count 1000000 SKIPPED: PostgreSQL unreachable")
            failed = os.environ.get("REQUIRE_SERVICES") == "1"
    info["load_average_after"] = load_average()
    print(f"\n  load average after the run: {info['load_average_after']}")
    write_results(report, args)
    if report.errors:
        print(f"\n!!! {report.errors} requests failed (non-2xx or no answer): see above")
        failed = True
    return 1 if failed else 0


def write_results(report: Report, args: argparse.Namespace) -> None:
    info = report.machine
    stem = result_stem(str(info["date"])[:10], str(info["commit"]), args.backend, args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = args.out / f"{stem}.json", args.out / f"{stem}.md"
    json_path.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    table = report.markdown()
    md_path.write_text(table)
    print(f"\n{table}\nResults written to {json_path} and {md_path}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: the servers were stopped and the temp data removed", file=sys.stderr)
        sys.exit(130)
