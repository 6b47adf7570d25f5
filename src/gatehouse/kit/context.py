"""Who is acting, and the request id that log lines and error envelopes carry.

The actor travels explicitly, in the unit of work (`gatehouse.uow`); the request id also
lives in a context variable, for the log lines and error envelopes of code that has no
unit of work at hand (middleware, exception handlers, the job runners).
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, replace

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
# The authenticated caller of the request being served, or of the request a job came
# from (it travels with the job, as the request id does): error reports name it.
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def current_user_id() -> str | None:
    return user_id_var.get()


# Key in the ASGI scope's state: (bearer token, its verified claims), set by the first
# layer that verifies the token so later layers need not check the signature again.
VERIFIED_TOKEN = "verified_access_token"  # noqa: S105 (a key name)


# The audit trail's actor role for what Gatehouse does by itself (jobs, sweeps, the CLI).
SYSTEM_ROLE = "system"


@dataclass(frozen=True)
class Actor:
    """Who acts in a unit of work: a user once authenticated (else nobody: an anonymous
    request, or Gatehouse itself in a job or the CLI), from which address and client, for
    which request. The audit trail and the outbox take it from here."""

    user_id: uuid.UUID | None = None
    role: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    def as_user(self, user_id: uuid.UUID, role: str) -> Actor:
        return replace(self, user_id=user_id, role=role)

    @classmethod
    def system(cls, request_id: str | None = None) -> Actor:
        """Gatehouse itself (a job, a sweep, the CLI); keeps the request id a job carries."""
        return cls(
            role=SYSTEM_ROLE,
            request_id=request_id if request_id is not None else current_request_id(),
        )
