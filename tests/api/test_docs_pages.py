"""/docs and /redoc run on assets Gatehouse ships, in a sandbox.

The pages once loaded Swagger UI and ReDoc from a CDN, unpinned, on the apps' own origin:
such a script could use the admin's refresh cookie. Now every script and style is
served by Gatehouse (copied from the npm packages pinned in web/package.json), and the
pages' CSP sandboxes them: an opaque origin, whose requests carry no cookie (a cookie
refresh from `Origin: null` is refused all the same: test_cookie_mode.py) and which may
connect nowhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatehouse.app import create_app
from gatehouse.runtime import Runtime
from gatehouse.web import DOCS_ASSETS_DIR

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("/docs", "/redoc")
VENDOR = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
VENDOR["redoc.standalone.js"] = "text/javascript"
# A URL the page loads: a script, a stylesheet, an image, a frame.
LOADS = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)""")


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A web build holding the docs assets, as `npm run build` leaves it."""
    directory = tmp_path / "dist" / DOCS_ASSETS_DIR
    directory.mkdir(parents=True)
    for name in VENDOR:
        (directory / name).write_text(f"/* {name} */\n", encoding="utf-8")
    return tmp_path / "dist"


@pytest.fixture
async def docs_client(runtime: Runtime, built: Path) -> Any:
    server = runtime.settings.server.model_copy(update={"web_dir": built})
    settings = runtime.settings.model_copy(update={"server": server})
    app = create_app(settings=settings, runtime=runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def loaded_urls(html: str) -> list[str]:
    return LOADS.findall(html)


@pytest.mark.parametrize("path", PAGES)
async def test_pages_load_only_gatehouses_own_assets(
    docs_client: httpx.AsyncClient, path: str
) -> None:
    response = await docs_client.get(path)
    assert response.status_code == 200
    html = response.text
    urls = loaded_urls(html)
    assert len(urls) >= 2
    assert all(url.startswith("/docs/assets/") for url in urls), urls
    assert "cdn" not in html.split('<script id="openapi"')[0].lower()
    # No inline script runs: the only script without src is the document, a data block.
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline == [' id="openapi" type="application/json"']
    for url in urls:
        asset = await docs_client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].split(";")[0] in {"text/javascript", "text/css"}


async def test_the_embedded_document_is_the_served_one(docs_client: httpx.AsyncClient) -> None:
    html = (await docs_client.get("/docs")).text
    block = re.search(r'<script id="openapi" type="application/json">(.*?)</script>', html, re.S)
    assert block is not None
    assert "</" not in block.group(1)
    assert json.loads(block.group(1)) == (await docs_client.get("/openapi.json")).json()


@pytest.mark.parametrize("path", [*PAGES, "/docs/assets/swagger-init.js"])
async def test_docs_csp_is_a_sandbox_that_loads_from_self_alone(
    docs_client: httpx.AsyncClient, path: str
) -> None:
    csp = (await docs_client.get(path)).headers["content-security-policy"]
    directives = dict(
        ([*part.strip().split(" ", 1), ""])[:2] for part in csp.split(";") if part.strip()
    )
    assert directives["sandbox"] == "allow-scripts allow-popups"  # no allow-same-origin
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'none'"
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "http" not in csp
    assert "unsafe-eval" not in csp
    assert "'unsafe-inline'" not in directives["script-src"]


@pytest.mark.parametrize("name", ["../index.html", "index.html", "x.js", "a/b.js"])
async def test_only_the_docs_assets_are_served_there(
    docs_client: httpx.AsyncClient, name: str
) -> None:
    response = await docs_client.get(f"/docs/assets/{name}")
    assert response.status_code == 404


async def test_without_a_build_the_vendor_assets_are_404_and_the_page_says_why(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/docs/assets/swagger-ui-bundle.js")).status_code == 404
    assert "make web" in (await client.get("/docs")).text


def test_the_build_copies_the_assets_served_from_pinned_packages() -> None:
    package = json.loads((ROOT / "web" / "package.json").read_text(encoding="utf-8"))
    pinned = {**package.get("dependencies", {}), **package.get("devDependencies", {})}
    for name in ("swagger-ui-dist", "redoc"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", pinned[name]), (name, pinned[name])
    script = (ROOT / "web" / "scripts" / "copy-docs-assets.mjs").read_text(encoding="utf-8")
    copied = {
        path.rsplit("/", 1)[1]
        for path in re.findall(r'"((?:swagger-ui-dist|redoc)/[^"]+)"', script)
    }
    assert copied == set(VENDOR)
    assert "copy-docs-assets.mjs" in package["scripts"]["build"]
