"""Requests/s and latency of a real Gatehouse server, on SQLite and on PostgreSQL.

`make bench` runs this. For each backend it migrates a fresh database (a temp data dir
for SQLite; a temp database, created and dropped, on PostgreSQL when reachable), seeds
users, starts `gatehouse serve` (uvicorn, one process) on a free loopback port, and
drives it from this process with asyncio: a bounded number of clients, each on its own
keep-alive connection, for a bounded duration per scenario after a short warm-up.
httpx does the setup (logins, registration); the measured loop uses a bare HTTP/1.1
client, which costs far less CPU per request (`--client httpx` to compare). bcrypt runs
at cost 4 except for the login scenario, which restarts the server at the real cost 12.

On a machine with two cores or more the server is pinned to CPU 0 and the load
generator to the others, so the two do not fight for one core. The server's CPU use is
reported: near 100 % means the server was the bottleneck, well below means the load
generator (or the database) was.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from gatehouse.users.seed import SAMPLE_PASSWORD

ROOT = Path(__file__).resolve().parents[1]
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


@dataclass
class Result:
    backend: str
    scenario: str
    concurrency: int
    seconds: float
    requests: int
    errors: int
    server_cpu: float | None
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the server ---------------------------------------------------------------------


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
        [*gatehouse_command(), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"gatehouse {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout + done.stderr


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str


@contextmanager
def serve(env: dict[str, str], log_path: Path, pin: bool) -> Iterator[Server]:
    """`gatehouse serve` on a free loopback port; always stopped on the way out."""
    port = free_port()
    command = [*gatehouse_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if pin:
        command = ["taskset", "-c", "0", *command]
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        server = Server(process, f"http://127.0.0.1:{port}")
        _wait_until_up(server, log_path)
        yield server
    finally:
        _stop(process)


def _wait_until_up(server: Server, log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited at start:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.base_url}/health/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: only what we started
        process.wait(timeout=15)


# --- the load -----------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request, sent over and over by every client of a scenario."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    json_body: dict[str, str] | None = None

    def body(self) -> bytes:
        return json.dumps(self.json_body).encode() if self.json_body is not None else b""

    def encode(self, host: str) -> bytes:
        """The whole HTTP/1.1 request, built once."""
        body = self.body()
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if body:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class RawConnection:
    """A bare HTTP/1.1 keep-alive connection.

    httpx's async client spends more CPU per request than Gatehouse does on a cheap
    endpoint: against GET /health it reached 250-800 requests/s on one core with the
    server at most half busy, where this loop sent over 2,000; with httpx the figures
    measured httpx. httpx does the setup, and `--client httpx` keeps it for comparison.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, data: bytes) -> int:
        """Send one request and read the whole answer; its status, or 0 on failure."""
        try:
            if self.reader is None or self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.write(data)
            await self.writer.drain()
            head = await self.reader.readuntil(b"\r\n\r\n")
            status, length, keep = int(head[9:12]), 0, True
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" or (name == b"connection" and value == b"close"):
                    keep = False  # not expected from these endpoints: start afresh
            if length:
                await self.reader.readexactly(length)
            if not keep:
                self.close()
            return status
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self.close()
            return 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _senders(
    server: Server, call: Call, count: int, client: str, stack: AsyncExitStack
) -> list[Callable[[], Awaitable[int]]]:
    """One sender (one connection) per simulated client."""
    parts = urlsplit(server.base_url)
    senders: list[Callable[[], Awaitable[int]]] = []
    for _ in range(count):
        if client == "raw":
            connection = RawConnection(parts.hostname or "127.0.0.1", parts.port or 80)
            stack.callback(connection.close)
            data = call.encode(parts.netloc)
            senders.append(functools.partial(connection.request, data))
        else:
            http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=server.base_url, timeout=30.0)
            )
            senders.append(functools.partial(_httpx_send, http, call))
    return senders


async def _httpx_send(client: httpx.AsyncClient, call: Call) -> int:
    headers = dict(call.headers)
    if call.json_body is not None:
        headers["Content-Type"] = "application/json"
    try:
        response = await client.request(
            call.method, call.path, headers=headers, content=call.body() or None
        )
    except httpx.HTTPError:
        return 0
    return response.status_code


async def drive(
    server: Server, backend: str, name: str, call: Call, concurrency: int, args: argparse.Namespace
) -> Result:
    """`concurrency` clients send `call` back to back: a warm-up, then the measured run."""
    latencies: list[float] = []
    errors = 0

    async def client(send: Callable[[], Awaitable[int]], until: float, record: bool) -> None:
        nonlocal errors
        while time.perf_counter() < until:
            started = time.perf_counter()
            status = await send()
            if record:
                latencies.append(time.perf_counter() - started)
                errors += status != 200

    async with AsyncExitStack() as stack:
        senders = await _senders(server, call, concurrency, args.client, stack)
        until = time.perf_counter() + args.warmup
        await asyncio.gather(*(client(send, until, False) for send in senders))
        cpu_before = cpu_seconds(server.process.pid)
        started = time.perf_counter()
        until = started + args.duration
        await asyncio.gather(*(client(send, until, True) for send in senders))
        elapsed = time.perf_counter() - started
        cpu_after = cpu_seconds(server.process.pid)

    latencies.sort()
    server_cpu = None
    if cpu_before is not None and cpu_after is not None:
        server_cpu = (cpu_after - cpu_before) / elapsed
    result = Result(
        backend=backend,
        scenario=name,
        concurrency=concurrency,
        seconds=elapsed,
        requests=len(latencies),
        errors=errors,
        server_cpu=server_cpu,
        p50_ms=percentile(latencies, 50) * 1000,
        p95_ms=percentile(latencies, 95) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
    )
    report(result)
    return result


async def access_token(server: Server, email: str, password: str) -> str:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
        response = await client.post(
            "/api/v1/auth/token", json={"username": email, "password": password}
        )
        if response.status_code != 200:
            raise RuntimeError(f"logging in as {email} failed: {response.text}")
        token: str = response.json()["access_token"]
        return token


def report(result: Result) -> None:
    cpu = f"{result.server_cpu * 100:5.0f} %" if result.server_cpu is not None else "    n/a"
    print(
        f"  {result.backend:<9} {result.scenario:<46} {result.rps:8.1f} "
        f"{result.p50_ms:8.1f} {result.p95_ms:8.1f} {result.p99_ms:8.1f} "
        f"{result.requests:8d} {result.errors:6d} {cpu}",
        flush=True,
    )


async def fast_scenarios(
    server: Server, backend: str, args: argparse.Namespace, label: str = ""
) -> list[Result]:
    """Everything but login, with bcrypt at cost 4 (no scenario here hashes)."""
    admin = {"Authorization": f"Bearer {await access_token(server, ADMIN_EMAIL, SAMPLE_PASSWORD)}"}
    user = {"Authorization": f"Bearer {await access_token(server, USER_EMAIL, SAMPLE_PASSWORD)}"}
    scenarios = [
        ("GET /health", Call("GET", "/health")),
        ("GET /api/v1/users/me", Call("GET", "/api/v1/users/me", user)),
        (
            "GET /api/v1/users?page_size=20 (admin)",
            Call("GET", "/api/v1/users?page_size=20", admin),
        ),
    ]
    if label:
        # A comparison run: the fixed cost and the hot path are what a setting can change.
        scenarios = [(f"{name} {label}", call) for name, call in scenarios[:2]]
    return [
        await drive(server, backend, name, call, args.concurrency, args) for name, call in scenarios
    ]


async def login_scenario(server: Server, backend: str, args: argparse.Namespace) -> Result:
    """POST /api/v1/auth/token for an account hashed at cost 12 by this server."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
        response = await client.post(
            "/api/v1/auth/register",
            json={"email": LOGIN_EMAIL, "name": "Bench Login", "password": LOGIN_PASSWORD},
        )
        if response.status_code != 202:
            raise RuntimeError(f"registering the login account failed: {response.text}")
    call = Call(
        "POST", "/api/v1/auth/token", {}, {"username": LOGIN_EMAIL, "password": LOGIN_PASSWORD}
    )
    return await drive(
        server, backend, "POST /api/v1/auth/token (bcrypt 12)", call, args.login_concurrency, args
    )


# --- the backends -------------------------------------------------------------------


def base_env(data_dir: Path) -> dict[str, str]:
    # The caller's own GATEHOUSE_* settings must not leak into the measured server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.update(
        GATEHOUSE_ENV="development",
        GATEHOUSE_DATA_DIR=str(data_dir),
        GATEHOUSE_BCRYPT_ROUNDS="4",
        GATEHOUSE_LOG_FORMAT="json",
        GATEHOUSE_LOG_LEVEL="INFO",
        # The service is measured, not the limiter: 16 clients would spend the anonymous
        # budget in a second, and login throttling would answer most logins unchecked.
        GATEHOUSE_RATE_LIMIT_ENABLED="false",
    )
    return env


def run_backend(
    backend: str, env: dict[str, str], workdir: Path, args: argparse.Namespace
) -> list[Result]:
    gatehouse(env, "migrate")
    gatehouse(env, "seed", "--env", "development", "--count", str(args.users))
    with serve(env, workdir / "server-fast.log", args.pin) as server:
        results = asyncio.run(fast_scenarios(server, backend, args))
    if args.metrics_off:
        # Metrics are on by default; off, requests are not counted at all.
        off_env = {**env, "GATEHOUSE_METRICS_ACCESS": "off"}
        with serve(off_env, workdir / "server-no-metrics.log", args.pin) as server:
            results += asyncio.run(fast_scenarios(server, backend, args, "(metrics off)"))
    login_env = {**env, "GATEHOUSE_BCRYPT_ROUNDS": "12"}
    with serve(login_env, workdir / "server-login.log", args.pin) as server:
        results.append(asyncio.run(login_scenario(server, backend, args)))
    return results


def run_sqlite(args: argparse.Namespace) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-") as tmp:
        workdir = Path(tmp)
        return run_backend("sqlite", base_env(workdir / "data"), workdir, args)


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


def run_postgres(args: argparse.Namespace) -> list[Result]:
    name = f"gatehouse_bench_{uuid.uuid4().hex[:10]}"
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin_sql(POSTGRES_ADMIN_URL, f'CREATE DATABASE "{name}"'))
    try:
        with tempfile.TemporaryDirectory(prefix="gatehouse-bench-") as tmp:
            workdir = Path(tmp)
            env = {**base_env(workdir / "data"), "GATEHOUSE_DATABASE_URL": url}
            if reachable(REDIS_URL):
                # The production shape: PostgreSQL with the Redis cache in front.
                env |= {"GATEHOUSE_REDIS_URL": REDIS_URL, "GATEHOUSE_REDIS_PREFIX": f"{name}:"}
            return run_backend("postgres", env, workdir, args)
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        asyncio.run(_admin_sql(POSTGRES_ADMIN_URL, drop))


# --- main ---------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "n/a"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": load,
        "cpu": f"{os.cpu_count()} x {model}",
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "commit": commit or "unknown",
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["all", "sqlite", "postgres"], default="all")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--concurrency", type=int, default=16, help="clients in flight")
    parser.add_argument("--login-concurrency", type=int, default=8, help="clients for login")
    parser.add_argument("--users", type=int, default=1000, help="bulk users seeded")
    parser.add_argument(
        "--client", choices=["raw", "httpx"], default="raw", help="load generator (see docs)"
    )
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="no CPU pinning")
    parser.add_argument(
        "--no-metrics-off",
        dest="metrics_off",
        action="store_false",
        help="skip the comparison run with GATEHOUSE_METRICS_ACCESS=off",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    cpus = os.cpu_count() or 1
    args.pin = args.pin and cpus >= 2 and shutil.which("taskset") is not None
    if args.pin:
        os.sched_setaffinity(0, set(range(1, cpus)))
    return args


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM too stops the server and cleans up on the way out


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    args = parse_args(argv)
    info = machine()
    print(f"Gatehouse benchmark — {info['date']}, commit {info['commit']}")
    print(f"  {info['cpu']}; Python {info['python']}; {info['system']}")
    print(f"  load average before the run: {info['load_average']} (other work skews the figures)")
    print(
        f"  {args.duration:g} s per scenario after {args.warmup:g} s warm-up; "
        f"{args.concurrency} clients ({args.login_concurrency} for login); "
        f"{args.users} bulk users; {args.client} client; "
        + ("server on CPU 0, load on the others" if args.pin else "no CPU pinning")
    )
    print(
        f"\n  {'backend':<9} {'scenario':<46} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'requests':>8} {'errors':>6} {'server CPU':>9}"
    )
    results: list[Result] = []
    failed = False
    if args.backend in ("all", "sqlite"):
        results += run_sqlite(args)
    if args.backend in ("all", "postgres"):
        if reachable(POSTGRES_ADMIN_URL):
            results += run_postgres(args)
        else:
            where = urlsplit(POSTGRES_ADMIN_URL)
            print(f"\n!!! PostgreSQL SKIPPED: unreachable at {where.hostname}:{where.port}")
            failed = os.environ.get("REQUIRE_SERVICES") == "1"
    print(f"\n  load average after the run: {machine()['load_average']}")
    errors = sum(result.errors for result in results)
    if errors:
        print(f"\n!!! {errors} requests failed (non-200 or transport error): see above")
        failed = True
    if args.json:
        rows = [{**vars(result), "rps": round(result.rps, 1)} for result in results]
        args.json.write_text(json.dumps({"machine": info, "results": rows}, indent=2) + "\n")
        print(f"\nResults written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: the server was stopped and the temp data removed", file=sys.stderr)
        sys.exit(130)
