"""Cookie mode for browser apps: the refresh token in an HttpOnly cookie.

The access token stays in the app's memory (sent as `Authorization: Bearer`); only the
refresh token moves into a cookie the page's scripts cannot read. Because the browser
sends that cookie by itself, a refresh from it is guarded by a double-submit CSRF
token (a second, readable cookie the app echoes in `X-CSRF-Token`) and by the
`Origin` header when the browser sends one.

The device cookie (`gatehouse_device`, set on every successful password login, in
either mode) marks a browser that logged in before, so the login protection does not
hold it back while an account is under a guessing attack
(`gatehouse.auth.protection`). It is an opaque random token, stored only as a digest
per account, sent only to the token endpoint and readable by no script.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from enum import StrEnum
from urllib.parse import urlsplit

from fastapi import Request, Response

from gatehouse.auth.errors import CsrfFailed
from gatehouse.config import AuthSettings, ServerSettings

REFRESH_COOKIE = "gatehouse_refresh"
CSRF_COOKIE = "gatehouse_csrf"
CSRF_HEADER = "X-CSRF-Token"
TRANSPORT_HEADER = "X-Token-Transport"
# The refresh cookie travels only to the auth endpoints; the CSRF cookie must be
# readable by the app's pages, wherever they are.
REFRESH_COOKIE_PATH = "/api/v1/auth"
CSRF_COOKIE_PATH = "/"
DEVICE_COOKIE = "gatehouse_device"
DEVICE_COOKIE_PATH = "/api/v1/auth/token"


class TokenTransport(StrEnum):
    """Where the refresh token travels: the JSON body, or an HttpOnly cookie."""

    json = "json"
    cookie = "cookie"


def _secure(request: Request, settings: AuthSettings) -> bool:
    if settings.cookie_secure is not None:
        return settings.cookie_secure
    return bool(getattr(request.state, "https", False)) or request.url.scheme == "https"


def _cookie(
    name: str, value: str, *, max_age: int, path: str, http_only: bool, secure: bool
) -> str:
    # Written by hand: SameSite=Strict spelled as the RFC does, attributes in one order.
    parts = [f"{name}={value}", f"Max-Age={max_age}", f"Path={path}", "SameSite=Strict"]
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def set_session_cookies(
    response: Response, request: Request, refresh_token: str, settings: AuthSettings
) -> str:
    """Set the refresh cookie and a fresh CSRF cookie; return the CSRF token."""
    csrf = secrets.token_urlsafe(32)
    secure = _secure(request, settings)
    max_age = settings.refresh_token_max_seconds
    response.headers.append(
        "set-cookie",
        _cookie(
            REFRESH_COOKIE,
            refresh_token,
            max_age=max_age,
            path=REFRESH_COOKIE_PATH,
            http_only=True,
            secure=secure,
        ),
    )
    response.headers.append(
        "set-cookie",
        _cookie(
            CSRF_COOKIE,
            csrf,
            max_age=max_age,
            path=CSRF_COOKIE_PATH,
            http_only=False,
            secure=secure,
        ),
    )
    return csrf


def set_device_cookie(
    response: Response, request: Request, token: str, settings: AuthSettings, max_age: int
) -> None:
    """Set (or renew) the device cookie: it lives as long as the source stays known.
    Logout leaves it: the browser is still one the owner has used."""
    response.headers.append(
        "set-cookie",
        _cookie(
            DEVICE_COOKIE,
            token,
            max_age=max_age,
            path=DEVICE_COOKIE_PATH,
            http_only=True,
            secure=_secure(request, settings),
        ),
    )


def clear_session_cookies(response: Response, request: Request, settings: AuthSettings) -> None:
    """Expire both cookies (same name, path and attributes, Max-Age=0)."""
    secure = _secure(request, settings)
    for name, path, http_only in (
        (REFRESH_COOKIE, REFRESH_COOKIE_PATH, True),
        (CSRF_COOKIE, CSRF_COOKIE_PATH, False),
    ):
        response.headers.append(
            "set-cookie",
            _cookie(name, "", max_age=0, path=path, http_only=http_only, secure=secure),
        )


def _origin(value: str) -> str:
    return value.strip().rstrip("/").lower()


def _own_origins(request: Request, server: ServerSettings) -> set[str]:
    """The request's own origin (as the client addressed it) and the configured one."""
    scheme = "https" if getattr(request.state, "https", False) else request.url.scheme
    public = urlsplit(server.public_url)
    own = {_origin(f"{public.scheme}://{public.netloc}")}
    host = request.headers.get("host")
    if host:
        own.add(_origin(f"{scheme}://{host}"))
    return own


def check_csrf(request: Request, header: str | None, server: ServerSettings) -> None:
    """Refuse a cookie refresh without the matching CSRF header or from a foreign origin."""
    origin = request.headers.get("origin")
    if origin is not None:
        allowed: Sequence[str] = [_origin(o) for o in server.cors_origins if o != "*"]
        if _origin(origin) not in {*allowed, *_own_origins(request, server)}:
            raise CsrfFailed("This origin may not use the refresh cookie")
    cookie = request.cookies.get(CSRF_COOKIE)
    if not header or not cookie or not hmac.compare_digest(header.encode(), cookie.encode()):
        raise CsrfFailed()
