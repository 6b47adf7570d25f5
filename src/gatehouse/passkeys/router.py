"""HTTP ↔ service for passkeys: your own under /users/me/passkeys, and the login's
ceremonies under /auth/passkey."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Body, Request, Response, status

from gatehouse.auth.router import AnyTokenResponse, TransportHeader, token_answer
from gatehouse.dependencies import CurrentUser, PasskeyServiceDep, RuntimeDep
from gatehouse.kit.openapi import AUTHED, COMMON, errors
from gatehouse.passkeys.schemas import (
    CeremonyOptions,
    LoginOptionsRequest,
    PasskeyCreate,
    PasskeyCreated,
    PasskeyLogin,
    PasskeyRead,
    PasskeyRename,
    RegistrationOptionsRequest,
)
from gatehouse.passkeys.service import Ceremony

router = APIRouter(prefix="/api/v1/users", tags=["passkeys"], responses=errors(*AUTHED))
# `{passkey_id:uuid}`: only an id matches, so `/me/passkeys/registration-options` with
# another method is 405, not a malformed id.
login_router = APIRouter(prefix="/api/v1/auth/passkey", tags=["auth"])


def _ceremony(found: Ceremony, response: Response) -> CeremonyOptions:
    # A challenge is single use and personal: no cache may keep or share it.
    response.headers["Cache-Control"] = "no-store"
    return CeremonyOptions(challenge_id=found.challenge_id, options=found.options)


@router.post(
    "/me/passkeys/registration-options", response_model=CeremonyOptions, responses=errors(403)
)
async def registration_options(
    actor: CurrentUser,
    passkeys: PasskeyServiceDep,
    response: Response,
    body: RegistrationOptionsRequest | None = Body(default=None),
) -> CeremonyOptions:
    """Start registering a passkey: pass `options` to `navigator.credentials.create()`.

    Without a second factor yet, send `current_password`; with one, step up first
    (`403 STEP_UP_REQUIRED` otherwise). The challenge is good once, for 5 minutes.
    """
    password = body.current_password if body is not None else None
    return _ceremony(await passkeys.registration_options(actor, password), response)


@router.post(
    "/me/passkeys",
    response_model=PasskeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=errors(409),
)
async def register_passkey(
    body: PasskeyCreate, actor: CurrentUser, passkeys: PasskeyServiceDep
) -> PasskeyCreated:
    """Finish registering: the browser's new credential, under a name of your choice.

    `recovery_codes` holds new recovery codes when this passkey turned MFA on (shown
    once); else it is empty. `400 INVALID_PASSKEY` when the credential does not verify,
    `409 PASSKEY_ALREADY_REGISTERED` when it is registered already.
    """
    passkey, codes = await passkeys.register(actor, body.challenge_id, body.name, body.credential)
    return PasskeyCreated(passkey=PasskeyRead.model_validate(passkey), recovery_codes=codes)


@router.get("/me/passkeys", response_model=list[PasskeyRead])
async def list_passkeys(actor: CurrentUser, passkeys: PasskeyServiceDep) -> list[PasskeyRead]:
    """Your passkeys, oldest first."""
    return [PasskeyRead.model_validate(p) for p in await passkeys.list_mine(actor)]


@router.patch("/me/passkeys/{passkey_id:uuid}", response_model=PasskeyRead, responses=errors(404))
async def rename_passkey(
    passkey_id: uuid.UUID, body: PasskeyRename, actor: CurrentUser, passkeys: PasskeyServiceDep
) -> PasskeyRead:
    """Rename one of your passkeys (1 to 100 characters, trimmed)."""
    return PasskeyRead.model_validate(await passkeys.rename(actor, passkey_id, body.name))


@router.delete(
    "/me/passkeys/{passkey_id:uuid}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404)
)
async def remove_passkey(
    passkey_id: uuid.UUID, actor: CurrentUser, passkeys: PasskeyServiceDep
) -> None:
    """Remove one of your passkeys; needs a recent step-up (`403 STEP_UP_REQUIRED`)."""
    await passkeys.remove(actor, passkey_id)


@router.post("/me/passkeys/authentication-options", response_model=CeremonyOptions)
async def step_up_options(
    actor: CurrentUser, passkeys: PasskeyServiceDep, response: Response
) -> CeremonyOptions:
    """A challenge for stepping up with one of your passkeys (`POST /auth/mfa/step-up`)."""
    return _ceremony(await passkeys.step_up_options(actor), response)


@login_router.post("/options", response_model=CeremonyOptions, responses=errors(*COMMON, 401))
async def login_options(
    body: LoginOptionsRequest, passkeys: PasskeyServiceDep, response: Response
) -> CeremonyOptions:
    """A challenge for `navigator.credentials.get()`.

    `{}`: a passwordless login (any passkey of yours, user verification required), then
    `POST /auth/passkey/verify`. `{"mfa_token"}`: the second step of a password login
    (your passkeys), then `POST /auth/mfa/verify`; `401 MFA_TOKEN_INVALID` when the
    token is unknown, used or expired.
    """
    return _ceremony(await passkeys.login_options(body.mfa_token), response)


@login_router.post("/verify", response_model=AnyTokenResponse, responses=errors(*COMMON, 401))
async def passkey_login(
    body: PasskeyLogin,
    request: Request,
    passkeys: PasskeyServiceDep,
    runtime: RuntimeDep,
    response: Response,
    transport: TransportHeader = None,
) -> AnyTokenResponse:
    """Log in with a passkey alone: the same answer as `POST /auth/token`, in JSON or
    cookie mode (`X-Token-Transport`). `401 INVALID_PASSKEY` for any assertion that
    does not verify (the challenge is spent all the same)."""
    pair = await passkeys.login(body.challenge_id, body.credential)
    return token_answer(pair, request, response, runtime, transport)
