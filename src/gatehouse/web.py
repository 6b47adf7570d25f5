"""The built web apps, served by the API process: the client app at `/`, the admin
portal at `/admin` (docs/operations.md, "Serving the web apps").

One catch-all route, added after every API route so the API always wins. It never
matches the API's own paths, so an unknown `/api/...` path keeps its JSON 404 and a
wrong method on an API route keeps its 405. Hashed assets are cached for a year; the
index pages are revalidated on every load, so a deploy is picked up at once; a missing
asset is a 404, never an index page, so a stale chunk fails loudly.
"""

from __future__ import annotations

import json
import mimetypes
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Receive, Scope, Send

from gatehouse.config import Settings
from gatehouse.errors import NotFound
from gatehouse.kit.middleware import is_app_path

if TYPE_CHECKING:
    from fastapi import FastAPI

# Relative to the working directory: `make run` starts from the repository root.
DEFAULT_WEB_DIR = Path("web/dist")

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
SHORT = "public, max-age=3600"

# Fixed types for what a Vite build writes, whatever the host's mime.types says
# (responses carry `nosniff`, so a wrong type breaks the app).
_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".txt": "text/plain",
    ".wasm": "application/wasm",
}

NOT_BUILT_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Gatehouse</title></head>
<body>
<h1>Gatehouse</h1>
<p>The API is running, but the web apps are not built.</p>
<p>Gatehouse serves them from <code>GATEHOUSE_WEB_DIR</code> (default
<code>web/dist</code>) once they are built there; restart Gatehouse after the build.</p>
<p>The API: <a href="/docs">/docs</a> (when the API docs are on) and
<a href="/health">/health</a>.</p>
</body>
</html>
"""


def web_dir(settings: Settings) -> Path:
    return settings.server.web_dir or DEFAULT_WEB_DIR


def is_built(directory: Path) -> bool:
    return (directory / "index.html").is_file()


def install(app: FastAPI, settings: Settings) -> None:
    """Add the web route last; decided once, when the app is created."""
    directory = web_dir(settings)
    app.router.routes.append(WebAppRoute(directory) if is_built(directory) else NotBuiltRoute())


def _segments(path: str) -> list[str]:
    """The path's non-empty segments; a 404 for anything that could step outside."""
    parts = path.split("/")[1:]
    # "//etc/passwd" and "/assets//x" name no file of ours; only a trailing "/" is usual.
    if "" in parts[:-1] or any(
        part in {".", ".."} or "\\" in part or "\x00" in part for part in parts
    ):
        raise NotFound("No such file")
    return [part for part in parts if part]


def _only_get(scope: Scope) -> None:
    # The router hands a partial match (another method) to the route: the 405 envelope.
    if scope["method"] not in {"GET", "HEAD"}:
        raise HTTPException(405)


def _is_asset(segments: list[str]) -> bool:
    return segments[:1] == ["assets"] or segments[:2] == ["admin", "assets"]


def _is_admin(segments: list[str]) -> bool:
    return segments[:1] == ["admin"]


class _Files(StaticFiles):
    """Starlette's lookup (no escape through symlinks) and conditional responses."""

    def respond(
        self, full_path: str, stat_result: os.stat_result, scope: Scope, cache_control: str
    ) -> Response:
        suffix = os.path.splitext(full_path)[1].lower()
        media_type = _TYPES.get(suffix) or mimetypes.guess_type(full_path)[0] or "text/plain"
        response = FileResponse(
            full_path,
            stat_result=stat_result,
            media_type=media_type,
            headers={"cache-control": cache_control},
        )
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response

    def find(self, segments: list[str]) -> tuple[str, os.stat_result] | None:
        """The regular file at these segments; None when there is none; 404 when the
        path exists but leads out of the directory (a symlink)."""
        if not segments:
            return None
        relative = os.path.join(*segments)
        try:
            full_path, stat_result = self.lookup_path(relative)
        except (OSError, ValueError):  # a name too long, an invalid character
            raise NotFound("No such file") from None
        if stat_result is None:
            if os.path.lexists(os.path.join(str(self.directory), relative)):
                raise NotFound("No such file")
            return None
        if not stat.S_ISREG(stat_result.st_mode):
            return None
        return full_path, stat_result


class _FileRoute(BaseRoute):
    """GET and HEAD of the paths `serves` accepts, answered by `respond` in a thread (file
    system calls block); other methods there get 405 (`_only_get`)."""

    def __init__(self, serves: Callable[[str], bool], respond: Callable[[Scope], Response]) -> None:
        self._serves = serves
        self._respond = respond

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not self._serves(scope["path"]):
            return Match.NONE, {}
        return (Match.FULL if scope["method"] in {"GET", "HEAD"} else Match.PARTIAL), {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        _only_get(scope)
        response = await anyio.to_thread.run_sync(self._respond, scope)
        await response(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)


class WebAppRoute(_FileRoute):
    """GET and HEAD for every path outside the API's own."""

    path = "/{path:path}"  # the `route` of the request's log line

    def __init__(self, directory: Path) -> None:
        super().__init__(is_app_path, self._response)
        self.files = _Files(directory=directory)

    def _response(self, scope: Scope) -> Response:
        segments = _segments(scope["path"])
        found = self.files.find(segments)
        if _is_asset(segments):
            if found is None:
                raise NotFound("No such asset")
            return self.files.respond(*found, scope, IMMUTABLE)
        if found is not None:
            html = found[0].endswith(".html")
            return self.files.respond(*found, scope, REVALIDATE if html else SHORT)
        # A client-side route: the app's page, whose router shows the screen.
        index = ["admin", "index.html"] if _is_admin(segments) else ["index.html"]
        page = self.files.find(index)
        if page is None:
            raise NotFound("The admin portal is not built")
        return self.files.respond(*page, scope, REVALIDATE)


class NotBuiltRoute(_FileRoute):
    """Without a build, `/` and `/admin` say how to build the apps; the rest is 404."""

    path = "/"

    def __init__(self) -> None:
        super().__init__(lambda path: path in {"/", "/admin", "/admin/"}, self._response)

    def _response(self, scope: Scope) -> Response:
        return HTMLResponse(NOT_BUILT_PAGE, headers={"cache-control": REVALIDATE})


# --- The API docs pages (/docs, /redoc) ---------------------------------------------------
#
# Swagger UI and ReDoc come from the npm packages pinned in web/package.json, copied into
# the build (web/scripts/copy-docs-assets.mjs): no third-party script, nothing fetched
# from the internet. The pages run sandboxed (`kit.middleware`'s docs CSP): an opaque
# origin, whose requests carry no cookie and whose answers it cannot read, so a script
# on them cannot use the refresh cookie. The document is embedded in the page (a JSON
# data block, never executed), so the pages fetch nothing at all.

DOCS_ASSETS_DIR = "api-docs"
DOCS_ASSETS_PATH = "/docs/assets"
_VENDOR_ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"})

_SWAGGER_INIT = """\
"use strict";
window.addEventListener("load", function () {
  var spec = JSON.parse(document.getElementById("openapi").textContent);
  window.ui = SwaggerUIBundle({
    spec: spec,
    dom_id: "#swagger-ui",
    deepLinking: true,
    // Sandboxed: a call from this page could not read its answer.
    supportedSubmitMethods: [],
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
"""
_REDOC_INIT = """\
"use strict";
window.addEventListener("load", function () {
  var spec = JSON.parse(document.getElementById("openapi").textContent);
  Redoc.init(spec, { disableSearch: true }, document.getElementById("redoc"));
});
"""
_INIT_SCRIPTS = {"swagger-init.js": _SWAGGER_INIT, "redoc-init.js": _REDOC_INIT}

_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
{styles}
</head>
<body>
<div id="{root}"><p>Loading the API reference. If this stays, the docs assets are not
built: run <code>make web</code> (or <code>cd web &amp;&amp; npm run build</code>) and
restart Gatehouse.</p></div>
<script id="openapi" type="application/json">{document}</script>
{scripts}
</body>
</html>
"""


def _embedded_json(document: dict[str, Any]) -> str:
    # Inside <script>, only "<" can end the block early ("</script>", "<!--").
    return json.dumps(document, separators=(",", ":")).replace("<", "\\u003c")


def docs_page(kind: str, title: str, document: dict[str, Any]) -> HTMLResponse:
    """The Swagger UI (`swagger`) or ReDoc (`redoc`) page: local scripts only."""
    if kind == "swagger":
        root, assets = "swagger-ui", ["swagger-ui-bundle.js", "swagger-init.js"]
        styles = f'<link rel="stylesheet" href="{DOCS_ASSETS_PATH}/swagger-ui.css">'
    else:
        root, assets, styles = "redoc", ["redoc.standalone.js", "redoc-init.js"], ""
    scripts = "\n".join(f'<script src="{DOCS_ASSETS_PATH}/{name}"></script>' for name in assets)
    html = _DOCS_PAGE.format(
        title=title,
        styles=styles,
        root=root,
        document=_embedded_json(document),
        scripts=scripts,
    )
    return HTMLResponse(html, headers={"cache-control": REVALIDATE})


class DocsAssetsRoute(_FileRoute):
    """GET and HEAD of the docs pages' scripts and styles, under /docs/assets/; a static
    file like the web apps' assets, for anyone (the docs are off in production)."""

    path = DOCS_ASSETS_PATH + "/{name}"  # the `route` of the request's log line

    def __init__(self, settings: Settings) -> None:
        super().__init__(lambda path: path.startswith(DOCS_ASSETS_PATH + "/"), self._response)
        self.files = _Files(directory=web_dir(settings) / DOCS_ASSETS_DIR, check_dir=False)

    def _response(self, scope: Scope) -> Response:
        name = scope["path"].removeprefix(DOCS_ASSETS_PATH + "/")
        if name in _INIT_SCRIPTS:
            return Response(
                _INIT_SCRIPTS[name],
                media_type="text/javascript",
                headers={"cache-control": REVALIDATE},
            )
        if name not in _VENDOR_ASSETS:
            raise NotFound("No such asset")
        found = self.files.find([name])
        if found is None:
            raise NotFound("The API docs assets are not built (make web)")
        return self.files.respond(*found, scope, REVALIDATE)
