"""`GET /metrics`: the Prometheus text format, who may read it, and what it never does
(appear in the OpenAPI document, count against a rate limit, write an audit row)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from gatehouse import __version__
from gatehouse.app import create_app
from gatehouse.audit.models import AuditEvent
from gatehouse.kit import metrics
from gatehouse.runtime import Runtime
from tests.conftest import app_for, make_settings
from tests.factories import Api, assert_envelope
from tests.scrape import Scrape, scrape

TOKEN = "a-metrics-token-of-32-characters"


async def audit_count(runtime: Runtime) -> int:
    async with runtime.db.session(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def client_from(runtime: Runtime, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app_for(runtime), client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_the_answer_is_the_prometheus_text_format_with_every_family(api: Api) -> None:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    parsed = Scrape.parse(response.text)  # the parser Prometheus' own client library uses
    families = {sample.name for sample in parsed.samples}
    assert "gatehouse_http_requests_in_flight" in families
    # Every family is announced (HELP and TYPE), with samples or not yet.
    for family in metrics.REGISTRY.collect():
        assert parsed.families.get(family.name) == family.type, family.name
    # This scrape is in flight while it is answered.
    assert parsed.value("gatehouse_http_requests_in_flight") >= 1


async def test_the_route_label_is_the_template_never_an_id(api: Api) -> None:
    user_id = str(uuid.uuid4())
    before = await scrape(api.client)
    for _ in range(3):
        assert (await api.client.get(f"/api/v1/users/{user_id}")).status_code == 401
    assert (await api.client.get(f"/no/such/page/{user_id}.json")).status_code == 404
    after = await scrape(api.client)
    name = "gatehouse_http_requests_total"
    labels = {"route": "/api/v1/users/{user_id}", "method": "GET", "status_class": "4xx"}
    assert after.value(name, **labels) - before.value(name, **labels) == 3
    duration = "gatehouse_http_request_duration_seconds_count"
    timed = {"route": "/api/v1/users/{user_id}", "method": "GET"}
    assert after.value(duration, **timed) - before.value(duration, **timed) == 3
    # A path no route matched is counted under one label, whatever it was.
    assert after.value(name, route="unmatched") > before.value(name, route="unmatched")
    assert user_id not in after.text
    assert "/no/such/page" not in after.text


async def test_a_client_elsewhere_is_refused(api: Api) -> None:
    async with client_from(api.runtime, "198.51.100.7") as outsider:
        response = await outsider.get("/metrics")
    body = assert_envelope(response, 403, "FORBIDDEN")
    assert "GATEHOUSE_METRICS_ACCESS" in body["message"]
    assert "gatehouse_" not in response.text


@pytest.mark.parametrize(
    "settings_overrides", [{"trusted_proxies": ["127.0.0.1/32"]}], indirect=True
)
async def test_a_local_proxy_forwarding_for_someone_elsewhere_is_refused(api: Api) -> None:
    # The peer is loopback, but it is a trusted proxy speaking for an outside client.
    forwarded = await api.client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert_envelope(forwarded, 403, "FORBIDDEN")
    # Whatever it claims: a local scraper talks to Gatehouse directly.
    local = await api.client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
    assert_envelope(local, 403, "FORBIDDEN")


async def test_a_gateway_on_this_host_not_declared_a_proxy_does_not_expose_metrics(
    api: Api,
) -> None:
    """A gateway on the same host that forwards every path, but that Gatehouse was not
    told to trust: its peer address is loopback, yet the request is someone else's."""
    for header in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}):
        response = await api.client.get("/metrics", headers=header)
        assert_envelope(response, 403, "FORBIDDEN")
        assert "gatehouse_" not in response.text
    assert (await api.client.get("/metrics")).status_code == 200


@pytest.mark.parametrize(
    "settings_overrides", [{"metrics_access": "token", "metrics_token": TOKEN}], indirect=True
)
async def test_token_mode_wants_the_token_from_anywhere(api: Api) -> None:
    async with client_from(api.runtime, "198.51.100.7") as outsider:
        right = await outsider.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        wrong = await outsider.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
        missing = await outsider.get("/metrics")
        basic = await outsider.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
    assert right.status_code == 200
    Scrape.parse(right.text)
    for refused in (wrong, missing, basic):
        assert_envelope(refused, 401, "UNAUTHORIZED")
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    # Loopback is no substitute for the token in this mode.
    assert_envelope(await api.client.get("/metrics"), 401, "UNAUTHORIZED")


@pytest.fixture
async def token_file_client(
    database_url: str,
    tmp_path: Path,
    signing_key_pem: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[httpx.AsyncClient]:
    secret = tmp_path / "metrics-token"
    secret.write_text(TOKEN + "\n")
    monkeypatch.setenv("GATEHOUSE_METRICS_TOKEN_FILE", str(secret))
    settings = make_settings(database_url, tmp_path, signing_key_pem, metrics_access="token")
    runtime = Runtime.create(settings)
    try:
        async with client_from(runtime, "198.51.100.7") as client:
            yield client
    finally:
        await runtime.close()


async def test_the_token_can_come_from_a_file(token_file_client: httpx.AsyncClient) -> None:
    right = await token_file_client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200
    wrong = await token_file_client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert_envelope(wrong, 401, "UNAUTHORIZED")


@pytest.mark.parametrize("settings_overrides", [{"metrics_access": "off"}], indirect=True)
async def test_switched_off_it_is_not_there(api: Api) -> None:
    assert_envelope(await api.client.get("/metrics"), 404, "NOT_FOUND")


async def test_it_is_not_in_the_openapi_document(api: Api) -> None:
    document = (await api.client.get("/api/v1/openapi.json")).json()
    assert not [path for path in document["paths"] if "metrics" in path]


@pytest.mark.parametrize(
    "settings_overrides",
    [{"rate_limit_enabled": True, "rate_limit_anonymous": "3/minute"}],
    indirect=True,
)
async def test_it_is_never_rate_limited(api: Api) -> None:
    answers = [await api.client.get("/metrics") for _ in range(30)]
    assert {r.status_code for r in answers} == {200}
    assert all("X-RateLimit-Limit" not in r.headers for r in answers)
    # The limits are on: the API itself refuses the same client by now.
    api_answers = [(await api.client.get("/api/v1/users")).status_code for _ in range(4)]
    assert api_answers[-1] == 429


@pytest.mark.parametrize(
    "settings_overrides", [{"metrics_access": "token", "metrics_token": TOKEN}], indirect=True
)
async def test_scrapes_and_refused_scrapes_write_no_audit_row(api: Api) -> None:
    before = await audit_count(api.runtime)
    for _ in range(3):
        ok = await api.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        assert (await api.client.get("/metrics")).status_code == 401
    assert await audit_count(api.runtime) == before


async def test_a_refused_loopback_scrape_writes_no_audit_row(api: Api) -> None:
    before = await audit_count(api.runtime)
    async with client_from(api.runtime, "198.51.100.7") as outsider:
        assert (await outsider.get("/metrics")).status_code == 403
    assert (await api.client.get("/metrics")).status_code == 200
    assert await audit_count(api.runtime) == before


async def test_build_info_names_this_gatehouse_once_the_app_has_started(
    runtime: Runtime,
) -> None:
    app = create_app(runtime=runtime)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            found = await scrape(c)
    database = "sqlite" if runtime.settings.is_sqlite else "postgresql"
    assert found.value("gatehouse_build_info", version=__version__, database=database) == 1
