"""With GATEHOUSE_SENTRY_DSN set, an unhandled error in a request and a job that fails
reach Sentry (a real HTTP server on loopback playing its ingest), each once, with the
request id and the user's id, and without anything the request carried: its email,
password, token, cookie or Authorization header, in any byte that was sent."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
import sentry_sdk
import structlog

from gatehouse import __version__
from gatehouse.app import create_app
from gatehouse.dependencies import AdminUser, UowDep
from gatehouse.observability import errors
from gatehouse.observability.middleware import SentryRequestMiddleware
from gatehouse.runtime import Runtime
from gatehouse.worker.embedded import InProcessRunner
from tests.factories import Account, Api, assert_envelope
from tests.logs import LogCapture
from tests.observability.support import SentryIngest

log = structlog.get_logger("gatehouse.test")
BOOM = "/api/v1/test-only/boom"
LATER = "/api/v1/test-only/later"
BOOM_JOB = "test_only.boom"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def settings_overrides(sentry_ingest: SentryIngest) -> dict[str, Any]:
    # Transactions too: they carry the request as well, and must be as clean.
    return {"sentry_dsn": sentry_ingest.dsn, "sentry_traces_sample_rate": 1.0}


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, plus two routes of this test's own that fail as a bug would."""
    app = create_app(runtime=runtime)

    async def boom(body: dict[str, str], admin: AdminUser) -> None:
        log.info("test_only.importing", email=body["email"], token=body["token"])
        raise ValueError(f"could not import {body!r}")

    async def later(body: dict[str, str], uow: UowDep, admin: AdminUser) -> dict[str, str]:
        uow.jobs.after_commit(BOOM_JOB, email=body["email"])
        return {}

    for path, endpoint in ((BOOM, boom), (LATER, later)):
        app.router.add_api_route(path, endpoint, methods=["POST"])
        # Ahead of the web apps' catch-all.
        app.router.routes.insert(0, app.router.routes.pop())
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def secrets_of(admin: Account) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {
        "email": f"victim-{tag}@example.com",
        "password": f"Pa55-{tag}-word",
        "token": f"tok-{tag}-secret",
    }


def assert_nothing_of(ingest: SentryIngest, *secrets: str) -> None:
    raw = ingest.raw()
    assert raw
    for secret in secrets:
        assert secret.encode() not in raw, secret


def errors_of(ingest: SentryIngest, **tags: str) -> list[dict[str, Any]]:
    return [
        event
        for event in ingest.events()
        if event.get("exception") and all(event["tags"].get(k) == v for k, v in tags.items())
    ]


async def test_an_unhandled_error_in_a_request_reaches_sentry_once_and_scrubbed(
    api: Api, sentry_ingest: SentryIngest, json_logs: LogCapture
) -> None:
    """(`json_logs`: logging at INFO, as in production, so info lines become breadcrumbs.)"""
    admin = await api.user("admin")
    body = secrets_of(admin)
    cookie = f"cookie-{uuid.uuid4().hex}"

    response = await api.client.post(
        BOOM,
        json=body,
        headers={
            **admin.headers,
            "X-Request-ID": "boom-req-1",
            "Cookie": f"gatehouse_refresh={cookie}",
        },
    )
    # The client still gets the error envelope, with the id to quote.
    assert_envelope(response, 500, "INTERNAL_ERROR")
    sentry_sdk.flush()

    [event] = errors_of(sentry_ingest, request_id="boom-req-1")
    assert event["exception"]["values"][-1]["type"] == "ValueError"
    assert event["user"] == {"id": str(admin.id)}
    assert event["environment"] == "test"
    assert event["release"] == __version__
    assert event["request"]["method"] == "POST"
    assert set(event["request"]) <= {"method", "url", "headers"}
    # What led up to it is there, without the values it logged.
    crumbs = [
        c for c in event["breadcrumbs"]["values"] if c.get("message") == "test_only.importing"
    ]
    assert crumbs
    assert crumbs[0]["data"]["email"] == "[Filtered]"
    assert_nothing_of(
        sentry_ingest,
        *body.values(),
        cookie,
        admin.access_token,
        admin.refresh_token,
        admin.email,
        admin.password,
    )


async def test_a_failing_job_reaches_sentry_with_its_request_and_user(
    api: Api, runtime: Runtime, runner: InProcessRunner, sentry_ingest: SentryIngest
) -> None:
    async def boom(runtime: Runtime, args: Mapping[str, str]) -> None:
        raise RuntimeError(f"the mail to {args['email']} failed (password=hunter2-{args['email']})")

    runner.jobs[BOOM_JOB] = boom
    admin = await api.user("admin")
    body = secrets_of(admin)
    response = await api.client.post(
        LATER, json=body, headers={**admin.headers, "X-Request-ID": "later-req-1"}
    )
    assert response.status_code == 200, response.text
    await runner.drain()
    sentry_sdk.flush()

    [event] = errors_of(sentry_ingest, job=BOOM_JOB)
    assert event["tags"]["request_id"] == "later-req-1"
    assert event["user"] == {"id": str(admin.id)}
    assert event["logentry"]["message"] == "worker.job_failed"
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert_nothing_of(sentry_ingest, *body.values(), "hunter2", admin.access_token)


def test_sentry_is_on_only_with_a_dsn(runtime: Runtime) -> None:
    app = create_app(runtime=runtime)
    assert errors.enabled()
    assert sentry_sdk.get_client().is_active()
    middleware: list[object] = [m.cls for m in app.user_middleware]
    assert SentryRequestMiddleware in middleware
    errors.shutdown()
    assert not sentry_sdk.get_client().is_active()
