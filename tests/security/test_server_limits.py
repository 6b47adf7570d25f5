"""What one slow, big or idle client may cost `gatehouse serve`, and what a request
holds while it waits: a half-sent body or a password check never holds the database
(on SQLite, its one write lock), heads are capped and timed, idle connections closed,
connections bounded. Mostly against real `gatehouse serve` processes (tests/processes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatehouse.app import create_app
from gatehouse.db import migrate
from gatehouse.kit import middleware
from gatehouse.runtime import Runtime
from gatehouse.users.repository import UserRepository
from tests.factories import PASSWORD, Account, Api
from tests.logs import capture_json_logs
from tests.processes import ServerProcess, serve, start, stop
from tests.redis_server import free_port
from tests.scrape import scrape

TOKEN = "/api/v1/auth/token"
DISCONNECTS = "gatehouse_http_client_disconnects_total"
USERS = "/api/v1/users"
RESET_REQUEST = "/api/v1/auth/password-reset/request"
# Generous: a guard against a hanging test, never a measure of speed.
PATIENCE = 60.0
Env = dict[str, str]


def base_env(data_dir: Path, signing_key_pem: str, **settings: str) -> Env:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env |= {
        "GATEHOUSE_ENV": "test",
        "GATEHOUSE_DATA_DIR": str(data_dir),
        "GATEHOUSE_JWT_PRIVATE_KEY": signing_key_pem,
        "GATEHOUSE_BCRYPT_ROUNDS": "4",
        "GATEHOUSE_RATE_LIMIT_ENABLED": "false",
        "GATEHOUSE_LOG_FORMAT": "json",
    }
    return env | {f"GATEHOUSE_{name.upper()}": value for name, value in settings.items()}


async def embedded_env(tmp_path: Path, signing_key_pem: str, **settings: str) -> Env:
    """The embedded default in a data dir of its own, migrated, without any user."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    # Alembic runs its own event loop: not in this one.
    await asyncio.to_thread(migrate.upgrade, f"sqlite+aiosqlite:///{data_dir / 'gatehouse.db'}")
    return base_env(data_dir, signing_key_pem, **settings)


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[list[ServerProcess]]:
    """Started servers, stopped after the test whatever happens."""
    started: list[ServerProcess] = []
    try:
        yield started
    finally:
        for server in started:
            await stop(server)


async def open_raw(server: ServerProcess) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = server.url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (b"" if it just closed)."""
    chunks = []
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), PATIENCE):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One response on a connection that stays open: status and body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PATIENCE)
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
    )
    body = await asyncio.wait_for(reader.readexactly(length), PATIENCE)
    return int(lines[0].split()[1]), body


def status_and_error(raw: bytes) -> tuple[int, str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]["code"]


# --- a half-sent body holds nothing (item 1) ---------------------------------------------


async def test_a_half_sent_body_holds_no_database_and_times_out_with_408(
    api: Api, signing_key_pem: str, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    env = base_env(
        tmp_path / "data",
        signing_key_pem,
        database_url=api.runtime.settings.database_url,
        body_timeout_seconds="3",
    )
    server = await serve(env, tmp_path / "serve.log")
    servers.append(server)
    admin = await api.create_user("admin")
    user = await api.create_user("user")
    reader, writer = await open_raw(server)
    writer.write(
        b"POST /api/v1/auth/token HTTP/1.1\r\nHost: gatehouse\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    await writer.drain()
    await asyncio.sleep(0.5)  # ordering only: the half request is in before the others
    async with httpx.AsyncClient(base_url=server.url, timeout=PATIENCE) as client:
        logins = [
            await client.post(TOKEN, json={"username": a.email, "password": a.password})
            for a in (user, admin)
        ]
        assert [r.status_code for r in logins] == [200, 200], [r.text for r in logins]
        token = logins[1].json()["access_token"]
        created = await client.post(
            USERS,
            json={"email": "new-one@example.com", "name": "New", "password": PASSWORD},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201, created.text
    assert status_and_error(await read_until_closed(reader)) == (408, "REQUEST_TIMEOUT")
    writer.close()


# --- no bcrypt under the write lock (item 1) ---------------------------------------------


class Gate:
    """Holds the first bcrypt verify that starts until released."""

    def __init__(self, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        real = runtime.hasher.verify

        async def verify(password: str, hashed: str | None) -> bool:
            if not self.started.is_set():
                self.started.set()
                await self.release.wait()
            return await real(password, hashed)

        monkeypatch.setattr(runtime.hasher, "verify", verify)


async def _login(api: Api, account: Account) -> httpx.Response:
    return await api.client.post(TOKEN, json={"username": account.email, "password": PASSWORD})


async def _wrong_login(api: Api, account: Account) -> httpx.Response:
    return await api.client.post(TOKEN, json={"username": account.email, "password": "wrong"})


async def _change_password(api: Api, account: Account) -> httpx.Response:
    return await api.client.post(
        f"{USERS}/me/password",
        json={"current_password": PASSWORD, "new_password": "another Long passphrase 42"},
        headers=account.headers,
    )


async def _change_email(api: Api, account: Account) -> httpx.Response:
    return await api.client.patch(
        f"{USERS}/me",
        json={"email": "moved-away@example.com", "current_password": PASSWORD},
        headers=account.headers,
    )


@pytest.mark.parametrize(
    ("slow", "status"),
    [(_login, 200), (_wrong_login, 401), (_change_password, 204), (_change_email, 200)],
    ids=["login", "failed login", "password change", "email change"],
)
async def test_a_write_commits_while_a_password_is_being_checked(
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
    slow: Callable[[Api, Account], Awaitable[httpx.Response]],
    status: int,
) -> None:
    admin = await api.login(await api.create_user("admin"))
    account = await api.login(await api.create_user("user"))
    gate = Gate(api.runtime, monkeypatch)
    checking: asyncio.Task[httpx.Response] = asyncio.ensure_future(slow(api, account))
    await asyncio.wait_for(gate.started.wait(), PATIENCE)
    try:
        created = await api.client.post(
            USERS,
            json={"email": "meanwhile@example.com", "name": "Meanwhile", "password": PASSWORD},
            headers=admin.headers,
        )
        assert created.status_code == 201, created.text
        assert not checking.done()
    finally:
        gate.release.set()
    response = await asyncio.wait_for(checking, PATIENCE)
    assert response.status_code == status, response.text


# SQLite only: there the check runs apart from the login's transaction, which re-reads
# the hash; on PostgreSQL both are one transaction, as before.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_password_changed_during_a_login_check_fails_that_login(
    backend: str, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await api.login(await api.create_user("user"))
    gate = Gate(api.runtime, monkeypatch)
    login = asyncio.create_task(_login(api, account))
    await asyncio.wait_for(gate.started.wait(), PATIENCE)
    try:
        # A reset or an admin would do the same: the hash the login checks is replaced.
        async with api.runtime.db.session() as session:
            await UserRepository(session).set_password_hash(
                account.id, await api.runtime.hasher.hash("a different one entirely")
            )
    finally:
        gate.release.set()
    response = await asyncio.wait_for(login, PATIENCE)
    assert response.status_code == 401, response.text


# --- a client gone during its request (item 3) -------------------------------------------


async def test_a_client_gone_before_its_body_is_read_is_logged_quietly(api: Api) -> None:
    app = create_app(runtime=api.runtime)
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": TOKEN,
        "raw_path": TOKEN.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", b"40"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        # What uvicorn answers once the client has closed its side.
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    before = (await scrape(api.client)).value(DISCONNECTS, during="body")
    with capture_json_logs() as logs:
        await app(scope, receive, send)
    records = logs.records()
    assert sent == []  # nobody to answer; certainly no 500
    assert not [r for r in records if r["level"] in ("error", "critical")], records
    gone = [r for r in records if r["event"] == "http.client_disconnected"]
    assert [r["level"] for r in gone] == ["info"]
    assert (await scrape(api.client)).value(DISCONNECTS, during="body") == before + 1
    [line] = [r for r in records if r["event"] == "http.request"]
    assert line["status"] == middleware.CLIENT_CLOSED


# --- heads, idle connections, connection count (item 2) ----------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_request_heads_are_capped(
    backend: str, signing_key_pem: str, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    env = await embedded_env(
        tmp_path, signing_key_pem, max_header_bytes="8192", max_header_count="20"
    )
    server = await serve(env, tmp_path / "serve.log")
    servers.append(server)
    heads = {
        "one big header (in one read)": b"X-Big: " + b"a" * 20_000 + b"\r\n",
        "one huge header (streamed)": b"X-Big: " + b"a" * 4_000_000 + b"\r\n",
        "too many headers": b"".join(b"X-H%d: 1\r\n" % i for i in range(30)),
    }
    for name, headers in heads.items():
        reader, writer = await open_raw(server)
        writer.write(b"GET /health HTTP/1.1\r\nHost: gatehouse\r\n" + headers + b"\r\n")
        with contextlib.suppress(ConnectionError):  # closed on us mid-send: refused
            await writer.drain()
        answer = await read_until_closed(reader)
        writer.close()
        assert answer == b"" or status_and_error(answer) == (431, "HEADERS_TOO_LARGE"), name
        async with httpx.AsyncClient(base_url=server.url, timeout=PATIENCE) as client:
            assert (await client.get("/health")).status_code == 200, name


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_partial_head_and_an_idle_connection_are_closed(
    backend: str, signing_key_pem: str, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    env = await embedded_env(
        tmp_path, signing_key_pem, header_timeout_seconds="1", keepalive_timeout_seconds="1"
    )
    server = await serve(env, tmp_path / "serve.log")
    servers.append(server)
    # A head that never ends.
    reader, writer = await open_raw(server)
    writer.write(b"GET /health HTTP/1.1\r\nHost: gatehouse\r\nX-Slow: ")
    await writer.drain()
    assert await read_until_closed(reader) == b""
    writer.close()
    # A connection that says nothing at all.
    reader, writer = await open_raw(server)
    assert await read_until_closed(reader) == b""
    writer.close()
    # A kept-alive connection that goes quiet after its answer.
    reader, writer = await open_raw(server)
    writer.write(b"GET /health HTTP/1.1\r\nHost: gatehouse\r\n\r\n")
    await writer.drain()
    status, _ = await read_response(reader)
    assert status == 200
    assert await read_until_closed(reader) == b""
    writer.close()
    # A kept-alive connection whose next head stalls halfway.
    reader, writer = await open_raw(server)
    writer.write(b"GET /health HTTP/1.1\r\nHost: gatehouse\r\n\r\nGET /health HTTP/1.1\r\n")
    await writer.drain()
    status, _ = await read_response(reader)
    assert status == 200
    assert await read_until_closed(reader) == b""
    writer.close()


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_connections_over_the_bound_get_503(
    backend: str, signing_key_pem: str, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    env = await embedded_env(
        tmp_path,
        signing_key_pem,
        max_connections="2",
        header_timeout_seconds="300",
        keepalive_timeout_seconds="300",
    )
    server = await serve(env, tmp_path / "serve.log")
    servers.append(server)
    held = []
    for _ in range(2):
        reader, writer = await open_raw(server)
        writer.write(b"GET /health HTTP/1.1\r\nHost: gatehouse\r\n\r\n")
        await writer.drain()
        assert (await read_response(reader))[0] == 200
        held.append(writer)
    reader, writer = await open_raw(server)
    writer.write(b"GET /health HTTP/1.1\r\nHost: gatehouse\r\n\r\n")
    await writer.drain()
    assert status_and_error(await read_until_closed(reader)) == (503, "SERVICE_UNAVAILABLE")
    writer.close()
    for writer in held:
        writer.close()
        await writer.wait_closed()
    # Once they are gone, a new connection is served again (the server sees the close
    # a moment later: ask until it does, the answer being what is checked).
    async with httpx.AsyncClient(base_url=server.url, timeout=PATIENCE) as client:
        statuses = []
        for _ in range(100):
            statuses.append((await client.get("/health")).status_code)
            if statuses[-1] == 200:
                break
            await asyncio.sleep(0.1)
    assert statuses[-1] == 200, statuses


# --- binding first, and the served address in links (integrators) ------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_taken_port_stops_serve_before_it_announces_or_creates_anything(
    backend: str, signing_key_pem: str, tmp_path: Path
) -> None:
    env = await embedded_env(tmp_path, signing_key_pem)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = await start(env, tmp_path / "serve.log", port=port)
        try:
            code = await asyncio.wait_for(server.proc.wait(), PATIENCE)
        finally:
            await stop(server)
    output = server.output()
    assert code == 1, output
    assert f"cannot listen on 127.0.0.1:{port}" in output
    assert "First admin created" not in output
    assert "serving on" not in output
    with sqlite3.connect(tmp_path / "data" / "gatehouse.db") as db:
        assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_links_in_mails_point_at_the_port_served(
    backend: str, signing_key_pem: str, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    env = await embedded_env(tmp_path, signing_key_pem, admin_password=PASSWORD)
    port = free_port()
    server = await serve(env, tmp_path / "serve.log", port=port)
    servers.append(server)
    assert f"serving on http://127.0.0.1:{port}" in server.output()
    async with httpx.AsyncClient(base_url=server.url, timeout=PATIENCE) as client:
        response = await client.post(RESET_REQUEST, json={"email": "admin@example.com"})
        assert response.status_code == 202, response.text
    mail_dir = tmp_path / "data" / "mail"
    links: list[str] = []
    for _ in range(600):  # until the in-process runner has sent both mails
        texts = [path.read_text() for path in mail_dir.glob("*.eml")]
        links = [line for text in texts for line in text.splitlines() if "?token=" in line]
        if len(links) == 2:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"mails missing ({links}):\n{server.output()}")
    # The first admin's verification and the reset: both on the port served.
    assert sorted(link.split("?")[0] for link in links) == [
        f"http://127.0.0.1:{port}/reset-password",
        f"http://127.0.0.1:{port}/verify-email",
    ]
