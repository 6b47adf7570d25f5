"""One place maps every error to the envelope (docs/api.md, "Errors") and its status."""

from __future__ import annotations

import uuid

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from gatehouse.audit.trail import Entry
from gatehouse.dependencies import request_actor
from gatehouse.errors import (
    GatehouseError,
    ServiceUnavailable,
    ValidationFailed,
    VersionConflict,
    envelope,
)
from gatehouse.kit.context import request_id_var

log = structlog.get_logger("gatehouse.errors")

# The codes of the framework's HTTP errors (an unknown path, a wrong method, the body
# guard's 413), public so a test can hold the documented error codes to them.
HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("VALIDATION_ERROR", "Invalid input"),
    401: ("UNAUTHORIZED", "Authentication required"),
    403: ("FORBIDDEN", "You do not have permission to do this"),
    404: ("NOT_FOUND", "No such resource"),
    405: ("METHOD_NOT_ALLOWED", "This method is not allowed on this resource"),
    406: ("NOT_ACCEPTABLE", "Cannot produce a representation you accept"),
    409: ("CONFLICT", "The request conflicts with the current state"),
    413: ("PAYLOAD_TOO_LARGE", "The request body is too large"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Send the request body as application/json"),
    429: ("RATE_LIMITED", "Too many requests"),
}
# An HTTP error of a status without a code of its own above.
HTTP_FALLBACK: tuple[str, str] = ("HTTP_ERROR", "Request failed")


def error_response(exc: GatehouseError) -> JSONResponse:
    return JSONResponse(
        envelope(exc.code, exc.message, request_id_var.get(), exc.details),
        status_code=exc.status,
        headers=exc.headers,
    )


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatehouseError)  # noqa: S101
    if exc.status == 403 and not exc.audited:
        await _audit_denial(request, exc)
    return error_response(exc)


async def _audit_denial(request: Request, exc: GatehouseError) -> None:
    """A refused request is audited (`authz.denied`) in a transaction of its own: the
    request's own unit of work has rolled back."""
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        return
    route = request.scope.get("route")
    entry = Entry(
        "authz.denied",
        outcome="denied",
        reason=exc.code.lower(),
        details={"method": request.method, "route": getattr(route, "path", request.url.path)},
    )
    actor = request_actor(request)
    user_id = getattr(request.state, "user_id", None)
    if user_id is not None:
        actor = actor.as_user(uuid.UUID(user_id), request.state.user_role)
    try:
        async with runtime.unit_of_work(actor=actor) as uow:
            uow.audit.record(entry)
    except Exception:  # the refusal stands; its audit row is reported missing
        log.exception("audit.write_failed", action=entry.action)


async def _request_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    return error_response(ValidationFailed.from_pydantic(exc.errors()))


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)  # noqa: S101
    code, message = HTTP_CODES.get(exc.status_code, HTTP_FALLBACK)
    if exc.status_code == 413 and isinstance(exc.detail, str):
        message = exc.detail
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return JSONResponse(
        envelope(code, message, request_id_var.get()),
        status_code=exc.status_code,
        headers=headers,
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's).

    Asked of each route through `matches()` alone: FastAPI keeps included routers as
    single entries of `app.routes`, which have no `methods` of their own. HEAD is
    answered wherever GET is (`kit.middleware.HeadMiddleware`).
    """
    allowed = {
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.routes
        )
    }
    if "GET" in allowed:
        allowed.add("HEAD")
    return [method for method in _METHODS if method in allowed]


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # The database is down, restarting or out of connections: say so, never trace.
    log.warning("db.unavailable", error_type=type(exc).__name__)
    return error_response(ServiceUnavailable("The database is unavailable; retry shortly"))


async def _dbapi(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)  # noqa: S101
    if exc.connection_invalidated:
        return await _database_unavailable(request, exc)
    raise exc


async def _stale(_: Request, __: Exception) -> JSONResponse:
    return error_response(VersionConflict())


def install(app: FastAPI) -> None:
    app.add_exception_handler(GatehouseError, _domain)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.add_exception_handler(PoolTimeoutError, _database_unavailable)
    app.add_exception_handler(ConnectionError, _database_unavailable)
    app.add_exception_handler(DBAPIError, _dbapi)
    app.add_exception_handler(StaleDataError, _stale)
