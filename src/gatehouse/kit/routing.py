"""Routes of several routers under one prefix, checked so their order cannot matter.

`/api/v1/users/...` is served by three features (users, auth's sessions, privacy). A
path parameter matches any one segment, so `GET /users/{user_id}` declared before
`GET /users/me` would answer `/users/me` with a 422 for an id that is not a UUID. Rather
than rely on the order routers happen to be mounted in, `check_unambiguous` refuses to
build an app in which two routes of one method can match the same URL, unless the
literal one is tried first (Starlette tries routes in order).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.routing import BaseRoute, Route

_PARAM = re.compile(r"^\{[^}:]+(:[a-z]+)?\}$")


class AmbiguousRoutes(RuntimeError):
    """Two routes can match one URL and the general one would be tried first."""


def _segments(path: str) -> list[str]:
    return path.strip("/").split("/")


def _is_param(segment: str) -> bool:
    return _PARAM.match(segment) is not None and not segment.endswith(":path}")


def _overlap(a: list[str], b: list[str]) -> bool:
    """Whether one URL can match both paths (same length; each segment equal or a param)."""
    if len(a) != len(b):
        return False
    return all(x == y or _is_param(x) or _is_param(y) for x, y in zip(a, b, strict=True))


def _shadows(first: list[str], later: list[str]) -> bool:
    """`first`, tried earlier, takes URLs meant for the more literal `later`."""
    return _overlap(first, later) and any(
        _is_param(x) and not _is_param(y) for x, y in zip(first, later, strict=True)
    )


def check_unambiguous(routes: Iterable[BaseRoute]) -> None:
    seen: list[tuple[Route, list[str]]] = []
    for route in routes:
        if not isinstance(route, Route) or route.methods is None:
            continue
        segments = _segments(route.path)
        for earlier, earlier_segments in seen:
            methods = (earlier.methods or set()) & route.methods
            if methods and _shadows(earlier_segments, segments):
                raise AmbiguousRoutes(
                    f"{sorted(methods)} {earlier.path} is tried before {route.path} and "
                    f"would take its requests: declare the literal path first"
                )
        seen.append((route, segments))
