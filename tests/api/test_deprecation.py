"""Deprecated routes: the headers on every answer, the OpenAPI markings, the metric, and
docs/api-versioning.md's table held to what the app serves.

No route of Gatehouse is deprecated today, so the helper is tried on a route that exists
only in the app these tests build.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel

from gatehouse.app import create_app
from gatehouse.errors import NotFound
from gatehouse.kit.deprecation import (
    EXTENSION,
    DeprecatedRoute,
    Deprecation,
    deprecated,
    deprecated_routes,
    months_after,
)
from gatehouse.kit.openapi import errors
from gatehouse.runtime import Runtime
from tests.factories import assert_envelope

ROOT = Path(__file__).resolve().parents[2]
POLICY_DOC = ROOT / "docs" / "api-versioning.md"
SINCE = date(2026, 12, 6)
SUNSET = date(2027, 6, 6)
LINK = "https://gatehouse.example/docs/api-versioning.md#deprecated-routes"
PREFIX = "/api/v1/test-legacy"
TEMPLATE = f"{PREFIX}/{{item_id}}"


class Item(BaseModel):
    id: int


def legacy_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["test"])

    # Literal before the parameter, as Gatehouse's routers declare them: its answers
    # must not be taken for the deprecated route's.
    @router.get("/current", response_model=Item)
    async def current() -> Item:
        return Item(id=0)

    @router.get(
        "/{item_id}",
        response_model=Item,
        responses=errors(404),
        **deprecated(since=SINCE, sunset=SUNSET, link=LINK),
    )
    async def legacy_item(item_id: int) -> Item:
        """An old way to read an item."""
        if item_id == 404:
            raise NotFound("No such item")
        if item_id == 500:
            raise RuntimeError("a bug in a deprecated route")
        return Item(id=item_id)

    return router


def app_with_legacy_route(runtime: Runtime) -> FastAPI:
    app = create_app(runtime=runtime)
    app.include_router(legacy_router())
    return app


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Parametrize (indirectly) to change settings for a test."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
async def legacy(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_with_legacy_route(runtime), client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def assert_deprecation_headers(response: httpx.Response) -> None:
    headers = response.headers
    # RFC 9745: an RFC 9651 Date, "@" and integer Unix seconds.
    assert re.fullmatch(r"@-?\d+", headers["deprecation"]), headers["deprecation"]
    since = datetime.fromtimestamp(int(headers["deprecation"][1:]), UTC)
    assert since == datetime(2026, 12, 6, tzinfo=UTC)
    # RFC 8594: an HTTP-date (IMF-fixdate).
    assert headers["sunset"] == "Sun, 06 Jun 2027 00:00:00 GMT"
    assert parsedate_to_datetime(headers["sunset"]) == datetime(2027, 6, 6, tzinfo=UTC)
    links = [part.strip() for part in headers["link"].split(",")]
    assert f'<{LINK}>; rel="deprecation"; type="text/html"' in links
    assert f'<{LINK}>; rel="sunset"; type="text/html"' in links


def assert_no_deprecation_headers(response: httpx.Response) -> None:
    assert not {"deprecation", "sunset", "link"} & set(response.headers), response.headers


async def deprecated_calls(client: httpx.AsyncClient, route: str, method: str) -> float:
    """The counter as a scraper reads it from `GET /metrics` (loopback)."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        if family.name == "gatehouse_deprecated_calls":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels == {
                    "route": route,
                    "method": method,
                }:
                    return float(sample.value)
    return 0.0


async def test_every_answer_of_a_deprecated_route_carries_the_headers(
    legacy: httpx.AsyncClient,
) -> None:
    ok = await legacy.get(f"{PREFIX}/7")
    assert ok.status_code == 200
    assert ok.json() == {"id": 7}
    assert_deprecation_headers(ok)

    missing = await legacy.get(f"{PREFIX}/404")
    assert_envelope(missing, 404, "NOT_FOUND")
    assert_deprecation_headers(missing)

    invalid = await legacy.get(f"{PREFIX}/not-a-number")
    assert_envelope(invalid, 400, "VALIDATION_ERROR")
    assert_deprecation_headers(invalid)

    bug = await legacy.get(f"{PREFIX}/500")
    assert_envelope(bug, 500, "INTERNAL_ERROR")
    assert_deprecation_headers(bug)

    head = await legacy.head(f"{PREFIX}/7")
    assert head.status_code == 200
    assert_deprecation_headers(head)


async def test_other_routes_carry_no_deprecation_headers(legacy: httpx.AsyncClient) -> None:
    for path in (f"{PREFIX}/current", "/health", "/api/v1/users/me", "/.well-known/jwks.json"):
        assert_no_deprecation_headers(await legacy.get(path))
    # Another method on the deprecated path is not the deprecated route.
    assert_no_deprecation_headers(await legacy.delete(f"{PREFIX}/7"))


@pytest.mark.parametrize(
    "settings_overrides",
    [{"rate_limit_enabled": True, "rate_limit_anonymous": "2/hour"}],
    indirect=True,
)
async def test_answers_sent_before_routing_carry_them_too(legacy: httpx.AsyncClient) -> None:
    for _ in range(2):
        assert (await legacy.get(f"{PREFIX}/7")).status_code == 200
    limited = await legacy.get(f"{PREFIX}/7")
    assert_envelope(limited, 429, "RATE_LIMITED")
    assert_deprecation_headers(limited)
    # The literal neighbour's 429 is its own, not the deprecated route's.
    assert_no_deprecation_headers(await legacy.get(f"{PREFIX}/current"))


@pytest.mark.parametrize(
    "settings_overrides", [{"cors_origins": ["https://app.example"]}], indirect=True
)
async def test_browser_apps_on_another_origin_may_read_them(legacy: httpx.AsyncClient) -> None:
    response = await legacy.get(f"{PREFIX}/7", headers={"Origin": "https://app.example"})
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"deprecation", "sunset", "link"} <= exposed
    assert_deprecation_headers(response)


async def test_each_call_is_counted_by_route_template_and_method(
    legacy: httpx.AsyncClient,
) -> None:
    before = await deprecated_calls(legacy, TEMPLATE, "GET")
    for item in ("1", "2", "404", "not-a-number"):
        await legacy.get(f"{PREFIX}/{item}")
    await legacy.get(f"{PREFIX}/current")
    assert await deprecated_calls(legacy, TEMPLATE, "GET") == before + 4


async def test_the_openapi_document_marks_the_operation(runtime: Runtime) -> None:
    document = app_with_legacy_route(runtime).openapi()
    operation = document["paths"][TEMPLATE]["get"]
    assert operation["deprecated"] is True
    assert operation[EXTENSION] == {
        "deprecated": "2026-12-06",
        "sunset": "2027-06-06",
        "link": LINK,
    }
    assert "Deprecated" in operation["description"]
    assert LINK in operation["description"]
    for status in ("200", "404"):
        assert {"Deprecation", "Sunset", "Link"} <= set(operation["responses"][status]["headers"])
    neighbour = document["paths"][f"{PREFIX}/current"]["get"]
    assert "deprecated" not in neighbour
    assert "Sunset" not in neighbour["responses"]["200"]["headers"]


def test_the_policy_is_enforced_where_a_route_is_declared() -> None:
    with pytest.raises(ValueError, match="less than 6 months"):
        deprecated(since=SINCE, sunset=date(2027, 6, 5), link=LINK)
    with pytest.raises(ValueError, match="absolute http"):
        deprecated(since=SINCE, sunset=SUNSET, link="/docs/api-versioning.md")
    # Six calendar months, the end of a month included.
    assert months_after(date(2026, 8, 31), 6) == date(2027, 2, 28)
    assert months_after(date(2027, 8, 31), 6) == date(2028, 2, 29)
    deprecated(since=date(2026, 8, 31), sunset=date(2027, 2, 28), link=LINK)


# --- docs/api-versioning.md ------------------------------------------------------------


def documented_routes() -> set[tuple[str, str, date, date]]:
    """The rows of the doc's "Deprecated routes" table: (method, path, deprecated, sunset)."""
    text = POLICY_DOC.read_text(encoding="utf-8")
    section = text.split("\n## Deprecated routes\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    assert rows[0].replace(" ", "") == "|method|path|deprecated|sunset|useinstead|", rows[0]
    found = set()
    for row in rows[2:]:
        cells = [cell.strip().strip("`") for cell in row.strip("|").split("|")]
        method, path, since, sunset = cells[:4]
        found.add((method, path, date.fromisoformat(since), date.fromisoformat(sunset)))
    return found


def served_routes(routes: list[DeprecatedRoute]) -> set[tuple[str, str, date, date]]:
    by_hand = [f"{r.method} {r.path}" for r in routes if r.notice is None]
    assert by_hand == [], f"deprecated without kit.deprecation.deprecated(): {by_hand}"
    return {
        (r.method, r.path, r.notice.since, r.notice.sunset) for r in routes if r.notice is not None
    }


def test_the_doc_lists_exactly_the_routes_the_app_serves_as_deprecated(
    runtime: Runtime,
) -> None:
    served = served_routes(deprecated_routes(create_app(runtime=runtime)))
    documented = documented_routes()
    assert served - documented == set(), "deprecated routes missing from the doc's table"
    assert documented - served == set(), "the doc's table lists routes not deprecated"
    if not served:
        assert "No route is deprecated today." in POLICY_DOC.read_text(encoding="utf-8")


def test_the_check_would_catch_a_route_missing_from_the_doc(runtime: Runtime) -> None:
    served = served_routes(deprecated_routes(app_with_legacy_route(runtime)))
    assert served - documented_routes() == {("GET", TEMPLATE, SINCE, SUNSET)}


def test_a_route_marked_deprecated_by_hand_is_refused(runtime: Runtime) -> None:
    app = create_app(runtime=runtime)
    router = APIRouter()

    @router.get("/api/v1/test-by-hand", deprecated=True)
    async def by_hand() -> dict[str, Any]:
        return {}

    app.include_router(router)
    routes = deprecated_routes(app)
    assert routes == [DeprecatedRoute("GET", "/api/v1/test-by-hand", None)]
    with pytest.raises(AssertionError, match=r"without kit\.deprecation\.deprecated"):
        served_routes(routes)


def test_a_notice_reads_back_from_the_document() -> None:
    notice = Deprecation(SINCE, SUNSET, LINK)
    assert Deprecation.from_document(notice.document()) == notice
