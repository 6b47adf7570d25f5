"""`gatehouse serve` stopped by SIGTERM, as systemd stops it (deploy/systemd), on
PostgreSQL, Redis and RabbitMQ: the requests in flight get their whole answer, a new
connection is refused, the connections to the database, Redis and the broker are closed,
and the process exits 0; a request that cannot finish is cut off at
GATEHOUSE_SHUTDOWN_TIMEOUT_SECONDS.

The requests go over raw sockets (h11 writes and reads them), so the test knows which
bytes left before the signal: a client library gives no such guarantee. The servers run
under MemoryDenyWriteExecute, as their unit runs them (tests.mdwe).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import h11
import httpx
import pytest
from redis.asyncio import Redis

from gatehouse.kit.jobs import LeftForSweep
from gatehouse.runtime import Runtime
from tests import rabbitmq
from tests.conftest import empty_tables, make_settings
from tests.factories import PASSWORD, Api
from tests.mdwe import MDWE
from tests.processes import ServerProcess, start, stop, wait_healthy
from tests.scrape import scrape
from tests.worker.support import env_for

# A login hashes at this cost: ~0.1-0.3 s each, so a burst is still running at the signal.
SLOW_BCRYPT_ROUNDS = 11
LOGINS = 6
EXIT_LIMIT = 60.0


@dataclass
class Sent:
    """One request on a connection of its own, written (or partly written) by h11."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    client: h11.Connection
    rest: bytes = b""  # the part of the body not sent yet

    async def finish_sending(self) -> None:
        self.writer.write(self.rest)
        await self.writer.drain()
        self.rest = b""

    async def answer(self) -> tuple[int, bytes]:
        """The status and body; fails on a connection closed before a whole answer."""
        status, body = 0, b""
        while True:
            event = self.client.next_event()
            if event is h11.NEED_DATA:
                self.client.receive_data(await self.reader.read(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self.writer.close()
                return status, body
            else:
                pytest.fail(f"the connection ended before a whole answer: {event!r}")


async def send(
    url: str,
    method: str,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    hold: int = 0,
) -> Sent:
    """Open a connection and write the request, all of it but the last `hold` bytes."""
    where = urlsplit(url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    client = h11.Connection(h11.CLIENT)
    payload = json.dumps(body).encode() if body is not None else b""
    fields = [("host", where.netloc), ("connection", "close"), *(headers or {}).items()]
    if body is not None:
        fields += [("content-type", "application/json"), ("content-length", str(len(payload)))]
    raw = client.send(h11.Request(method=method, target=path, headers=fields)) or b""
    if payload:
        raw += client.send(h11.Data(data=payload)) or b""
    raw += client.send(h11.EndOfMessage()) or b""
    cut = len(raw) - hold
    writer.write(raw[:cut])
    await writer.drain()
    return Sent(reader, writer, client, raw[cut:])


def log_events(server: ServerProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.output().splitlines() if line.startswith('{"')]


async def wait_in_flight(server: ServerProcess, count: int) -> None:
    """Until `count` requests are being served (besides the scrape asking). Connections
    are accepted in order: once the last one opened is in, every earlier one is too."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + EXIT_LIMIT
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        while (await scrape(client)).value("gatehouse_http_requests_in_flight") < count + 1:
            if loop.time() > deadline:
                pytest.fail(f"{count} requests not in flight within {EXIT_LIMIT}s")
            await asyncio.sleep(0.02)


async def wait_for_line(server: ServerProcess, text: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + EXIT_LIMIT
    while text not in server.output():
        if loop.time() > deadline:
            pytest.fail(f"{text!r} not logged within {EXIT_LIMIT}s:\n{server.output()}")
        await asyncio.sleep(0.02)


async def exit_code(server: ServerProcess) -> int:
    try:
        return await asyncio.wait_for(server.proc.wait(), EXIT_LIMIT)
    except TimeoutError:
        await stop(server)
        pytest.fail(f"serve still running {EXIT_LIMIT}s after SIGTERM:\n{server.output()}")


@dataclass
class Servers:
    graceful: ServerProcess  # the default shutdown timeout: everything in flight finishes
    cut_off: ServerProcess  # a 1 s shutdown timeout
    runtime: Runtime  # the test's own, for users


@pytest.fixture(scope="module")
async def servers(
    postgres_url: str,
    redis_url: str,
    rabbitmq_url: str,
    signing_key_pem: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Servers]:
    directory = tmp_path_factory.mktemp("shutdown")
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": directory / "data",
        "database_url": postgres_url,
        "jwt_private_key": signing_key_pem,
        "bcrypt_rounds": SLOW_BCRYPT_ROUNDS,
        "rate_limit_enabled": False,
        "redis_url": redis_url,
        "redis_prefix": f"gatehouse-test-shutdown-{os.getpid()}-{id(directory)}:",
        "broker_url": rabbitmq_url,
        **rabbitmq.unique_names(),
        "log_format": "json",
        "web_dir": directory / "no-web",
    }
    given = {k: v for k, v in values.items() if k not in {"database_url", "data_dir"}}
    runtime = Runtime.create(make_settings(postgres_url, directory / "data", "", **given))
    runtime.use_jobs(LeftForSweep())
    env = env_for(values)
    # Under MemoryDenyWriteExecute, as the unit runs it.
    started = [
        await start(env, directory / "graceful.log", wrapper=MDWE),
        await start(
            env | {"GATEHOUSE_SHUTDOWN_TIMEOUT_SECONDS": "1"}, directory / "cut.log", wrapper=MDWE
        ),
    ]
    try:
        await asyncio.gather(*(wait_healthy(server) for server in started))
        yield Servers(started[0], started[1], runtime)
    finally:
        for server in started:
            await stop(server)
        await empty_tables(runtime.db.engine)
        await runtime.close()
        redis = runtime.settings.redis
        assert redis.redis_url is not None
        client = Redis.from_url(redis.redis_url.get_secret_value())
        try:
            keys = [k async for k in client.scan_iter(match=f"{redis.redis_prefix}*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


async def test_sigterm_answers_the_requests_in_flight_refuses_new_ones_and_exits_0(
    servers: Servers,
) -> None:
    server = servers.graceful
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        account = await Api(client, servers.runtime).create_user()
        # The readiness check opens the process's broker connection (closed at the end).
        assert (await client.get("/health/ready")).status_code == 200
    login = {"username": account.email, "password": PASSWORD}

    burst = [
        *[await send(server.url, "POST", "/api/v1/auth/token", body=login) for _ in range(LOGINS)],
        await send(server.url, "GET", "/health"),
        await send(server.url, "GET", "/.well-known/jwks.json"),
    ]
    # One login is still arriving: its connection is open whatever the machine's speed.
    held = await send(server.url, "POST", "/api/v1/auth/token", body=login, hold=5)
    await wait_in_flight(server, 1)
    server.proc.send_signal(signal.SIGTERM)

    # uvicorn has stopped listening and waits for the open connections.
    await wait_for_line(server, "Waiting for connections to close")
    port = urlsplit(server.url).port
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    await held.finish_sending()

    answers = [await sent.answer() for sent in [*burst, held]]
    statuses = [status for status, _ in answers]
    assert statuses == [200] * len(answers), answers
    for _, body in answers[:LOGINS] + answers[-1:]:
        tokens = json.loads(body)
        assert tokens["token_type"] == "bearer", tokens
        assert tokens["access_token"], tokens
    assert json.loads(answers[LOGINS][1])["status"] == "ok"

    assert await exit_code(server) == 0, server.output()
    events = log_events(server)
    # The last one: `serve`'s start-up checks close a runtime of their own first.
    closed = [e for e in events if e["event"] == "runtime.closed"][-1]
    assert {"BrokerProbe", "redis", "database"} <= set(closed["closed"]), closed
    assert [e["event"] for e in events][-3:] == [
        "app.stopped",
        "Application shutdown complete.",
        f"Finished server process [{server.proc.pid}]",
    ]
    assert "timeout graceful shutdown exceeded" not in server.output()


async def test_a_request_that_cannot_finish_is_cut_off_at_the_shutdown_timeout(
    servers: Servers,
) -> None:
    server = servers.cut_off
    # A body that never comes: only the shutdown timeout (1 s here) ends this request.
    stalled = await send(
        server.url, "POST", "/api/v1/auth/token", body={"username": "x", "password": "y"}, hold=8
    )
    await wait_in_flight(server, 1)
    server.proc.send_signal(signal.SIGTERM)

    assert await exit_code(server) == 0, server.output()
    assert "Cancel 1 running task(s), timeout graceful shutdown exceeded" in server.output()
    events = [e["event"] for e in log_events(server)]
    assert {"runtime.closed", "app.stopped"} <= set(events)
    # The client of the cut-off request gets no answer of a finished request.
    data = await stalled.reader.read()
    assert not data.startswith(b"HTTP/1.1 2"), data
