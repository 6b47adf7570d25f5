"""HTTP ↔ service for second factors: the login's MFA step and step-up (under
/api/v1/auth/mfa), your own factors (/api/v1/users/me/mfa), an admin's view and reset
(/api/v1/users/{user_id}/mfa)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status

from gatehouse.auth.router import AnyTokenResponse, TransportHeader, token_answer
from gatehouse.dependencies import (
    AdminUser,
    CurrentUser,
    MfaServiceDep,
    RuntimeDep,
    StaffUser,
    StepUpUser,
)
from gatehouse.kit.openapi import AUTHED, COMMON, errors
from gatehouse.mfa.schemas import (
    MfaStatus,
    MfaVerifyRequest,
    RecoveryCodes,
    StepUpRequest,
    StepUpResponse,
    TotpConfirmRequest,
    TotpEnrolment,
    TotpEnrolRequest,
    TotpStatus,
)
from gatehouse.mfa.service import MfaState, Proof
from gatehouse.passkeys.schemas import PasskeyRead

router = APIRouter(prefix="/api/v1/auth/mfa", tags=["auth"])
users_router = APIRouter(prefix="/api/v1/users", tags=["mfa"], responses=errors(*AUTHED))


def _proof(body: StepUpRequest | MfaVerifyRequest) -> Proof:
    return Proof(
        method=body.method,
        code=body.code,
        challenge_id=body.challenge_id,
        credential=body.credential,
    )


def _status(state: MfaState) -> MfaStatus:
    return MfaStatus(
        enabled=state.enabled,
        required=state.required,
        totp=TotpStatus(enabled=state.totp.enabled, confirmed_at=state.totp.confirmed_at),
        passkeys=[PasskeyRead.model_validate(passkey) for passkey in state.passkeys],
        recovery_codes_left=state.recovery_codes_left,
    )


@router.post("/verify", response_model=AnyTokenResponse, responses=errors(*COMMON, 401))
async def verify(
    body: MfaVerifyRequest,
    request: Request,
    response: Response,
    mfa: MfaServiceDep,
    runtime: RuntimeDep,
    transport: TransportHeader = None,
) -> AnyTokenResponse:
    """Finish a login that answered `401 MFA_REQUIRED`: its `mfa_token` and a second
    factor. The answer is /auth/token's (cookie mode with the same header).

    `401 INVALID_MFA_CODE` (with `attempts_left`), `401 MFA_TOKEN_INVALID` (used,
    expired or out of attempts: log in again), `429 RATE_LIMITED` (too many code checks
    on the account).
    """
    pair = await mfa.verify_login(body.mfa_token, _proof(body))
    return token_answer(pair, request, response, runtime, transport)


@router.post("/step-up", response_model=StepUpResponse, responses=errors(*AUTHED))
async def step_up(body: StepUpRequest, actor: CurrentUser, mfa: MfaServiceDep) -> StepUpResponse:
    """Confirm it is you with a second factor: for a few minutes this session may change
    its factors, email and password (routes that answered `403 STEP_UP_REQUIRED`)."""
    return StepUpResponse(step_up_expires_at=await mfa.step_up(actor, _proof(body)))


@users_router.get("/me/mfa", response_model=MfaStatus)
async def my_mfa(actor: CurrentUser, mfa: MfaServiceDep) -> MfaStatus:
    """Your second factors."""
    return _status(await mfa.state(actor.user_id))


@users_router.post(
    "/me/mfa/totp",
    response_model=TotpEnrolment,
    status_code=status.HTTP_201_CREATED,
    responses=errors(409),
)
async def enrol_totp(
    body: TotpEnrolRequest, actor: CurrentUser, mfa: MfaServiceDep
) -> TotpEnrolment:
    """Start setting up an authenticator app: a new secret, pending until a code from
    the app confirms it (calling again replaces a pending one)."""
    enrolment = await mfa.enrol_totp(actor, body.current_password)
    return TotpEnrolment(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
    )


@users_router.post("/me/mfa/totp/confirm", response_model=RecoveryCodes, responses=errors(409))
async def confirm_totp(
    body: TotpConfirmRequest, actor: CurrentUser, mfa: MfaServiceDep
) -> RecoveryCodes:
    """Confirm the app with a code from it. When this is your first second factor, your
    other sessions end and you get your recovery codes (shown once)."""
    return RecoveryCodes(recovery_codes=await mfa.confirm_totp(actor, body.code))


@users_router.delete("/me/mfa/totp", status_code=status.HTTP_204_NO_CONTENT)
async def remove_totp(actor: StepUpUser, mfa: MfaServiceDep) -> None:
    """Remove the authenticator app (needs a recent step-up)."""
    await mfa.remove_totp(actor)


@users_router.post("/me/mfa/recovery-codes", response_model=RecoveryCodes, responses=errors(409))
async def regenerate_recovery_codes(actor: StepUpUser, mfa: MfaServiceDep) -> RecoveryCodes:
    """Ten new recovery codes; the old ones stop working (needs a recent step-up)."""
    return RecoveryCodes(recovery_codes=await mfa.regenerate_recovery_codes(actor))


@users_router.get("/{user_id:uuid}/mfa", response_model=MfaStatus, responses=errors(404))
async def user_mfa(user_id: uuid.UUID, _: StaffUser, mfa: MfaServiceDep) -> MfaStatus:
    """A user's second factors (admin, readonly)."""
    return _status(await mfa.state(user_id))


@users_router.delete(
    "/{user_id:uuid}/mfa", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404)
)
async def reset_user_mfa(user_id: uuid.UUID, _: AdminUser, mfa: MfaServiceDep) -> None:
    """Remove every second factor of a user, who lost their device: they are mailed and
    logged out everywhere (admin)."""
    await mfa.reset(user_id)
