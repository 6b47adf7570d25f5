"""Domain errors and the error envelope (docs/api.md, "Errors").

Services raise these (never an HTTP exception), so the same service runs behind the
API, in a worker and in the CLI. The API maps each one to its status and envelope.

Where an error class lives: the shared bases and the errors more than one feature
raises are here, an error only one feature raises is in that feature's `errors.py`
(`gatehouse.auth.errors`, ...), and an exception no client ever sees stays beside the
code that raises it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar


class GatehouseError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"
    default_message: ClassVar[str] = "Something went wrong"
    # The service already wrote this refusal's audit row; the 403 handler adds none.
    audited: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        persist: bool = False,
    ) -> None:
        self.message = message or self.default_message
        # True for a refusal whose side effects must stand (a replayed refresh token
        # revokes its family): the unit of work commits instead of rolling back.
        self.persist = persist
        self.details = dict(details or {})
        self.headers = dict(headers or {})
        super().__init__(self.message)


class CommandError(GatehouseError):
    """A refusal or failure of an operator command (`gatehouse backup`, `restore`,
    `unlock`): the CLI prints its message in one line; no route raises it, so it is
    never an HTTP answer (and not in docs/api.md's error table)."""


# Where Pydantic says an error is; the field path alone is what a client needs.
_LOC_SKIP = {"body", "query", "path", "header", "cookie"}
# Fields named in one answer: a body of 40,000 unknown keys would otherwise be echoed
# back key by key (a megabyte of answer to a megabyte of request).
MAX_DETAIL_FIELDS = 20


class ValidationFailed(GatehouseError):
    status = 400
    code = "VALIDATION_ERROR"
    default_message = "Invalid input"

    def __init__(self, details: Mapping[str, list[str]], message: str | None = None) -> None:
        super().__init__(message, details=details)

    @classmethod
    def from_pydantic(cls, errors: Sequence[Any]) -> ValidationFailed:
        """Pydantic errors as {"field.path": ["message", ...]}, never echoing the input."""
        details: dict[str, list[str]] = {}
        for error in errors:
            loc = [str(part) for part in error.get("loc", ()) if str(part) not in _LOC_SKIP]
            # Model-level validators report at the root of the body.
            key = ".".join(loc) or "body"
            message = str(error.get("msg", "Invalid value")).removeprefix("Value error, ")
            if error.get("type") == "extra_forbidden":
                message = "Unknown field"
            elif error.get("type") == "json_invalid":
                key, message = "body", "Malformed JSON"
            details.setdefault(key, []).append(message)
        if len(details) <= MAX_DETAIL_FIELDS:
            return cls(details)
        rest = len(details) - MAX_DETAIL_FIELDS
        kept = dict(list(details.items())[:MAX_DETAIL_FIELDS])
        return cls(kept, f"Invalid input; {rest} more invalid field(s) not listed")


class EmailTaken(ValidationFailed):
    def __init__(self) -> None:
        super().__init__({"email": ["Email already exists"]})


class NotAuthenticated(GatehouseError):
    status = 401
    code = "UNAUTHORIZED"
    default_message = "Authentication required"

    def __init__(self, message: str | None = None, *, error: str | None = None) -> None:
        challenge = 'Bearer realm="gatehouse"'
        if error:
            challenge += f', error="{error}"'
        super().__init__(message, headers={"WWW-Authenticate": challenge})


class Forbidden(GatehouseError):
    status = 403
    code = "FORBIDDEN"
    default_message = "You do not have permission to do this"


class NotFound(GatehouseError):
    status = 404
    code = "NOT_FOUND"
    default_message = "Not found"


class UserNotFound(NotFound):
    code = "USER_NOT_FOUND"

    def __init__(self, user_id: object) -> None:
        super().__init__(f"User with ID '{user_id}' not found")


class Conflict(GatehouseError):
    status = 409
    code = "CONFLICT"
    default_message = "The request conflicts with the current state"


class VersionConflict(Conflict):
    code = "VERSION_CONFLICT"
    default_message = "The resource changed since you read it; read it again and retry"


class LastAdmin(Conflict):
    code = "LAST_ADMIN"
    default_message = "The last active admin cannot be demoted or deleted"


class ServiceUnavailable(GatehouseError):
    status = 503
    code = "SERVICE_UNAVAILABLE"
    default_message = "The service is temporarily unavailable; retry shortly"

    def __init__(self, message: str | None = None, retry_after: int = 5) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


def utc_timestamp() -> str:
    """RFC 3339 UTC with a Z, as in the source's examples."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def envelope(
    code: str,
    message: str,
    request_id: str | None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": dict(details or {}),
            "timestamp": utc_timestamp(),
            "request_id": request_id,
        }
    }
