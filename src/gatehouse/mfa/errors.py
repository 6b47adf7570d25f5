"""The refusals of second factors: the login's MFA step, step-up, enrolment, policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gatehouse.errors import Conflict, Forbidden, GatehouseError, ValidationFailed

STEP_UP_URL = "/api/v1/auth/mfa/step-up"
# Every 401 names its scheme (RFC 9110 §11.6.1), these too.
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gatehouse"'}


class MfaRequired(GatehouseError):
    """The password was right; the login goes on at POST /auth/mfa/verify. Kept
    (`persist`): the mfa_token's row and the password's success bookkeeping stand."""

    status = 401
    code = "MFA_REQUIRED"
    default_message = "A second factor is needed: send a code to /api/v1/auth/mfa/verify"

    def __init__(self, details: Mapping[str, Any]) -> None:
        super().__init__(details=details, headers=_CHALLENGE, persist=True)
        # The browser's device token for the `gatehouse_device` cookie: the password was
        # right, so the source is known from now on (the router sets the cookie).
        self.device_token: str | None = None


class InvalidMfaCode(GatehouseError):
    """A wrong code or assertion at the login's MFA step or a step-up. Kept: the
    mfa_token's failure count and a spent recovery-code attempt must stand."""

    status = 401
    code = "INVALID_MFA_CODE"
    default_message = "The code is not correct"

    def __init__(self, attempts_left: int | None = None) -> None:
        details = {"attempts_left": attempts_left} if attempts_left is not None else {}
        super().__init__(details=details, headers=_CHALLENGE, persist=True)


class WrongEnrolmentCode(GatehouseError):
    """The code that should confirm a new TOTP secret is wrong: the secret stays pending."""

    status = 400
    code = "INVALID_MFA_CODE"
    default_message = "The code does not match the new secret; check the device's clock"


class MfaTokenInvalid(GatehouseError):
    status = 401
    code = "MFA_TOKEN_INVALID"
    default_message = "The login has expired or was used; log in again"

    def __init__(self, *, persist: bool = False) -> None:
        super().__init__(headers=_CHALLENGE, persist=persist)


class MfaThrottled(GatehouseError):
    status = 429
    code = "RATE_LIMITED"
    default_message = "Too many code checks on this account; retry later"

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after))}, persist=True)


class StepUpRequired(Forbidden):
    code = "STEP_UP_REQUIRED"
    default_message = "Confirm it is you with a second factor first (POST the step-up URL)"

    def __init__(self, methods: Sequence[str]) -> None:
        super().__init__(details={"methods": list(methods), "step_up_url": STEP_UP_URL})


class MfaEnrollmentRequired(Forbidden):
    code = "MFA_ENROLLMENT_REQUIRED"
    default_message = "Your role needs a second factor: set one up under /api/v1/users/me/mfa first"


class MfaAlreadyEnabled(Conflict):
    code = "MFA_ALREADY_ENABLED"
    default_message = "An authenticator app is set up already; remove it first to replace it"


class NoPendingTotp(Conflict):
    code = "NO_PENDING_TOTP"
    default_message = "No new authenticator secret is waiting; start with POST /users/me/mfa/totp"


class MethodNotEnrolled(ValidationFailed):
    def __init__(self, method: str) -> None:
        super().__init__({"method": [f"'{method}' is not set up for this account"]})


class NoPasskeyVerifier(ValidationFailed):
    def __init__(self) -> None:
        super().__init__({"method": ["no passkey verifier"]})
