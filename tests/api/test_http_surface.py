"""The HTTP surface outside the operations themselves: HEAD answers wherever GET does,
a refused CORS preflight and an oversized validation error keep the envelope."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from gatehouse.errors import MAX_DETAIL_FIELDS
from tests.factories import Api, assert_envelope

# Nothing here depends on the database behind the API: SQLite only.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

ALLOWED_ORIGIN = "https://app.example.com"
# Differ between two calls by nature.
VOLATILE = {"date", "x-request-id", "etag", "content-length", "x-ratelimit-remaining"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"cors_origins": [ALLOWED_ORIGIN], "docs_enabled": True}


async def test_head_answers_every_get_like_get_without_a_body(api: Api) -> None:
    admin = await api.user("admin")
    hook = await api.client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/x", "event_types": ["*"]},
        headers=admin.headers,
    )
    assert hook.status_code == 201, hook.text
    client = await api.client.post(
        "/api/v1/clients",
        json={
            "name": "Reports",
            "type": "public",
            "redirect_uris": ["https://reports.example.com/callback"],
            "scopes": ["openid"],
            "grant_types": ["authorization_code"],
            "trusted": False,
        },
        headers=admin.headers,
    )
    assert client.status_code == 201, client.text
    ids = {
        "{user_id}": str(admin.id),
        "{webhook_id}": hook.json()["id"],
        "{id}": client.json()["id"],
    }
    # Operations that read their query: a valid one (the consent screen's authorize request).
    queries = {
        "/api/v1/oauth2/consent": urlencode(
            {
                "response_type": "code",
                "client_id": client.json()["client_id"],
                "redirect_uri": "https://reports.example.com/callback",
                "scope": "openid",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGEdVmHIvU",
                "code_challenge_method": "S256",
            }
        )
    }
    document = (await api.client.get("/openapi.json")).json()
    paths = [path for path, item in document["paths"].items() if "get" in item]
    paths += ["/openapi.json", "/api/v1/openapi.json", "/docs", "/redoc", "/"]
    assert "/.well-known/jwks.json" in paths
    assert "/health" in paths
    checked = 0
    for template in paths:
        path = template
        for name, value in ids.items():
            path = path.replace(name, value)
        if template in queries:
            path = f"{path}?{queries[template]}"
        got = await api.client.get(path, headers=admin.headers)
        head = await api.client.head(path, headers=admin.headers)
        assert head.status_code == got.status_code, (path, head.status_code, got.status_code)
        assert got.status_code < 300, (path, got.text)
        assert head.content == b"", path
        assert {k for k in head.headers if k not in VOLATILE} == {
            k for k in got.headers if k not in VOLATILE
        }, path
        assert head.headers["content-type"] == got.headers["content-type"], path
        checked += 1
    assert checked >= 18


@pytest.mark.parametrize(
    "path", ["/health", "/.well-known/jwks.json", "/.well-known/openid-configuration"]
)
async def test_head_on_public_reads_has_gets_length(api: Api, path: str) -> None:
    got = await api.client.get(path)
    head = await api.client.head(path)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"]
    assert head.headers.get("cache-control") == got.headers.get("cache-control")


async def test_a_wrong_method_names_head_among_the_allowed(api: Api) -> None:
    response = await api.client.put("/health")
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "GET, HEAD"


async def test_a_refused_cors_preflight_is_the_envelope(api: Api) -> None:
    response = await api.client.options(
        "/api/v1/users",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert "origin" in error["message"].lower()
    assert "access-control-allow-origin" not in response.headers
    allowed = await api.client.options(
        "/api/v1/users",
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


async def test_validation_details_name_at_most_a_few_fields(api: Api) -> None:
    body = {f"unknown_{i}": 1 for i in range(5000)}
    response = await api.client.post("/api/v1/auth/register", json=body)
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert len(error["details"]) == MAX_DETAIL_FIELDS
    assert len(response.content) < 4096
    # The three required fields and 5000 unknown ones: the rest are counted, not named.
    assert str(5003 - MAX_DETAIL_FIELDS) in error["message"]


async def test_a_few_invalid_fields_are_all_named(api: Api) -> None:
    response = await api.client.post("/api/v1/auth/register", json={"extra": 1})
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert set(error["details"]) == {"email", "name", "password", "extra"}
    assert error["message"] == "Invalid input"
