"""`/health/ready` with the database alone (the embedded default): what a load balancer
and an operator see, the database going away and coming back, and what the probe never
does (rate limit, audit, leak)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from gatehouse.app import create_app
from gatehouse.audit.models import AuditEvent
from gatehouse.kit.jobs import LeftForSweep
from gatehouse.runtime import Runtime
from tests.conftest import make_settings
from tests.logs import LogCapture
from tests.tcp_proxy import TcpProxy

READY = "/health/ready"


def assert_check(body: dict[str, Any], name: str, status: str, *, required: bool) -> None:
    check = body["checks"][name]
    assert set(check) == {"status", "latency_ms", "required"}, check
    assert check["status"] == status, body
    assert check["required"] is required
    assert isinstance(check["latency_ms"], int | float)
    assert check["latency_ms"] >= 0


@asynccontextmanager
async def serving(
    database_url: str, tmp_path: Path, signing_key_pem: str, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    runtime = Runtime.create(make_settings(database_url, tmp_path, signing_key_pem, **overrides))
    runtime.use_jobs(LeftForSweep())
    transport = httpx.ASGITransport(app=create_app(runtime=runtime), client=("127.0.0.1", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        await runtime.close()


async def test_the_embedded_default_checks_the_database_only(client: httpx.AsyncClient) -> None:
    response = await client.get(READY)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database"}
    assert_check(body, "database", "ok", required=True)
    # A load balancer or proxy must not answer a later probe from a cached one.
    assert response.headers["cache-control"] == "no-store"


async def test_liveness_stays_as_it_was(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert set(response.json()) == {"status", "version"}
    assert response.json()["status"] == "ok"


async def test_a_head_probe_gets_the_status_without_a_body(client: httpx.AsyncClient) -> None:
    response = await client.head(READY)
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.postgres
async def test_postgres_going_away_makes_the_instance_unavailable_until_it_is_back(
    postgres_url: str, tmp_path: Path, signing_key_pem: str, json_logs: LogCapture
) -> None:
    # A password PostgreSQL ignores here (trust) but a log line must never show.
    secret = "readiness-probe-secret-9f2c"
    proxy = TcpProxy.for_url(postgres_url).start()
    url = make_url(proxy.url(postgres_url)).set(password=secret)
    try:
        async with serving(
            url.render_as_string(hide_password=False), tmp_path, signing_key_pem
        ) as client:
            assert (await client.get(READY)).json()["status"] == "ok"

            proxy.block()
            down = await client.get(READY)
            assert down.status_code == 503
            body = down.json()
            assert body["status"] == "unavailable"
            assert_check(body, "database", "unavailable", required=True)
            # No error text in the answer: what failed is in the log, for the operator.
            assert set(body) == {"status", "checks"}
            # A second probe during the same outage adds no second warning.
            assert (await client.get(READY)).status_code == 503

            proxy.resume()
            back = await client.get(READY)
            assert back.status_code == 200
            assert back.json()["status"] == "ok"
    finally:
        proxy.stop()
    events = [r for r in json_logs.records() if r.get("logger") == "gatehouse.health"]
    assert [(e["event"], e["dependency"]) for e in events] == [
        ("health.dependency_unavailable", "database"),
        ("health.dependency_recovered", "database"),
    ]
    assert events[0]["level"] == "warning"
    assert events[0]["required"] is True
    assert events[0]["error"]
    assert secret not in json_logs.text()


async def test_a_sqlite_file_that_cannot_be_opened_is_unavailable(
    tmp_path: Path, signing_key_pem: str
) -> None:
    # A directory where the database file should be: SQLite cannot open it.
    async with serving(f"sqlite+aiosqlite:///{tmp_path}", tmp_path, signing_key_pem) as client:
        response = await client.get(READY)
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert_check(response.json(), "database", "unavailable", required=True)


async def test_probes_are_never_rate_limited_nor_audited(
    database_url: str, tmp_path: Path, signing_key_pem: str, runtime: Runtime
) -> None:
    async def audit_rows() -> int:
        async with runtime.db.session(write=False) as session:
            return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)

    before = await audit_rows()
    async with serving(
        database_url,
        tmp_path,
        signing_key_pem,
        rate_limit_enabled=True,
        rate_limit_anonymous="2/hour",
    ) as client:
        for _ in range(5):
            response = await client.get(READY)
            assert response.status_code == 200
            assert "x-ratelimit-limit" not in response.headers
        # The limit is on: the API itself is counted.
        api = [await client.get("/api/v1/users/me") for _ in range(3)]
        assert api[-1].status_code == 429
    assert await audit_rows() == before


async def test_the_openapi_document_describes_both_answers_without_error_details(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/health/ready"]["get"]
    for status in ("200", "503"):
        content = operation["responses"][status]["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/Readiness"}
        assert content["examples"]
    schemas = document["components"]["schemas"]
    readiness = schemas["Readiness"]
    assert set(readiness["properties"]) == {"status", "checks"}
    assert readiness["properties"]["status"]["enum"] == ["ok", "degraded", "unavailable"]
    check = schemas["DependencyCheck"]
    assert set(check["properties"]) == {"status", "latency_ms", "required"}
    assert check["properties"]["status"]["enum"] == ["ok", "unavailable"]
