"""Email verification and password reset: public endpoints, tokens arrive by email.

The two `.../request` endpoints always answer 202 with the same body, so they tell
nobody which addresses have an account; both count against the password-reset rate
limit (per client IP).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from gatehouse.dependencies import RuntimeDep, UowDep
from gatehouse.kit.openapi import COMMON, errors
from gatehouse.recovery.schemas import (
    Accepted,
    EmailRequest,
    PasswordReset,
    TokenBody,
    VerifiedUser,
)
from gatehouse.recovery.service import RecoveryService

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=errors(*COMMON))

ACCEPTED = Accepted(message="If an account with this email exists, we have sent it an email.")


async def get_recovery_service(uow: UowDep, runtime: RuntimeDep) -> RecoveryService:
    return RecoveryService(uow, runtime.settings, runtime.hasher, runtime.protection)


RecoveryServiceDep = Annotated[RecoveryService, Depends(get_recovery_service)]


@router.post("/verify-email/request", response_model=Accepted, status_code=status.HTTP_202_ACCEPTED)
async def request_verification(body: EmailRequest, recovery: RecoveryServiceDep) -> Accepted:
    """Email a new verification link to this address, if it has an unverified account."""
    await recovery.request_verification(body.email)
    return ACCEPTED


@router.post("/verify-email", response_model=VerifiedUser)
async def verify_email(body: TokenBody, recovery: RecoveryServiceDep) -> VerifiedUser:
    """Confirm an email address with the token from the verification link (works once)."""
    user = await recovery.verify_email(body.token)
    return VerifiedUser.model_validate(user)


@router.post(
    "/password-reset/request", response_model=Accepted, status_code=status.HTTP_202_ACCEPTED
)
async def request_password_reset(body: EmailRequest, recovery: RecoveryServiceDep) -> Accepted:
    """Email a password-reset link to this address, if it has an account."""
    await recovery.request_password_reset(body.email)
    return ACCEPTED


@router.post("/email-change/undo", status_code=status.HTTP_204_NO_CONTENT)
async def undo_email_change(body: TokenBody, recovery: RecoveryServiceDep) -> None:
    """Put back the address an account left, with the token mailed to it (works once,
    for 7 days); every session of the account ends. Then reset the password."""
    await recovery.undo_email_change(body.token)


@router.post("/password-reset", status_code=status.HTTP_204_NO_CONTENT)
async def reset_password(body: PasswordReset, recovery: RecoveryServiceDep) -> None:
    """Set a new password with the reset link's token (works once); all sessions end."""
    await recovery.reset_password(body.token, body.new_password)
