"""Data protection and the HTTP contract (cases DP-01 to DP-04).

DP-05 (production start-up refusals) is in tests/test_config.py, DP-08 (the Schemathesis
run) in tests/api/test_schemathesis.py. DP-06 (backup drill) belongs to operations and
DP-07 (deprecation headers) waits for a deprecated route.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import time_machine
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from gatehouse.app import create_app
from gatehouse.cli import main as cli
from gatehouse.config import get_settings
from gatehouse.db import migrate
from gatehouse.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import Api, assert_envelope
from tests.logs import LogCapture

T = TypeVar("T")
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
# What an error body must never show: traces, SQL, paths, library and exception names.
INTERNALS = re.compile(
    r"traceback|File \"|\.py\b|/work/|site-packages|sqlalchemy|asyncpg|aiosqlite|sqlite3|"
    r"psycopg|starlette|fastapi|pydantic|uvicorn|SELECT |INSERT |UPDATE |FROM users|"
    r"OperationalError|ConnectionRefused|ZeroDivision|division by zero|Errno",
    re.IGNORECASE,
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def in_thread(work: Callable[..., T], *args: Any) -> T:
    """Code that runs its own event loop (Alembic, the CLI), away from pytest's."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(work, *args).result()


def client_for(app: FastAPI, base_url: str = "http://testserver") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


# --- DP-01: nothing authenticated is cacheable ------------------------------------------


async def test_token_and_every_authenticated_response_is_no_store(api: Api) -> None:
    admin = await api.user("admin")
    user = await api.user("user")
    responses = [
        await api.client.post(
            "/api/v1/auth/token", json={"username": user.email, "password": user.password}
        ),
        await api.client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": user.email, "password": user.password},
        ),
        await api.client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}),
        await api.client.post(
            "/api/v1/auth/token", json={"username": "x@example.com", "password": "nope-nope"}
        ),
    ]
    for who in (admin, user):
        for path in ("/api/v1/users/me", "/api/v1/users/me/sessions", "/api/v1/users"):
            responses.append(await api.client.get(path, headers=who.headers))
        responses.append(await api.client.get(f"/api/v1/users/{admin.id}", headers=who.headers))
    responses.append(await api.client.get("/api/v1/users/me"))  # 401
    responses.append(await api.client.post("/api/v1/auth/logout", headers=user.headers))
    statuses = {r.status_code for r in responses}
    assert {200, 204, 401, 403, 404} <= statuses, statuses
    no_store = [r for r in responses if "no-store" in r.headers.get("cache-control", "")]
    assert len(no_store) == len(responses) == 14
    token = responses[0]
    assert token.headers["pragma"] == "no-cache"
    assert token.json()["expires_in"] <= 900


# --- DP-02: errors say nothing about the inside ------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=["postgres", "sqlite"])
async def dead_database_app(
    request: pytest.FixtureRequest, tmp_path: Path, signing_key_pem: str
) -> AsyncIterator[FastAPI]:
    """The app over a database that cannot be reached (PostgreSQL) or opened (SQLite)."""
    if request.param == "postgres":
        url = f"postgresql+asyncpg://gatehouse:pw@127.0.0.1:{closed_port()}/gatehouse"
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}"  # a directory: SQLite cannot open it
    runtime = Runtime.create(make_settings(url, tmp_path, signing_key_pem))
    try:
        yield create_app(runtime=runtime)
    finally:
        await runtime.close()


async def test_database_down_is_a_bare_503(
    dead_database_app: FastAPI, json_logs: LogCapture
) -> None:
    async with client_for(dead_database_app) as client:
        login = await client.post(
            "/api/v1/auth/token", json={"username": "a@example.com", "password": "long-enough-1"}
        )
        register = await client.post(
            "/api/v1/auth/register",
            json={"email": "b@example.com", "name": "B", "password": "Long-enough-pass-2"},
        )
        ready = await client.get("/health/ready")
    for response in (login, register):
        error = assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
        assert int(response.headers["retry-after"]) > 0
        assert not INTERNALS.search(response.text), response.text
        assert error["request_id"] in json_logs.text()
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["checks"]["database"]["status"] == "unavailable"
    assert not INTERNALS.search(ready.text), ready.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "a@example.com", "password": ',
        b"\xff\xfe{not json",
        b'{"username": "a@example.com", "password": "x", "password": ' + b"[" * 5000,
        b'{"username": ' + b"9" * 5000 + b', "password": "x"}',
    ],
    ids=["truncated", "not utf-8", "deeply nested", "5000-digit integer"],
)
async def test_malformed_bodies_are_a_plain_400(api: Api, body: bytes) -> None:
    admin = await api.user("admin")
    for path, headers in (("/api/v1/auth/token", {}), ("/api/v1/users", admin.headers)):
        response = await api.client.post(
            path, content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert_envelope(response, 400, "VALIDATION_ERROR")
        assert not INTERNALS.search(response.text), response.text


@pytest.mark.parametrize(
    "params",
    [{"page": 10**30}, {"page_size": -(10**30)}, {"page": "1e999"}, {"page": 2**63}],
)
async def test_huge_integers_in_the_query_are_a_plain_400(api: Api, params: dict[str, Any]) -> None:
    admin = await api.user("admin")
    response = await api.client.get("/api/v1/users", params=params, headers=admin.headers)
    assert_envelope(response, 400, "VALIDATION_ERROR")
    assert not INTERNALS.search(response.text)


async def test_huge_version_in_if_match_is_a_conflict_not_a_crash(api: Api) -> None:
    admin = await api.user("admin")
    user = await api.create_user("user")
    response = await api.client.patch(
        f"/api/v1/users/{user.id}",
        json={"name": "New Name"},
        headers={**admin.headers, "If-Match": '"' + "9" * 400 + '"'},
    )
    assert_envelope(response, 409, "VERSION_CONFLICT")


async def test_a_crash_inside_a_route_is_a_500_traceable_by_request_id(
    api: Api, json_logs: LogCapture
) -> None:
    app = create_app(runtime=api.runtime)

    async def boom() -> None:
        1 / 0  # noqa: B018

    app.add_api_route("/api/v1/boom", boom, methods=["GET"])
    async with client_for(app) as client:
        response = await client.get("/api/v1/boom")
    error = assert_envelope(response, 500, "INTERNAL_ERROR")
    assert error["request_id"] in error["message"]
    assert not INTERNALS.search(response.text), response.text
    assert response.headers["cache-control"] == "no-store"
    lines = [json.loads(line) for line in json_logs.text().splitlines()]
    mine = [line for line in lines if line.get("request_id") == error["request_id"]]
    events = {line["event"]: line for line in mine}
    assert "ZeroDivisionError" in events["http.unhandled_error"]["exception"]
    assert events["http.request"]["status"] == 500


async def test_a_crash_quoting_what_was_sent_logs_none_of_it(
    api: Api, json_logs: LogCapture
) -> None:
    """A bug's exception may repeat the body it was handed: the log line keeps the
    traceback and drops the email, password and token in it."""
    app = create_app(runtime=api.runtime)
    secret_token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"

    async def boom() -> None:
        body = {"email": "jane.doe@example.com", "password": "Correct-Horse-9"}
        raise RuntimeError(f"could not handle {body!r} with bearer {secret_token}")

    app.add_api_route("/api/v1/boom", boom, methods=["GET"])
    async with client_for(app) as client:
        response = await client.get("/api/v1/boom")
    assert_envelope(response, 500, "INTERNAL_ERROR")
    [line] = [r for r in json_logs.records() if r["event"] == "http.unhandled_error"]
    assert "RuntimeError: could not handle" in line["exception"]
    for leaked in ("jane.doe@example.com", "Correct-Horse-9", secret_token):
        assert leaked not in json_logs.text()


# --- DP-03: the envelope on every non-2xx ------------------------------------------------


async def test_every_error_status_carries_the_same_envelope(api: Api) -> None:
    admin = await api.user("admin")
    user = await api.user("user")
    other = await api.create_user("user")
    calls: list[tuple[str, str, dict[str, Any], int]] = [
        ("POST", "/api/v1/users", {"json": {"email": "nope"}, "headers": admin.headers}, 400),
        ("GET", "/api/v1/users", {}, 401),
        ("GET", "/api/v1/users", {"headers": user.headers}, 403),
        ("GET", f"/api/v1/users/{other.id}", {"headers": user.headers}, 404),
        ("PATCH", "/api/v1/users", {"headers": admin.headers}, 405),
        (
            "PATCH",
            f"/api/v1/users/{other.id}",
            {"json": {"name": "X"}, "headers": {**admin.headers, "If-Match": '"7"'}},
            409,
        ),
        ("POST", "/api/v1/auth/register", {"content": b"x" * (2 * 1024 * 1024)}, 413),
        (
            "POST",
            "/api/v1/auth/register",
            {"content": b"a=b", "headers": {"Content-Type": "text/plain"}},
            415,
        ),
    ]
    for method, path, kwargs, status in calls:
        response = await api.client.request(method, path, **kwargs)
        error = assert_envelope(response, status)
        assert RFC3339_UTC.match(error["timestamp"]), error["timestamp"]
        assert response.headers["content-type"] == "application/json"
        assert error["message"]


async def test_error_timestamp_is_the_utc_time_of_the_error(api: Api) -> None:
    with time_machine.travel(datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC), tick=False):
        response = await api.client.get("/api/v1/nothing")
    assert assert_envelope(response, 404)["timestamp"] == "2031-02-03T04:05:06Z"


# --- DP-04: headers -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/api/v1/users", "/nowhere", "/docs", "/openapi.json"])
async def test_security_headers_on_every_kind_of_response(api: Api, path: str) -> None:
    response = await api.client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "server" not in response.headers
    assert "x-powered-by" not in response.headers
    assert "strict-transport-security" not in response.headers  # plain http
    if path != "/docs":
        assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_content_types_are_exact(api: Api) -> None:
    # JSON has no charset parameter (RFC 8259 §11: it is always UTF-8); text has one.
    for path in ("/health", "/api/v1/users", "/openapi.json"):
        assert (await api.client.get(path)).headers["content-type"] == "application/json"
    for path in ("/docs", "/redoc"):
        assert (await api.client.get(path)).headers["content-type"] == "text/html; charset=utf-8"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"trusted_proxies": ["10.0.0.0/8"]}


@pytest.mark.parametrize(
    ("peer", "headers", "base_url", "hsts"),
    [
        ("127.0.0.1", {}, "https://testserver", True),
        ("127.0.0.1", {}, "http://testserver", False),
        ("127.0.0.1", {"X-Forwarded-Proto": "https"}, "http://testserver", False),
        (
            "127.0.0.1",
            {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
            "http://testserver",
            False,
        ),
        (
            "10.1.2.3",
            {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
            "http://testserver",
            True,
        ),
        ("10.1.2.3", {"X-Forwarded-Proto": "https"}, "http://testserver", True),
        (
            "10.1.2.3",
            {"X-Forwarded-Proto": "http", "X-Forwarded-For": "203.0.113.9"},
            "http://testserver",
            False,
        ),
    ],
    ids=[
        "tls here",
        "plain http",
        "untrusted peer claims https",
        "untrusted peer claims https and a client",
        "trusted proxy ended tls",
        "trusted proxy ended tls, no client header",
        "trusted proxy says http",
    ],
)
async def test_hsts_only_when_tls_ended_here_or_at_a_trusted_proxy(
    api: Api, peer: str, headers: dict[str, str], base_url: str, hsts: bool
) -> None:
    app = create_app(runtime=api.runtime)
    transport = httpx.ASGITransport(app=app, client=(peer, 50000))
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        response = await client.get("/health", headers=headers)
    assert ("strict-transport-security" in response.headers) is hsts
    if hsts:
        assert response.headers["strict-transport-security"].startswith("max-age=31536000")


def test_the_served_app_sends_no_version_banner(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, signing_key_pem: str
) -> None:
    """`gatehouse serve` runs uvicorn without its `Server: uvicorn` header."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    in_thread(migrate.upgrade, url)
    for name in list(os.environ):
        if name.startswith("GATEHOUSE_"):
            monkeypatch.delenv(name)
    for name, value in {
        "GATEHOUSE_ENV": "test",
        "GATEHOUSE_DATA_DIR": str(tmp_path),
        "GATEHOUSE_DATABASE_URL": url,
        "GATEHOUSE_JWT_PRIVATE_KEY": signing_key_pem,
        "GATEHOUSE_BCRYPT_ROUNDS": "4",
        "GATEHOUSE_PORT": str(free_port()),
    }.items():
        monkeypatch.setenv(name, value)
    started: dict[str, Any] = {}

    def run(server: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
        # `serve` binds first, then hands the socket to uvicorn: look at what it was given.
        started.update(vars(server.config))
        server.started = True
        for sock in sockets or []:
            sock.close()

    monkeypatch.setattr(uvicorn.Server, "run", run)
    # The process-wide logging set-up would outlive this test.
    monkeypatch.setattr(cli, "configure_logging", lambda *_: None)
    get_settings.cache_clear()
    try:
        result = in_thread(CliRunner().invoke, cli.app, ["serve"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert started["server_header"] is False
    # X-Forwarded-* count only from GATEHOUSE_TRUSTED_PROXIES, in our own middleware.
    assert started["proxy_headers"] is False
