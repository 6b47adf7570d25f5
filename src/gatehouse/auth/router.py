"""HTTP ↔ service for login, refresh, logout, registration, sessions and JWKS."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Header, Request, Response, status
from pydantic import BaseModel, ValidationError

from gatehouse.auth.cookies import (
    CSRF_HEADER,
    DEVICE_COOKIE,
    REFRESH_COOKIE,
    TRANSPORT_HEADER,
    TokenTransport,
    check_csrf,
    clear_session_cookies,
    set_device_cookie,
    set_session_cookies,
)
from gatehouse.auth.errors import UnsupportedGrantType
from gatehouse.auth.schemas import (
    JWKS,
    CookieTokenResponse,
    LogoutRequest,
    OAuthForm,
    PasswordGrant,
    RefreshGrant,
    RefreshRequest,
    RegisterRequest,
    SessionRead,
    SignupAccepted,
    TokenResponse,
)
from gatehouse.auth.service import TokenPair
from gatehouse.dependencies import (
    AdminUser,
    AuthServiceDep,
    CurrentUser,
    RuntimeDep,
    StaffUser,
)
from gatehouse.errors import ValidationFailed
from gatehouse.kit.openapi import AUTHED, COMMON, errors
from gatehouse.mfa.errors import MfaRequired
from gatehouse.runtime import Runtime
from gatehouse.users.schemas import UserCreate

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
sessions_router = APIRouter(prefix="/api/v1/users", tags=["sessions"], responses=errors(*AUTHED))
jwks_router = APIRouter(tags=["auth"])

TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105
_CREDENTIAL_PARAMS = frozenset({"username", "password", "refresh_token", "client_secret"})
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
SIGNUP_ACCEPTED = SignupAccepted(
    status="check_your_email",
    message="Thanks: we have sent an email to this address; follow it to continue.",
)


TransportHeader = Annotated[
    TokenTransport | None,
    Header(
        alias=TRANSPORT_HEADER,
        description="`cookie`: the refresh token goes in the HttpOnly `gatehouse_refresh` "
        "cookie, not in the body (browser apps); `json` (default): in the body",
    ),
]
CsrfHeader = Annotated[
    str | None,
    Header(
        alias=CSRF_HEADER,
        description="Cookie mode: the value of the `gatehouse_csrf` cookie",
    ),
]
AnyTokenResponse = TokenResponse | CookieTokenResponse


def _token_response(pair: TokenPair, response: Response) -> TokenResponse:
    response.headers.update(_NO_STORE)
    return TokenResponse(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


def _cookie_response(
    pair: TokenPair, request: Request, response: Response, runtime: Runtime
) -> CookieTokenResponse:
    response.headers.update(_NO_STORE)
    csrf = set_session_cookies(response, request, pair.refresh_token, runtime.settings.auth)
    return CookieTokenResponse(
        access_token=pair.access_token, expires_in=pair.expires_in, csrf_token=csrf
    )


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc.errors()) from None


async def _read_grant(request: Request) -> PasswordGrant | RefreshGrant:
    if request.query_params.keys() & _CREDENTIAL_PARAMS:
        # Never act on credentials in a URL: they end up in proxy and browser logs.
        raise ValidationFailed({"query": ["Send credentials in the request body, not the URL"]})
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        form = await request.form()
        for key in form:
            if len(form.getlist(key)) > 1:
                raise ValidationFailed({key: ["Given more than once"]})
        data = {key: value for key, value in form.items() if isinstance(value, str)}
        if data.get("grant_type") not in (None, "password", "refresh_token"):
            raise UnsupportedGrantType()
        parsed: OAuthForm = _parse(OAuthForm, data)
        if parsed.grant_type == "refresh_token":
            return _parse(
                RefreshGrant, {"grant_type": "refresh_token", "refresh_token": parsed.refresh_token}
            )
        return _parse(PasswordGrant, {"username": parsed.username, "password": parsed.password})
    try:
        payload = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: JSON nested thousands deep is malformed for us, not a crash.
        raise ValidationFailed({"body": ["Malformed JSON"]}) from None
    if not isinstance(payload, dict):
        raise ValidationFailed({"body": ["Expected a JSON object"]})
    grant_type = payload.get("grant_type", "password")
    if grant_type == "refresh_token":
        return _parse(RefreshGrant, payload)
    if grant_type != "password":
        raise UnsupportedGrantType()
    return _parse(PasswordGrant, payload)


# Read from the raw request, so the app adds them to the document's components.
TOKEN_REQUEST_MODELS = (PasswordGrant, RefreshGrant, OAuthForm)

_TOKEN_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/PasswordGrant"},
                    {"$ref": "#/components/schemas/RefreshGrant"},
                ]
            },
            "example": {"username": "user@example.com", "password": "securepassword"},
        },
        "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/OAuthForm"}},
    },
}


@router.post(
    "/token",
    response_model=AnyTokenResponse,
    responses=errors(*COMMON, 401),
    openapi_extra={"requestBody": _TOKEN_BODY},
)
async def issue_token(
    request: Request,
    auth: AuthServiceDep,
    runtime: RuntimeDep,
    response: Response,
    transport: TransportHeader = None,
) -> AnyTokenResponse:
    """Log in (password grant) or rotate a refresh token (refresh_token grant).

    JSON as in the source, or the OAuth2 form, so Swagger UI's Authorize button works.
    Browser apps log in with `X-Token-Transport: cookie`: the refresh token is then set
    as an HttpOnly cookie instead of returned (the refresh_token grant is JSON mode only).
    A password login also sets the HttpOnly `gatehouse_device` cookie: sent back on the
    next logins, it lets this browser in while the account is under a guessing attack.
    """
    grant = await _read_grant(request)
    if isinstance(grant, RefreshGrant):
        if transport is TokenTransport.cookie:
            raise ValidationFailed(
                {
                    TRANSPORT_HEADER: [
                        "The refresh_token grant is JSON mode only; "
                        "refresh from the cookie at POST /api/v1/auth/refresh"
                    ]
                }
            )
        pair = await auth.refresh(grant.refresh_token)
    else:
        try:
            pair = await auth.login(
                grant.username, grant.password, request.cookies.get(DEVICE_COOKIE)
            )
        except MfaRequired as exc:
            # The password was right: this browser is known from now on, as after any
            # right password (the cookie's path is this endpoint's).
            if exc.device_token is not None:
                carrier = Response()
                _device_cookie(exc.device_token, request, carrier, runtime)
                exc.headers["set-cookie"] = carrier.headers["set-cookie"]
            raise
    return token_answer(pair, request, response, runtime, transport)


def _device_cookie(token: str, request: Request, response: Response, runtime: Runtime) -> None:
    days = runtime.settings.rate_limit.login_known_source_days
    set_device_cookie(response, request, token, runtime.settings.auth, days * 86400)


def token_answer(
    pair: TokenPair,
    request: Request,
    response: Response,
    runtime: Runtime,
    transport: TokenTransport | None,
) -> AnyTokenResponse:
    """A login's or refresh's success, as every login route answers it: the pair in the
    body, or in cookie mode the refresh token as a cookie; the device cookie when the
    login has a device token."""
    if pair.device_token is not None:
        _device_cookie(pair.device_token, request, response, runtime)
    if transport is TokenTransport.cookie:
        return _cookie_response(pair, request, response, runtime)
    return _token_response(pair, response)


@router.post("/refresh", response_model=AnyTokenResponse, responses=errors(*COMMON, 403))
async def refresh(
    request: Request,
    auth: AuthServiceDep,
    runtime: RuntimeDep,
    response: Response,
    transport: TransportHeader = None,
    csrf: CsrfHeader = None,
    body: RefreshRequest | None = Body(default=None),
) -> AnyTokenResponse:
    """Trade a refresh token for a new pair; the old refresh token stops working.

    JSON mode: the token in the body. Cookie mode: no body (or `{}`), the
    `gatehouse_refresh` cookie, and `X-CSRF-Token` equal to the `gatehouse_csrf` cookie
    (else `403 CSRF_FAILED`); the new refresh token is set as a cookie again.
    """
    if body is not None and body.refresh_token is not None:
        # A token in the body wins: JSON mode, as before cookie mode existed.
        pair = await auth.refresh(body.refresh_token)
        if transport is TokenTransport.cookie:
            return _cookie_response(pair, request, response, runtime)
        return _token_response(pair, response)
    token = request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise ValidationFailed(
            {"refresh_token": ["Field required (or the gatehouse_refresh cookie in cookie mode)"]}
        )
    check_csrf(request, csrf, runtime.settings.server)
    pair = await auth.refresh(token)
    # A token from the cookie goes back into the cookie, never into a script's reach.
    return _cookie_response(pair, request, response, runtime)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=errors(*AUTHED))
async def logout(
    actor: CurrentUser,
    auth: AuthServiceDep,
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    body: LogoutRequest | None = Body(default=None),
) -> None:
    """End this session, or every session of yours with `{"all": true}`.

    Also expires the cookie-mode cookies (`gatehouse_refresh`, `gatehouse_csrf`).
    """
    await auth.logout(actor, everywhere=bool(body and body.all))
    clear_session_cookies(response, request, runtime.settings.auth)


@router.post(
    "/register",
    response_model=SignupAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors(*COMMON, 403),
)
async def register(body: RegisterRequest, auth: AuthServiceDep) -> SignupAccepted:
    """Sign up. The new account's role is always `user`.

    The answer is the same whether the address was free or has an account already (then
    its owner is mailed instead), so sign-up tells nobody who has an account. To start
    using a new account, log in with the same credentials.
    """
    await auth.register(UserCreate(email=body.email, name=body.name, password=body.password))
    return SIGNUP_ACCEPTED


@jwks_router.get("/.well-known/jwks.json", response_model=JWKS)
async def jwks(runtime: RuntimeDep, response: Response) -> dict[str, Any]:
    """The public keys that verify Gatehouse access tokens (RS256, by `kid`)."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return runtime.tokens.key.jwks()


def _sessions(rows: list[Any], current: uuid.UUID | None) -> list[SessionRead]:
    return [
        SessionRead.model_validate(row).model_copy(update={"current": row.id == current})
        for row in rows
    ]


@sessions_router.get("/me/sessions", response_model=list[SessionRead])
async def my_sessions(actor: CurrentUser, auth: AuthServiceDep) -> list[SessionRead]:
    """Where you are logged in."""
    return _sessions(await auth.list_sessions(actor.user_id), actor.session_id)


@sessions_router.delete("/me/sessions", status_code=status.HTTP_204_NO_CONTENT)
async def end_my_other_sessions(actor: CurrentUser, auth: AuthServiceDep) -> None:
    """End every session of yours except this one."""
    await auth.end_sessions(actor.user_id, keep=actor.session_id)


@sessions_router.delete(
    "/me/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404)
)
async def end_my_session(session_id: uuid.UUID, actor: CurrentUser, auth: AuthServiceDep) -> None:
    """End one of your sessions (this one too, if you name it)."""
    await auth.end_session(actor.user_id, session_id)


@sessions_router.get("/{user_id}/sessions", response_model=list[SessionRead], responses=errors(404))
async def user_sessions(
    user_id: uuid.UUID, _: StaffUser, auth: AuthServiceDep
) -> list[SessionRead]:
    """A user's active sessions (admin, readonly)."""
    return _sessions(await auth.list_sessions(user_id), None)


@sessions_router.delete(
    "/{user_id}/sessions", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404)
)
async def end_user_sessions(user_id: uuid.UUID, _: AdminUser, auth: AuthServiceDep) -> None:
    """End every session of a user: their refresh and access tokens stop working (admin)."""
    await auth.end_sessions(user_id)


@sessions_router.delete(
    "/{user_id}/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(404),
)
async def end_user_session(
    user_id: uuid.UUID, session_id: uuid.UUID, _: AdminUser, auth: AuthServiceDep
) -> None:
    """End one session of a user (admin)."""
    await auth.end_session(user_id, session_id)
