"""The API process serves the built web apps: files, cache rules, SPA fallback, CSP."""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from gatehouse.app import create_app
from gatehouse.config import ServerSettings
from gatehouse.runtime import Runtime
from gatehouse.web import IMMUTABLE
from tests.conftest import app_for
from tests.factories import assert_envelope

INDEX = "<!doctype html><title>client</title><script src='/assets/app-abc123.js'></script>"
ADMIN_INDEX = "<!doctype html><title>admin</title>"
APP_JS = "console.log('client')"
ADMIN_JS = "console.log('admin')"
SECRET = "not for the web"

APP_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    """What `vite build` writes, plus a secret next to it and symlinks leading to it."""
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "admin" / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "admin" / "index.html").write_text(ADMIN_INDEX)
    (root / "assets" / "app-abc123.js").write_text(APP_JS)
    (root / "assets" / "app-abc123.css").write_text("body{}")
    (root / "admin" / "assets" / "admin-def456.js").write_text(ADMIN_JS)
    (root / "favicon.ico").write_bytes(b"\x00\x00\x01\x00")
    (tmp_path / "secret.txt").write_text(SECRET)
    (root / "assets" / "leak.js").symlink_to(tmp_path / "secret.txt")
    (root / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (root / "outside").symlink_to(tmp_path, target_is_directory=True)
    return root


@pytest.fixture
def settings_overrides(dist: Path) -> dict[str, Any]:
    return {"web_dir": dist}


async def raw_get(runtime: Runtime, path: str) -> tuple[int, dict[str, str], bytes]:
    """A GET with this exact path in the ASGI scope: no client normalises it first."""
    app = app_for(runtime)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1", "replace"),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[MutableMapping[str, Any]] = []
    requested = False
    done = anyio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # a streaming response listens for the disconnect
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app(scope, receive, send)
    start = sent[0]
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


# --- files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "media"),
    [
        ("/assets/app-abc123.js", APP_JS, "text/javascript"),
        ("/assets/app-abc123.css", "body{}", "text/css"),
        ("/admin/assets/admin-def456.js", ADMIN_JS, "text/javascript"),
    ],
)
async def test_hashed_assets_are_cached_for_a_year(
    client: httpx.AsyncClient, path: str, body: str, media: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.text == body
    assert response.headers["content-type"].split(";")[0] == media
    assert response.headers["cache-control"] == IMMUTABLE
    assert "etag" in response.headers


async def test_the_admin_app_may_share_the_root_assets(client: httpx.AsyncClient) -> None:
    # One Vite build with two entry points writes a single assets/ folder.
    response = await client.get("/assets/app-abc123.js")
    assert response.status_code == 200


async def test_an_unchanged_asset_answers_304(client: httpx.AsyncClient) -> None:
    first = await client.get("/assets/app-abc123.js")
    again = await client.get(
        "/assets/app-abc123.js", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.headers["cache-control"] == IMMUTABLE


@pytest.mark.parametrize(
    "path", ["/assets/app-000000.js", "/admin/assets/gone.js", "/assets/", "/admin/assets"]
)
async def test_a_missing_asset_is_a_404_envelope_never_the_page(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path, headers={"Accept": "text/html"})
    assert_envelope(response, 404, "NOT_FOUND")
    # An envelope is JSON: it keeps the API's strict policy.
    assert response.headers["content-security-policy"] == API_CSP


async def test_a_real_file_at_the_root_is_served_with_a_short_cache(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.content == b"\x00\x00\x01\x00"
    assert response.headers["content-type"] == "image/x-icon"
    assert response.headers["cache-control"] == "public, max-age=3600"


# --- pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/login", "/profile/sessions", "/index.html", "/x.y/z/"])
async def test_client_routes_answer_the_client_page(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("path", ["/admin", "/admin/", "/admin/users/42", "/admin/audit?x=1"])
async def test_admin_routes_answer_the_admin_page(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.text == ADMIN_INDEX
    assert response.headers["cache-control"] == "no-cache"


async def test_head_answers_the_headers_without_a_body(client: httpx.AsyncClient) -> None:
    for path in ("/", "/admin/users", "/assets/app-abc123.js"):
        response = await client.head(path)
        assert response.status_code == 200
        assert response.content == b""
        assert int(response.headers["content-length"]) > 0


async def test_a_write_to_a_page_is_405(client: httpx.AsyncClient) -> None:
    response = await client.post("/login", json={})
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "HEAD"}


# --- the API keeps its own answers ---------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing-here", "/api", "/api/", "/.well-known/nothing", "/health/nothing"]
)
async def test_unknown_api_paths_stay_json_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers={"Accept": "text/html"})
    assert_envelope(response, 404, "NOT_FOUND")
    assert response.headers["content-security-policy"] == API_CSP


async def test_api_routes_win(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json()["status"]
    assert (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert (await client.get("/openapi.json")).json()["openapi"]
    response = await client.get("/api/v1/auth/token")
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")


async def test_the_web_route_is_not_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert all(path.startswith(("/api/", "/health", "/.well-known")) for path in paths), paths


# --- security headers ----------------------------------------------------------------------


async def test_app_pages_carry_the_app_csp_and_the_api_its_own(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/", "/admin/users", "/assets/app-abc123.js"):
        response = await client.get(path)
        assert response.headers["content-security-policy"] == APP_CSP, path
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
    for path in ("/health", "/api/v1/users/me"):
        response = await client.get(path)
        assert response.headers["content-security-policy"] == API_CSP, path


# --- no way out of the directory -----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/%2e%2e/secret.txt",
        "/admin/%2E%2E/%2E%2E/secret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/assets/%5c..%5csecret.txt",
        "/assets/leak.js",
        "/leak.txt",
        "/outside/secret.txt",
        "/assets/app-abc123.js%00.png",
    ],
)
async def test_escapes_from_the_web_dir_are_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert_envelope(response, 404, "NOT_FOUND")
    assert SECRET not in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/admin/./../../secret.txt",
        "//etc/passwd",
        "/admin//etc/passwd",
        "/assets//etc/passwd",
        "/assets/\\..\\..\\secret.txt",
    ],
)
async def test_raw_traversal_paths_are_404(runtime: Runtime, path: str, tmp_path: Path) -> None:
    status, headers, body = await raw_get(runtime, path)
    assert status == 404, (path, body)
    assert headers["content-type"] == "application/json"
    assert SECRET.encode() not in body


def app_client(runtime: Runtime, web_dir: Path) -> httpx.AsyncClient:
    """A client of an app like the fixture's, with another web dir."""
    server = runtime.settings.server.model_copy(update={"web_dir": web_dir})
    settings = runtime.settings.model_copy(update={"server": server})
    transport = httpx.ASGITransport(app=create_app(settings=settings, runtime=runtime))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_a_symlinked_web_dir_is_served(runtime: Runtime, dist: Path, tmp_path: Path) -> None:
    # A deploy that flips a `current` symlink between releases.
    link = tmp_path / "current"
    os.symlink(dist, link, target_is_directory=True)
    async with app_client(runtime, link) as client:
        assert (await client.get("/assets/app-abc123.js")).text == APP_JS
        assert (await client.get("/admin/x")).text == ADMIN_INDEX


# --- not built -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/admin"])
async def test_without_a_build_the_root_says_so(
    runtime: Runtime, tmp_path: Path, path: str
) -> None:
    async with app_client(runtime, tmp_path / "no-build") as client:
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "not built" in response.text
        assert "GATEHOUSE_WEB_DIR" in response.text
        assert response.headers["content-security-policy"] == APP_CSP
        assert (await client.head(path)).status_code == 200


async def test_without_a_build_other_paths_are_404_and_the_api_works(
    runtime: Runtime, tmp_path: Path
) -> None:
    async with app_client(runtime, tmp_path / "no-build") as client:
        for path in ("/login", "/admin/users", "/assets/app-abc123.js"):
            assert_envelope(await client.get(path), 404, "NOT_FOUND")
        assert_envelope(await client.get("/api/v1/users/me"), 401, "UNAUTHORIZED")
        assert (await client.get("/health")).status_code == 200


async def test_a_directory_without_index_html_is_not_a_build(
    runtime: Runtime, tmp_path: Path
) -> None:
    # GATEHOUSE_WEB_DIR pointed at the wrong place (the repository, say) serves nothing.
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "notes.txt").write_text(SECRET)
    async with app_client(runtime, tmp_path / "elsewhere") as client:
        assert_envelope(await client.get("/notes.txt"), 404, "NOT_FOUND")


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_web_dir_variable_means_the_default(value: str) -> None:
    # Not Path(""), which is the working directory.
    assert ServerSettings(web_dir=value).web_dir is None
