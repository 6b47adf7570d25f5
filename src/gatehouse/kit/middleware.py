"""Pure ASGI middleware: request id, one log line per request, the last-resort 500,
security headers, and the body guard (size and media type).

Pure ASGI rather than BaseHTTPMiddleware: it costs the hot path almost nothing and
does not buffer bodies.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import anyio
import structlog
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatehouse.errors import envelope
from gatehouse.kit import metrics
from gatehouse.kit.context import request_id_var, user_id_var
from gatehouse.kit.http import (
    SAFE_METHODS,
    client_ip,
    is_trusted_proxy,
    parse_networks,
    sane_request_id,
)

log = structlog.get_logger("gatehouse.http")

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
# The web apps are bundled (no CDN); Mantine-style libraries inject <style> elements.
_APP_CSP = (
    b"content-security-policy",
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data: https:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    b"form-action 'self'",
)
# Swagger UI and ReDoc (gatehouse.web): scripts and styles from Gatehouse only, the
# document embedded in the page, nothing fetched. Sandboxed: the pages run in an opaque
# origin, so nothing on them can send or read a request with the refresh cookie. The
# libraries set inline styles; no inline script runs.
_DOCS_CSP = (
    b"content-security-policy",
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; font-src 'self'; connect-src 'none'; frame-ancestors 'none'; "
    b"base-uri 'none'; form-action 'none'; sandbox allow-scripts allow-popups",
)
_DOCS_PATHS = ("/docs", "/redoc")
# The API's own paths; every other path belongs to the web apps (gatehouse.web).
_API_PATHS = ("/api", "/health", "/.well-known", "/oauth2", "/openapi.json", "/metrics")


# Paths longer than this are not remembered (a scan of random long paths must not fill
# the cache with them); their headers are worked out each time.
_CACHED_PATH_MAX = 200
_CACHED_LABELS_MAX = 10_000


class RequestMetrics:
    """The request counters of each (route, method, status class), looked up once.

    prometheus-client's `labels()` takes a lock and builds the child's key on every
    call; a request made three such calls. Routes are templates, so the set is small.
    """

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status // 100)
        children = self._children.get(key)
        if children is None:
            children = (
                metrics.HTTP_REQUESTS.labels(route, method, f"{status // 100}xx"),
                metrics.HTTP_DURATION.labels(route, method),
            )
            # Methods are the client's word: only so many combinations are remembered.
            if len(self._children) < _CACHED_LABELS_MAX:
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


# nginx's number for "the client closed the request": logged, never sent.
CLIENT_CLOSED = 499


def client_disconnected(scope: Scope, during: str) -> None:
    """The client went away before its answer: nothing to answer, nothing went wrong."""
    metrics.HTTP_CLIENT_DISCONNECTS.labels(during).inc()
    scope.setdefault("state", {})["client_disconnected"] = True
    log.info("http.client_disconnected", path=scope["path"], method=scope["method"], during=during)


def _under(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def is_app_path(path: str) -> bool:
    """A web-app path: neither the API's nor the API docs'."""
    return not _under(path, _API_PATHS) and not _under(path, _DOCS_PATHS)


def _is_json_response(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and _is_json(v) for k, v in headers)


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    body = json.dumps(envelope(code, message, request_id_var.get())).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _path_headers(path: str) -> tuple[tuple[tuple[bytes, bytes], ...], bool]:
    """The headers every answer on `path` gets (unless it set its own), and whether it
    is a web-app path."""
    extra = list(_SECURITY_HEADERS)
    if _under(path, _DOCS_PATHS):
        extra.append(_DOCS_CSP)
    elif not is_app_path(path):
        extra.append(_API_CSP)
    if path.startswith("/api/"):
        extra.append((b"cache-control", b"no-store"))
        extra.append((b"pragma", b"no-cache"))
    return tuple(extra), is_app_path(path)


_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, trusted_proxies: Sequence[str] = (), count_requests: bool = True
    ) -> None:
        self.app = app
        self.trusted = parse_networks(trusted_proxies)
        # Off only when metrics are switched off: then nothing would ever read the counts.
        self.count_requests = count_requests
        # Per peer address and per path: the same few answers on every request.
        self._trusted_peer = functools.lru_cache(maxsize=4096)(self._is_trusted_peer)
        self._headers_for = functools.lru_cache(maxsize=4096)(_path_headers)
        self._metrics = RequestMetrics()

    def _is_trusted_peer(self, peer: str | None) -> bool:
        return is_trusted_proxy(peer, self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # One pass for the three headers read here (ASGI servers send names lowercased).
        raw_id = forwarded_for = forwarded_proto = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                raw_id = value
            elif name == b"x-forwarded-for":
                forwarded_for = value
            elif name == b"x-forwarded-proto":
                forwarded_proto = value
        request_id = (
            sane_request_id(raw_id.decode("latin-1")) if raw_id is not None else None
        ) or str(uuid.uuid4())
        token = request_id_var.set(request_id)
        user_token = user_id_var.set(None)  # authentication sets it
        peer = scope["client"][0] if scope.get("client") else None
        trusted_peer = self._trusted_peer(peer)
        ip = (
            client_ip(peer, forwarded_for.decode("latin-1"), self.trusted)
            if trusted_peer and forwarded_for
            else peer
        )
        state = scope.setdefault("state", {})
        state["client_ip"] = ip
        state["request_id"] = request_id
        # TLS ended here, or at one of our proxies (which may not send X-Forwarded-For).
        https = scope.get("scheme") == "https" or (trusted_peer and forwarded_proto == b"https")
        state["https"] = https  # the cookie-mode cookies' Secure attribute follows it
        path: str = scope["path"]
        # A web-app path gets the app's CSP, unless the answer is JSON (a 404 envelope).
        extra, app_path = (
            self._headers_for(path) if len(path) <= _CACHED_PATH_MAX else _path_headers(path)
        )
        if https:
            extra = (*extra, _HSTS)
        status = 500
        started = False
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                present = {k.lower() for k, _ in message.get("headers", [])}
                out = list(message.get("headers", []))
                out.append((b"x-request-id", request_id.encode()))
                out.extend(h for h in extra if h[0] not in present)
                if app_path and b"content-security-policy" not in present:
                    out.append(_API_CSP if _is_json_response(out) else _APP_CSP)
                message["headers"] = out
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        if self.count_requests:
            metrics.HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        except ClientDisconnect:
            # Reading the body found the client gone (e.g. while its login waited).
            client_disconnected(scope, "app")
        except Exception:
            log.exception("http.unhandled_error", path=path, method=scope["method"])
            if not started:
                await send_error(
                    send_wrapper,
                    500,
                    "INTERNAL_ERROR",
                    f"Something went wrong on our side; quote request id {request_id}",
                )
        finally:
            if not started and state.get("client_disconnected"):
                status = CLIENT_CLOSED
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            elapsed = time.perf_counter() - start
            if self.count_requests:
                metrics.HTTP_IN_FLIGHT.dec()
                self._metrics.observe(route, scope["method"], status, elapsed)
            log.info(
                "http.request",
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                user_id=state.get("user_id"),
                client_ip=ip,
            )
            structlog.contextvars.unbind_contextvars("request_id")
            user_id_var.reset(user_token)
            request_id_var.reset(token)


class HeadMiddleware:
    """HEAD is GET without the body, on every path that answers GET (RFC 9110 §9.3.2).

    FastAPI routes declared for GET do not answer HEAD (a 405): the request runs as a
    GET, and its status and headers (Content-Length included) go out without the body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        inner = {**scope, "method": "GET"}
        try:
            await self.app(inner, receive, send_headers_only)
        finally:
            # The request's log line names the route the GET matched.
            if "route" in inner:
                scope["route"] = inner["route"]


class BodyTooLargeError(Exception):
    """The body passed the limit while it was read."""


_JSON_TYPES = (b"application/json",)


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media in _JSON_TYPES or (media.startswith(b"application/") and media.endswith(b"+json"))


class BodyGuardMiddleware:
    """413 for bodies over the limit (declared or streamed), 415 for non-JSON bodies,
    408 for a body that does not arrive in time; the app gets the body whole."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        form_paths: Sequence[str] = (),
        timeout_seconds: float = 30.0,
    ) -> None:
        self.app = app
        self.max = max_body_bytes
        self.form_paths = frozenset(form_paths)
        self.timeout = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await send_error(send, 400, "VALIDATION_ERROR", "Content-Length is not a number")
                return
            if int(length) > self.max:
                await self._too_large(send)
                return
        has_body = (length is not None and int(length) > 0) or b"transfer-encoding" in headers
        content_type = headers.get(b"content-type", b"")
        if (
            has_body
            and scope["path"].startswith("/api/")
            and not self._accepted(scope, content_type)
        ):
            await send_error(
                send,
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                "Send the request body as application/json"
                + (
                    " or application/x-www-form-urlencoded"
                    if scope["path"] in self.form_paths
                    else ""
                ),
            )
            return

        try:
            body = await self._read_body(receive)
        except BodyTooLargeError:
            await self._too_large(send)
            return
        except TimeoutError:
            await send_error(
                send,
                408,
                "REQUEST_TIMEOUT",
                f"The request body did not arrive within {self.timeout:g} seconds",
                headers=[(b"connection", b"close")],
            )
            return
        if body is None:
            client_disconnected(scope, "body")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            # Afterwards, the connection's own messages: a disconnect, for one.
            return await receive()

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None when the client went away.

        Read in full before the app runs, within the size limit and a deadline: the app
        opens its unit of work before it reads the body, and a client that sends half a
        body must not hold a database session (on SQLite, the write lock) meanwhile.
        """
        chunks: list[bytes] = []
        received = 0
        with anyio.fail_after(self.timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > self.max:
                    raise BodyTooLargeError(self.max)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)

    def _accepted(self, scope: Scope, content_type: bytes) -> bool:
        if _is_json(content_type):
            return True
        media = content_type.split(b";", 1)[0].strip().lower()
        return scope["path"] in self.form_paths and media == b"application/x-www-form-urlencoded"

    async def _too_large(self, send: Send) -> None:
        await send_error(
            send,
            413,
            "PAYLOAD_TOO_LARGE",
            f"The request body is larger than the limit of {self.max} bytes",
            headers=[(b"connection", b"close")],
        )
