"""The FastAPI application: routers, middleware, error handlers, lifespan."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import Headers
from starlette.responses import Response

from gatehouse import __version__, exception_handlers, observability, web
from gatehouse.audit.router import router as audit_router
from gatehouse.auth.router import (
    TOKEN_PATH,
    TOKEN_REQUEST_MODELS,
    jwks_router,
    sessions_router,
)
from gatehouse.auth.router import router as auth_router
from gatehouse.clients.router import router as clients_router
from gatehouse.config import MetricsAccess, Settings, get_settings
from gatehouse.errors import envelope
from gatehouse.health.router import router as health_router
from gatehouse.kit import openapi
from gatehouse.kit.context import request_id_var
from gatehouse.kit.deprecation import DeprecationMiddleware
from gatehouse.kit.middleware import (
    BodyGuardMiddleware,
    HeadMiddleware,
    RequestContextMiddleware,
)
from gatehouse.kit.routing import check_unambiguous
from gatehouse.logging import configure_logging
from gatehouse.metrics import exposition
from gatehouse.metrics.router import router as metrics_router
from gatehouse.mfa.router import router as mfa_router
from gatehouse.mfa.router import users_router as mfa_users_router
from gatehouse.observability import errors, tracing
from gatehouse.observability.middleware import SentryRequestMiddleware, TraceRequestMiddleware
from gatehouse.oidc.authorize_router import api_router as oauth_api_router
from gatehouse.oidc.authorize_router import apps_router as connected_apps_router
from gatehouse.oidc.authorize_router import router as authorize_router
from gatehouse.oidc.router import router as oidc_router
from gatehouse.overview.router import router as overview_router
from gatehouse.passkeys.router import login_router as passkey_login_router
from gatehouse.passkeys.router import router as passkeys_router
from gatehouse.privacy.router import router as privacy_router
from gatehouse.ratelimit import RateLimitMiddleware
from gatehouse.recovery.router import router as recovery_router
from gatehouse.runtime import Runtime
from gatehouse.users.router import router as users_router
from gatehouse.webhooks.router import router as webhooks_router
from gatehouse.worker.setup import start_jobs

log = structlog.get_logger("gatehouse.app")

DESCRIPTION = """
Gatehouse owns a product's users: accounts, login, roles and sessions.

Authenticate with `POST /api/v1/auth/token` (your email is the username) and send
`Authorization: Bearer <access_token>`. Access tokens are RS256
JWTs; other systems verify them offline with the keys at `/.well-known/jwks.json`.

Every error answers with one envelope:
`{"error": {"code", "message", "details", "timestamp", "request_id"}}`.
"""


class EnvelopeCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight in the error envelope (its own answer
    is a plain-text 400)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        # Starlette's text names what was refused: "Disallowed CORS origin, method".
        reason = bytes(response.body).decode("utf-8", "replace")
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in {"content-length", "content-type"}
        }
        return JSONResponse(
            envelope("VALIDATION_ERROR", reason, request_id_var.get()),
            status_code=response.status_code,
            headers=headers,
        )


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or (runtime.settings if runtime else get_settings())
    # Before the routes are built: Sentry's FastAPI integration wraps their handlers.
    observability.setup(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = rt = runtime or Runtime.create(settings)
        # A runtime handed in with its own job queue (tests) keeps it.
        stop_jobs = await start_jobs(rt) if rt.jobs is None else None
        exposition.record_build("sqlite" if settings.is_sqlite else "postgresql")
        log.info(
            "app.started",
            env=settings.server.env.value,
            database="sqlite" if settings.is_sqlite else "postgresql",
            version=__version__,
        )
        if not settings.rate_limit.rate_limit_enabled:
            log.warning(
                "ratelimit.disabled",
                message="GATEHOUSE_RATE_LIMIT_ENABLED=false: no request is rate limited",
            )
        try:
            yield
        finally:
            if stop_jobs is not None:
                await stop_jobs()
            if owned:
                # The last lines of a graceful stop: what was in flight is done.
                log.info("runtime.closed", closed=await rt.close())
            # This process's live gauges (in flight, pool) stop counting in the sums.
            exposition.process_died(os.getpid())
            log.info("app.stopped")

    app = FastAPI(
        title="Gatehouse",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    if runtime is not None:
        app.state.runtime = runtime
    exception_handlers.install(app)
    openapi.install(
        app,
        title="Gatehouse",
        version=__version__,
        description=DESCRIPTION,
        models=TOKEN_REQUEST_MODELS,
    )

    # Where each URL lives: docs/architecture.md. `/api/v1/users/...` is shared by the
    # users, sessions (auth) and privacy routers; `check_unambiguous` below makes their
    # order irrelevant: an app in which one route would shadow another is never built.
    routers = (
        health_router,
        metrics_router,
        jwks_router,
        auth_router,
        recovery_router,
        users_router,
        sessions_router,
        privacy_router,
        passkeys_router,
        passkey_login_router,
        webhooks_router,
        clients_router,
        audit_router,
        overview_router,
        mfa_router,
        mfa_users_router,
        oidc_router,
        authorize_router,
        oauth_api_router,
        connected_apps_router,
    )
    check_unambiguous(route for router in routers for route in router.routes)
    for router in routers:
        app.include_router(router)
    if settings.docs_enabled:
        _mount_docs(app, settings)
    # Last: every API route and the docs win over the web apps' catch-all.
    web.install(app, settings)

    app.add_middleware(
        BodyGuardMiddleware,
        max_body_bytes=settings.server.max_body_bytes,
        form_paths=[TOKEN_PATH],
        timeout_seconds=settings.server.body_timeout_seconds,
    )
    # Inside RequestContextMiddleware (it sets the client IP) and CORS (a 429 carries the
    # CORS headers, and preflights are not counted); outside the body guard.
    if settings.rate_limit.rate_limit_enabled:
        app.add_middleware(RateLimitMiddleware)
    if settings.server.cors_origins:
        app.add_middleware(
            EnvelopeCORSMiddleware,
            allow_origins=settings.server.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "X-Request-ID",
                "X-CSRF-Token",
                "X-Token-Transport",
            ],
            # Cookie mode across origins; never with "*" (it would echo any origin).
            allow_credentials="*" not in settings.server.cors_origins,
            expose_headers=[
                "ETag",
                "X-Request-ID",
                "Location",
                "Retry-After",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                "Deprecation",
                "Sunset",
                "Link",
            ],
            max_age=600,
        )
    # Inside the request context, so a HEAD's log line says HEAD.
    app.add_middleware(HeadMiddleware)
    # Only when on (nothing on the path otherwise); inside the request context, which
    # sets the request id they name and answers the 500 they report.
    if tracing.enabled():
        app.add_middleware(TraceRequestMiddleware)
    if errors.enabled():
        app.add_middleware(SentryRequestMiddleware)
    app.add_middleware(
        RequestContextMiddleware,
        trusted_proxies=settings.server.trusted_proxies,
        count_requests=settings.observability.metrics_access is not MetricsAccess.off,
    )
    # Outermost: a deprecated route's headers go on every answer of it, the last-resort
    # 500 and the 429s and 413s sent before routing included.
    app.add_middleware(DeprecationMiddleware)
    # The server span wraps every middleware (the request's own log line is in it).
    tracing.instrument_app(app)
    return app


def _mount_docs(app: FastAPI, settings: Settings) -> None:
    """The OpenAPI document, and Swagger UI and ReDoc on assets Gatehouse ships
    (`gatehouse.web`: local scripts only, sandboxed pages)."""

    # The app comes from the request, not the closure: FastAPI caches what it learns
    # about each endpoint function in a process-wide cache, which would otherwise keep
    # every app ever built (and its runtime) alive, one per test.
    async def openapi_json(request: Request) -> JSONResponse:
        """The OpenAPI document."""
        return JSONResponse(request.app.openapi())

    async def swagger(request: Request) -> HTMLResponse:
        return web.docs_page("swagger", "Gatehouse — API docs", request.app.openapi())

    async def redoc(request: Request) -> HTMLResponse:
        return web.docs_page("redoc", "Gatehouse — API reference", request.app.openapi())

    for path in ("/openapi.json", "/api/v1/openapi.json"):
        app.add_api_route(path, openapi_json, include_in_schema=False, methods=["GET"])
    app.add_api_route("/docs", swagger, include_in_schema=False, methods=["GET"])
    app.add_api_route("/redoc", redoc, include_in_schema=False, methods=["GET"])
    app.router.routes.append(web.DocsAssetsRoute(settings))


def app_factory() -> Any:
    """For `uvicorn --factory gatehouse.app:app_factory` (each worker builds its own)."""
    settings = get_settings()
    configure_logging(settings.server.log_level, settings.log_format)
    app = create_app(settings)
    # What the imports and the app's construction made lives as long as the process, and
    # every full collection walked all of it: ~200,000 objects, ~100 ms, a pause every few
    # seconds under load that set the p95 and p99 of every scenario (benchmarks/README.md).
    # Frozen, the collector walks only what the requests leave behind.
    gc.collect()
    gc.freeze()
    return app
