"""Per-request context that code deep in a call chain may need (the request id)."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


# Key in the ASGI scope's state: (bearer token, its verified claims), set by the first
# layer that verifies the token so later layers need not check the signature again.
VERIFIED_TOKEN = "verified_access_token"  # noqa: S105 (a key name)
