"""Deprecating a route: one declaration on it, and clients and operators see the rest.

    @router.get(
        "/old",
        **deprecated(since=date(2026, 12, 6), sunset=date(2027, 6, 6), link=DOCS_URL),
    )

That marks the operation `deprecated: true` in the OpenAPI document (with the dates in
`x-deprecation`, and the headers below documented on every response), and
`DeprecationMiddleware` puts on every response of the route, errors included:

- `Deprecation: @<unix seconds>` (RFC 9745), when it was (or will be) deprecated;
- `Sunset: <HTTP-date>` (RFC 8594), after which it may stop working;
- `Link: <url>; rel="deprecation"` and `rel="sunset"`: what to use instead, and when;

and counts each call in `gatehouse_deprecated_calls_total{route, method}`, so an
operator can tell who still calls it before it goes. The policy (docs/api-versioning.md)
is checked where it is declared: the sunset is at least six months after the
deprecation date.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatehouse.kit import metrics

# The operation's key in the OpenAPI document; the middleware reads the routes' notices
# back from it, so the document and the headers cannot disagree.
EXTENSION = "x-deprecation"
MIN_NOTICE_MONTHS = 6


def months_after(day: date, months: int) -> date:
    """The same day `months` later, or that month's last day (31 August + 6: 28 February)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Deprecation:
    since: date
    sunset: date
    link: str

    def __post_init__(self) -> None:
        earliest = months_after(self.since, MIN_NOTICE_MONTHS)
        if self.sunset < earliest:
            raise ValueError(
                f"sunset {self.sunset} is less than {MIN_NOTICE_MONTHS} months after "
                f"{self.since}: the earliest allowed is {earliest} (docs/api-versioning.md)"
            )
        parts = urlsplit(self.link)
        if parts.scheme not in {"https", "http"} or not parts.netloc or '"' in self.link:
            raise ValueError(f"link must be an absolute http(s) URL, not {self.link!r}")

    @property
    def deprecation_header(self) -> str:
        # An RFC 9651 Date: "@" and the Unix time of midnight UTC that day.
        return f"@{calendar.timegm(self.since.timetuple())}"

    @property
    def sunset_header(self) -> str:
        # The IMF-fixdate form of RFC 9110: "Sun, 06 Jun 2027 00:00:00 GMT".
        moment = datetime(self.sunset.year, self.sunset.month, self.sunset.day, tzinfo=UTC)
        return format_datetime(moment, usegmt=True)

    @property
    def link_header(self) -> str:
        return (
            f'<{self.link}>; rel="deprecation"; type="text/html", '
            f'<{self.link}>; rel="sunset"; type="text/html"'
        )

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"deprecation", self.deprecation_header.encode()),
            (b"sunset", self.sunset_header.encode()),
            (b"link", self.link_header.encode()),
        ]

    def document(self) -> dict[str, str]:
        return {
            "deprecated": self.since.isoformat(),
            "sunset": self.sunset.isoformat(),
            "link": self.link,
        }

    @classmethod
    def from_document(cls, value: Mapping[str, Any]) -> Deprecation:
        return cls(
            date.fromisoformat(value["deprecated"]),
            date.fromisoformat(value["sunset"]),
            value["link"],
        )


def deprecated(
    *, since: date, sunset: date, link: str, openapi_extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The route decorator's arguments that deprecate it (pass the route's own
    `openapi_extra`, if it has one, here)."""
    notice = Deprecation(since, sunset, link)
    return {
        "deprecated": True,
        "openapi_extra": {**(openapi_extra or {}), EXTENSION: notice.document()},
    }


def notice_of(route: object) -> Deprecation | None:
    extra = getattr(route, "openapi_extra", None)
    if not isinstance(extra, Mapping) or EXTENSION not in extra:
        return None
    return Deprecation.from_document(extra[EXTENSION])


@dataclass(frozen=True)
class DeprecatedRoute:
    method: str
    path: str
    # None: flagged `deprecated=True` by hand, without `deprecated(...)` (no headers).
    notice: Deprecation | None


def deprecated_routes(app: FastAPI) -> list[DeprecatedRoute]:
    """Every (method, route template) the app serves as deprecated."""
    found = []
    for context in iter_route_contexts(app.routes):
        notice = notice_of(context)
        if notice is None and not getattr(context, "deprecated", None):
            continue
        for method in sorted(context.methods or ()):
            # `path`, as the request metrics label it (the same as OpenAPI's but for a
            # convertor: `{id:int}` there, `{id}` in the document).
            found.append(DeprecatedRoute(method, str(context.path), notice))
    return found


class _Index:
    """The app's routes, for finding the one a request went to (or would have)."""

    def __init__(self, app: FastAPI) -> None:
        self.notices: dict[tuple[str, str], Deprecation] = {
            (route.method, route.path): route.notice
            for route in deprecated_routes(app)
            if route.notice is not None
        }
        # Starlette's order, for a response sent before routing (a 429, a 413...).
        self.routes = [
            (context.path_regex, frozenset(context.methods or ()), str(context.path))
            for context in iter_route_contexts(app.routes)
            if getattr(context, "path_regex", None) is not None and context.methods
        ]

    def lookup(self, scope: Scope) -> tuple[str, Deprecation] | None:
        # HEAD is served as GET (gatehouse.kit.middleware.HeadMiddleware).
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        route = scope.get("route")
        template = getattr(route, "path", None) if route is not None else None
        if template is None:
            template = self._match(scope["path"], method)
        if template is None:
            return None
        notice = self.notices.get((method, template))
        return None if notice is None else (template, notice)

    def _match(self, path: str, method: str) -> str | None:
        for regex, methods, template in self.routes:
            if method in methods and regex.match(path):
                return template
        return None


class DeprecationMiddleware:
    """Outermost, so the headers reach every answer of a deprecated route: the error
    handlers', the last-resort 500, and those sent before routing (rate limit, body guard)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._index: _Index | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._index is None:
            # Built on the first request, once every route has been added.
            self._index = _Index(scope["app"])
        index = self._index
        if not index.notices:
            await self.app(scope, receive, send)
            return

        async def send_with_notice(message: Message) -> None:
            if message["type"] == "http.response.start":
                found = index.lookup(scope)
                if found is not None:
                    template, notice = found
                    message["headers"] = [*message.get("headers", []), *notice.headers()]
                    metrics.DEPRECATED_CALLS.labels(template, scope["method"]).inc()
            await send(message)

        await self.app(scope, receive, send_with_notice)


def response_headers(notice: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The headers of a deprecated operation, for its responses in the OpenAPI document."""
    found = Deprecation.from_document(notice)
    return {
        "Deprecation": {
            "description": "When this operation was deprecated (RFC 9745): `@` and Unix "
            f"seconds; here `{found.deprecation_header}`, {found.since.isoformat()}",
            "schema": {"type": "string"},
        },
        "Sunset": {
            "description": "After this moment the operation may stop working (RFC 8594); "
            f"here `{found.sunset_header}`",
            "schema": {"type": "string"},
        },
        "Link": {
            "description": 'Where to read what replaces it: `rel="deprecation"` and '
            '`rel="sunset"` (docs/api-versioning.md)',
            "schema": {"type": "string"},
        },
    }
