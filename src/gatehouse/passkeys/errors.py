"""The refusals of registering, managing and using passkeys."""

from __future__ import annotations

import uuid

from gatehouse.errors import Conflict, GatehouseError, NotFound

# What a 401 here asks of the client: log in again (RFC 9110 §11.6.1 wants a challenge).
_LOG_IN_AGAIN = {"WWW-Authenticate": 'Bearer realm="gatehouse"'}
STEP_UP_URL = "/api/v1/auth/mfa/step-up"


class InvalidPasskey(GatehouseError):
    """An assertion that does not verify. The message never says which check failed
    (that would guide a forger); `reason` does, for the audit trail."""

    status = 401
    code = "INVALID_PASSKEY"
    default_message = "The passkey could not be verified; try again"

    def __init__(
        self, reason: str, *, user_id: uuid.UUID | None = None, persist: bool = True
    ) -> None:
        # persist: the challenge it spent stays spent (single use, even on failure).
        super().__init__(headers=_LOG_IN_AGAIN, persist=persist)
        self.reason = reason
        # Whose credential it was, when that got known before the refusal.
        self.user_id = user_id


class PasskeyRejected(GatehouseError):
    """A registration whose attestation does not verify."""

    status = 400
    code = "INVALID_PASSKEY"
    default_message = "The new passkey could not be verified; start the registration again"

    def __init__(self, reason: str) -> None:
        super().__init__(details={"credential": ["Verification failed"]}, persist=True)
        self.reason = reason


class PasskeyAlreadyRegistered(Conflict):
    code = "PASSKEY_ALREADY_REGISTERED"
    default_message = "This passkey is already registered"


class PasskeyNotFound(NotFound):
    code = "PASSKEY_NOT_FOUND"

    def __init__(self, passkey_id: object) -> None:
        super().__init__(f"Passkey with ID '{passkey_id}' not found")
