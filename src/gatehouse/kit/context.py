"""Per-request context that code deep in a call chain may need (the request id)."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


# Key in the ASGI scope's state: (bearer token, its verified claims), set by the first
# layer that verifies the token so later layers need not check the signature again.
VERIFIED_TOKEN = "verified_access_token"  # noqa: S105 (a key name)


@dataclass(frozen=True)
class Client:
    """Who is on the other end of this request, for the audit trail."""

    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID
    role: str


client_var: ContextVar[Client | None] = ContextVar("client", default=None)
# The authenticated caller of this request (or job), once known.
actor_var: ContextVar[Actor | None] = ContextVar("actor", default=None)
