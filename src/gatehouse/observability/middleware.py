"""The request's side of tracing and error tracking: pure ASGI middleware added just
inside `RequestContextMiddleware` (which sets the request id), and only when the
feature is on."""

from __future__ import annotations

from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from gatehouse.observability import scrub, tracing


class TraceRequestMiddleware:
    """Names the request id (`gatehouse.request_id`) on the request's server span; a
    poll (/health*, /metrics), which has no server span, traces nothing at all."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if tracing.untraced_path(scope["path"]):
            with tracing.untraced():
                await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        if request_id:
            tracing.set_request_id(request_id)
        await self.app(scope, receive, send)


class SentryRequestMiddleware:
    """Reports a request's unhandled error, with its request id and user id.

    The last-resort handler outside (RequestContextMiddleware) answers the 500 and
    logs the error, so Sentry's own ASGI integration never sees it raised: it is
    reported here, on its way out. (The log line then reports the same exception;
    Sentry's deduplication drops that copy.)
    """

    def __init__(self, app: ASGIApp) -> None:
        import sentry_sdk  # lazy: added only with GATEHOUSE_SENTRY_DSN

        self.app = app
        self._sentry = sentry_sdk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        with self._sentry.isolation_scope() as sentry_scope:
            request_id = state.get("request_id")
            if request_id:
                sentry_scope.set_tag(scrub.REQUEST_ID_TAG, request_id)
            sentry_scope.add_event_processor(_user_from(state))
            try:
                await self.app(scope, receive, send)
            except ClientDisconnect:
                raise  # the client left: nothing went wrong
            except Exception as exc:
                self._sentry.capture_exception(exc)
                raise


def _user_from(state: dict[str, Any]) -> Any:
    """The authenticated user's id, read when a report is made (authentication sets it
    in the request's state on the way in)."""

    def add_user(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        user_id = state.get("user_id")
        if user_id and not (event.get("user") or {}).get("id"):
            event["user"] = {"id": str(user_id)}
        return event

    return add_user
