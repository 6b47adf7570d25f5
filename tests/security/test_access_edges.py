"""AC-09 (401 vs 403), AC-10 (fail closed), AC-12 (spoofed client headers),
AC-13 (undocumented methods) and AC-14 (production configuration)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import time_machine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from gatehouse.app import create_app
from gatehouse.auth.repository import SessionRepository
from gatehouse.config import DatabaseSettings
from gatehouse.db.engine import Database
from tests.factories import Api, assert_envelope
from tests.logs import capture_json_logs
from tests.security.access_support import build_app, documented_operations, snapshot

PROTECTED = ("/api/v1/users/me", "/api/v1/users")


async def test_bad_or_missing_credentials_get_401_with_a_bearer_challenge(api: Api) -> None:
    user = await api.user("user")
    good = user.access_token
    logged_out = await api.user("user")
    await api.client.post("/api/v1/auth/logout", headers=logged_out.headers)
    authorizations: list[str | None] = [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        f"Basic {good}",
        f"Token {good}",
        good,
        f"Bearer {good}x",
        f"Bearer {good[:-4]}",
        f"Bearer {good} extra",
        f"Bearer {logged_out.access_token}",
    ]
    tried = 0
    for path in PROTECTED:
        for authorization in authorizations:
            headers = {} if authorization is None else {"Authorization": authorization}
            response = await api.client.get(path, headers=headers)
            assert_envelope(response, 401, "UNAUTHORIZED")
            assert response.headers["www-authenticate"].startswith("Bearer"), authorization
            tried += 1
    # Expired: just past the lifetime plus the leeway.
    ttl = api.runtime.settings.auth.access_token_ttl_seconds
    leeway = api.runtime.settings.auth.jwt_leeway_seconds
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=ttl + leeway + 1)):
        for path in PROTECTED:
            response = await api.client.get(path, headers=user.headers)
            assert_envelope(response, 401, "UNAUTHORIZED")
            assert response.headers["www-authenticate"].startswith("Bearer")
            tried += 1
    print(f"\nAC-09: {tried} bad credentials tried, {tried} answered 401 Bearer")


async def test_a_valid_token_without_the_role_gets_403_not_401(api: Api) -> None:
    user = await api.user("user")
    readonly = await api.user("readonly")
    target = await api.user("user")
    cases = [
        (user, "GET", "/api/v1/users"),
        (user, "GET", f"/api/v1/users/{target.id}/sessions"),
        (user, "DELETE", f"/api/v1/users/{target.id}"),
        (readonly, "POST", "/api/v1/users"),
        (readonly, "DELETE", f"/api/v1/users/{target.id}/sessions"),
        (readonly, "PATCH", "/api/v1/users/me"),
    ]
    for account, method, url in cases:
        body = {"name": "X Person"} if method in ("POST", "PATCH") else None
        response = await api.client.request(method, url, json=body, headers=account.headers)
        assert_envelope(response, 403, "FORBIDDEN")
        assert "www-authenticate" not in response.headers


def _db_down() -> Exception:
    return OperationalError("SELECT users.role", {}, ConnectionRefusedError("connection refused"))


@pytest.mark.parametrize(
    "failure", [_db_down, lambda: ConnectionRefusedError("refused")], ids=["operational", "refused"]
)
async def test_a_failing_permission_lookup_answers_503_never_data(
    api: Api, monkeypatch: pytest.MonkeyPatch, failure: Any
) -> None:
    admin = await api.user("admin")
    victim = await api.user("user")
    before = await snapshot(api)

    async def broken(*_: object, **__: object) -> None:
        raise failure()

    monkeypatch.setattr(SessionRepository, "principal_row", broken)
    for method, url in (
        ("GET", "/api/v1/users"),
        ("GET", f"/api/v1/users/{victim.id}"),
        ("GET", "/api/v1/users/me"),
        ("DELETE", f"/api/v1/users/{victim.id}"),
    ):
        response = await api.client.request(method, url, headers=admin.headers)
        assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
        assert "retry-after" in response.headers
        assert victim.email not in response.text
    monkeypatch.undo()
    assert await snapshot(api) == before


async def test_an_unexpected_error_in_the_permission_lookup_is_a_plain_500(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await api.user("admin")

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret internals at /srv/gatehouse")

    monkeypatch.setattr(SessionRepository, "principal_row", broken)
    with capture_json_logs() as logs:
        response = await api.client.get("/api/v1/users", headers=admin.headers)
    error = assert_envelope(response, 500, "INTERNAL_ERROR")
    assert "secret internals" in logs.text()  # the log has it, the client does not
    assert "secret internals" not in response.text
    assert "RuntimeError" not in response.text
    assert error["details"] == {}


@pytest.fixture
async def dead_db_client(
    api: Api, backend: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The same app and keys over a database that cannot be reached."""
    if backend == "postgres":
        url = make_url(api.runtime.settings.database_url).set(host="127.0.0.1", port=1)
        dead = url.render_as_string(hide_password=False)
    else:
        dead = f"sqlite+aiosqlite:///{tmp_path}"  # a directory: cannot be opened
    settings = api.runtime.settings.model_copy(
        update={"database": DatabaseSettings(database_url=dead)}
    )
    runtime = dataclasses.replace(api.runtime, settings=settings, db=Database(settings))
    transport = httpx.ASGITransport(app=create_app(runtime=runtime), client=("127.0.0.1", 5000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c
    finally:
        await runtime.db.dispose()


async def test_an_unreachable_database_answers_503_never_data(
    api: Api, dead_db_client: httpx.AsyncClient
) -> None:
    admin = await api.user("admin")
    for method, url, body in (
        ("GET", "/api/v1/users", None),
        ("GET", "/api/v1/users/me", None),
        ("POST", "/api/v1/auth/token", {"username": admin.email, "password": admin.password}),
    ):
        response = await dead_db_client.request(method, url, json=body, headers=admin.headers)
        assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
        assert admin.email not in response.text


async def sessions_ips(api: Api, headers: dict[str, str]) -> list[str | None]:
    response = await api.client.get("/api/v1/users/me/sessions", headers=headers)
    return [s["ip"] for s in response.json()]


SPOOF = {
    "X-Forwarded-For": "203.0.113.9",
    "X-Real-IP": "198.51.100.7",
    "X-Forwarded-Proto": "https",
}


async def test_client_headers_from_an_untrusted_peer_are_ignored(api: Api) -> None:
    admin = await api.user("admin")
    user = await api.create_user("user")
    await api.login(user, **SPOOF, **{"X-User-ID": str(admin.id)})
    assert await sessions_ips(api, user.headers) == ["127.0.0.1"]
    spoofed = {**user.headers, **SPOOF, "X-User-ID": str(admin.id), "X-User-Role": "admin"}
    listing = await api.client.get("/api/v1/users", headers=spoofed)
    assert_envelope(listing, 403, "FORBIDDEN")
    assert "strict-transport-security" not in listing.headers
    anonymous = await api.client.get(
        "/api/v1/users", headers={"X-User-ID": str(admin.id), "X-Forwarded-For": "127.0.0.1"}
    )
    assert_envelope(anonymous, 401, "UNAUTHORIZED")


class TestBehindATrustedProxy:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"trusted_proxies": ["127.0.0.1/32"]}

    @pytest.mark.parametrize(
        ("forwarded_for", "seen"),
        [
            ("203.0.113.9", "203.0.113.9"),
            # Only the hop our proxy added counts; what the client wrote before it does not.
            ("6.6.6.6, 203.0.113.9", "203.0.113.9"),
            ("not-an-ip", "127.0.0.1"),
        ],
    )
    async def test_the_forwarded_client_address_is_used(
        self, api: Api, forwarded_for: str, seen: str
    ) -> None:
        user = await api.create_user("user")
        await api.login(user, **{"X-Forwarded-For": forwarded_for, "X-Real-IP": "198.51.100.7"})
        assert await sessions_ips(api, user.headers) == [seen]


async def test_undocumented_methods_answer_405_with_the_real_allow_list(api: Api) -> None:
    documented = documented_operations(build_app(api))
    cases = [
        ("PATCH", "/api/v1/users"),
        ("PUT", "/api/v1/users"),
        ("DELETE", "/api/v1/users"),
        ("TRACE", "/api/v1/users"),
        ("TRACE", "/health"),
        ("TRACE", "/api/v1/users/me"),
        ("POST", "/api/v1/users/me"),
        ("GET", "/api/v1/auth/token"),
        ("PUT", "/api/v1/users/me/password"),
        ("OPTIONS", "/api/v1/users"),
        ("CONNECT", "/api/v1/users"),
    ]
    admin = await api.user("admin")
    for method, path in cases:
        response = await api.client.request(method, path, headers=admin.headers)
        assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        expected = {m for m, p in documented if p == path}
        # HEAD is answered wherever GET is (RFC 9110 §9.3.2), though not documented.
        assert allowed == expected | ({"HEAD"} if "GET" in expected else set()), (method, path)


@pytest.fixture(params=[{"docs_enabled": False}, {"env": "production"}], ids=["off", "prod"])
def production_like(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(request.param)


class TestProductionConfiguration:
    @pytest.fixture
    def settings_overrides(self, production_like: dict[str, Any]) -> dict[str, Any]:
        return production_like

    async def test_docs_are_off_and_no_server_header_is_sent(self, api: Api) -> None:
        for path in ("/docs", "/redoc", "/openapi.json", "/api/v1/openapi.json"):
            response = await api.client.get(path)
            assert_envelope(response, 404, "NOT_FOUND")
            assert "server" not in response.headers
        assert create_app(runtime=api.runtime).debug is False
        for path in ("/health", "/api/v1/users/me", "/nope"):
            assert "server" not in (await api.client.get(path)).headers


async def test_docs_are_served_outside_production(api: Api) -> None:
    for path in ("/docs", "/redoc", "/openapi.json", "/api/v1/openapi.json"):
        response = await api.client.get(path)
        assert response.status_code == 200, path
        assert "server" not in response.headers
