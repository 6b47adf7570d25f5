"""The refusals of logging in, refreshing, registering and ending sessions."""

from __future__ import annotations

from gatehouse.errors import CommandError, Forbidden, GatehouseError, NotFound


class InvalidCredentials(GatehouseError):
    status = 401
    code = "INVALID_CREDENTIALS"
    default_message = "Invalid email or password"


class InvalidGrant(GatehouseError):
    status = 400
    code = "INVALID_GRANT"
    default_message = "The refresh token is invalid, expired or revoked"


class UnsupportedGrantType(GatehouseError):
    status = 400
    code = "UNSUPPORTED_GRANT_TYPE"
    default_message = "grant_type must be 'password' or 'refresh_token'"


class RegistrationDisabled(Forbidden):
    audited = True
    code = "REGISTRATION_DISABLED"
    default_message = "Self-registration is switched off"


class CsrfFailed(Forbidden):
    code = "CSRF_FAILED"
    default_message = (
        "The refresh cookie needs the X-CSRF-Token header (the gatehouse_csrf cookie's "
        "value) from an allowed origin"
    )


class LoginThrottled(GatehouseError):
    status = 429
    code = "RATE_LIMITED"
    default_message = "Too many failed logins from your address; retry later"

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after))})


class SessionNotFound(NotFound):
    code = "SESSION_NOT_FOUND"

    def __init__(self, session_id: object) -> None:
        super().__init__(f"Session with ID '{session_id}' not found")


class NoSuchAccount(NotFound):
    code = "USER_NOT_FOUND"

    def __init__(self, email: str) -> None:
        super().__init__(f"No account has the address {email!r}")


class UnlockUnavailable(CommandError):
    """`gatehouse unlock` cannot reach where the locks are kept: nothing was unlocked."""

    status = 503
    code = "UNLOCK_UNAVAILABLE"
