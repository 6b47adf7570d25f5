"""Pure ASGI rate-limit middleware.

It sits inside RequestContextMiddleware (which sets `state["client_ip"]` from the
trusted-proxy rule, so a spoofed X-Forwarded-For changes nothing) and outside the
body guard, so an over-limit caller is turned away before its body is read.

Who is counted: a valid bearer token → its user (one budget across IPs); anything
else → the client IP (an IPv6 client by its /64, `GATEHOUSE_RATE_LIMIT_IPV6_PREFIX`).
The login (`POST /api/v1/auth/token`, both grants, its second factor and the
passkey login), registration, refresh and
mail-sending (password-reset and verification requests) endpoints have buckets of
their own, per client IP. Only `/api/` is limited, except the OpenAPI document, and
the OpenID provider's two browser endpoints (authorize and logout: anonymous pages that
write audit rows), which share a bucket per client IP; health, the JWKS, discovery,
docs and static assets are not. The provider's back channel (`/oauth2/token` and the
rest) counts per client in its own code (`gatehouse.oidc`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatehouse.auth.tokens import TokenService
from gatehouse.errors import NotAuthenticated
from gatehouse.kit import metrics
from gatehouse.kit.context import VERIFIED_TOKEN
from gatehouse.kit.http import address_key
from gatehouse.kit.middleware import send_error
from gatehouse.ratelimit.limiter import Policy, RateLimiter, RateLimitUnavailable
from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.ratelimit")
_MAX_REPORTED = 10_000

# The two endpoints that send mail share the password-reset bucket: each call can put
# an email in someone's inbox. The token endpoints are anonymous requests like any
# other (a 256-bit token is not guessed at 100 tries an hour).
PASSWORD_RESET_PATH = "/api/v1/auth/password-reset/request"  # noqa: S105 (a path)
VERIFY_EMAIL_REQUEST_PATH = "/api/v1/auth/verify-email/request"
_OWN_BUCKETS: Mapping[str, Policy] = {
    "/api/v1/auth/token": Policy.login,
    # A passwordless login is a login, and a second factor the rest of one: the same
    # per-IP budget, shared with the above (a login with MFA spends two of it).
    "/api/v1/auth/passkey/verify": Policy.login,
    "/api/v1/auth/mfa/verify": Policy.login,
    "/api/v1/auth/register": Policy.register,
    "/api/v1/auth/refresh": Policy.refresh,
    PASSWORD_RESET_PATH: Policy.password_reset,
    VERIFY_EMAIL_REQUEST_PATH: Policy.password_reset,
}
_NOT_LIMITED = frozenset({"/api/v1/openapi.json"})
_BROWSER_PROVIDER = frozenset({"/oauth2/authorize", "/oauth2/end_session"})


def is_limited(path: str) -> bool:
    return (path.startswith("/api/") and path not in _NOT_LIMITED) or path in _BROWSER_PROVIDER


def _user_id(scope: Scope, tokens: TokenService) -> str | None:
    """The user of a valid bearer token (signature and claims only: no database)."""
    for name, value in scope["headers"]:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            try:
                claims = tokens.decode_access_token(token.strip())
            except NotAuthenticated:  # an invalid token is simply anonymous
                return None
            # The principal dependency reuses this: one signature check per request.
            scope.setdefault("state", {})[VERIFIED_TOKEN] = (token.strip(), claims)
            return str(claims.user_id)
    return None


def classify(scope: Scope, tokens: TokenService, ipv6_prefix: int = 64) -> tuple[Policy, str]:
    """Which bucket this request counts against, and whose it is (an IPv6 client by
    its network, see `address_key`)."""
    ip = address_key(scope.get("state", {}).get("client_ip"), ipv6_prefix) or "unknown"
    if scope["path"] in _BROWSER_PROVIDER:
        return Policy.oauth_authorize, ip
    own = _OWN_BUCKETS.get(scope["path"]) if scope["method"] == "POST" else None
    if own is not None:
        return own, ip
    user = _user_id(scope, tokens)
    if user is not None:
        return Policy.authenticated, user
    return Policy.anonymous, ip


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._runtime: Runtime | None = None
        self._limiter: RateLimiter | None = None
        # One log line per caller and window, not one per refused request: an attack
        # must not flood the log it is being watched through.
        self._reported: dict[tuple[str, str], int] = {}

    def limiter(self, runtime: Runtime) -> RateLimiter:
        # Built on the first request: the app's runtime may come from its lifespan.
        if self._limiter is None or self._runtime is not runtime:
            self._runtime = runtime
            self._limiter = RateLimiter(runtime.settings.rate_limit, runtime.redis)
            self._reported.clear()
        return self._limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_limited(scope["path"]):
            await self.app(scope, receive, send)
            return
        runtime: Runtime = scope["app"].state.runtime
        policy, identity = classify(
            scope, runtime.tokens, runtime.settings.rate_limit.rate_limit_ipv6_prefix
        )
        limiter = self.limiter(runtime)
        try:
            decision = await limiter.hit(policy, identity)
        except RateLimitUnavailable:
            retry = max(1, round(runtime.settings.redis.redis_breaker_reset_seconds))
            await send_error(
                send,
                503,
                "SERVICE_UNAVAILABLE",
                f"Rate limiting is unavailable; retry in {retry} seconds",
                headers=[(b"retry-after", str(retry).encode()), (b"cache-control", b"no-store")],
            )
            return
        headers = decision.headers()
        if not decision.allowed:
            self._report(policy, identity, decision.reset)
            retry = decision.retry_after()
            await send_error(
                send,
                429,
                "RATE_LIMITED",
                f"Too many requests; retry in {retry} seconds",
                headers=[
                    *headers,
                    (b"retry-after", str(retry).encode()),
                    (b"cache-control", b"no-store"),
                ],
            )
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _report(self, policy: Policy, identity: str, window_end: float) -> None:
        metrics.RATE_LIMIT_REJECTIONS.labels(policy.value).inc()
        if policy is Policy.login:
            # Either grant: the body, which says which, is never read for a refusal.
            metrics.LOGINS.labels("rate_limited").inc()
        reset = math.ceil(window_end)  # as advertised; the store's own value drifts below a second
        if self._reported.get((policy.value, identity)) == reset:
            return
        if len(self._reported) >= _MAX_REPORTED:
            self._reported.clear()
        self._reported[(policy.value, identity)] = reset
        kind = "user" if policy is Policy.authenticated else "ip"
        log.warning("ratelimit.exceeded", bucket=policy.value, key_kind=kind, reset=reset)
