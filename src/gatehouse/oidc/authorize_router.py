"""HTTP ↔ service for the browser side of the OpenID provider: the authorize and logout
endpoints (redirects and small pages, outside the OpenAPI document: they are for
browsers, not API clients), and the JSON routes the client app calls with its bearer
token (the single sign-on cookie, consent, connected apps)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from gatehouse.auth.cookies import _secure
from gatehouse.dependencies import CurrentUser, RuntimeDep, UowDep, request_actor
from gatehouse.kit.openapi import AUTHED, errors
from gatehouse.kit.schemas import RequestBody
from gatehouse.oidc import pages, protocol
from gatehouse.oidc.authorization import (
    AuthorizationService,
    ConfirmLogout,
    ConnectedApp,
    ErrorPage,
    LogoutOutcome,
    Redirect,
)
from gatehouse.runtime import Runtime
from gatehouse.uow import UnitOfWork

router = APIRouter(tags=["oauth2"], include_in_schema=False)
api_router = APIRouter(prefix="/api/v1/oauth2", tags=["oauth2"], responses=errors(*AUTHED))
apps_router = APIRouter(
    prefix="/api/v1/users/me/connected-apps", tags=["oauth2"], responses=errors(*AUTHED)
)

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_FORM = "application/x-www-form-urlencoded"
# An authorize query has a dozen parameters; more is not one.
_MAX_FIELDS = 50


def _service(uow: UnitOfWork, runtime: Runtime) -> AuthorizationService:
    return AuthorizationService(uow, runtime.settings, runtime.tokens.key)


async def get_service(uow: UowDep, runtime: RuntimeDep) -> AuthorizationService:
    return _service(uow, runtime)


async def get_writing_service(
    request: Request, runtime: RuntimeDep
) -> AsyncIterator[AuthorizationService]:
    """The service in a writing unit of work, for the protocol's GETs: an authorize
    request stores a code, a logout ends a session (on SQLite a reading transaction
    cannot become a writing one)."""
    async with runtime.unit_of_work(write=True, actor=request_actor(request)) as uow:
        yield _service(uow, runtime)


ServiceDep = Annotated[AuthorizationService, Depends(get_service)]
WritingServiceDep = Annotated[AuthorizationService, Depends(get_writing_service, scope="function")]


def _browser_cookie(request: Request, runtime: Runtime, value: str, max_age: int) -> str:
    """The provider's cookie: sent only to /oauth2, unreadable by scripts, and Lax, so
    the top-level navigation from a client to /oauth2/authorize carries it."""
    parts = [
        f"{protocol.BROWSER_COOKIE}={value}",
        f"Max-Age={max_age}",
        f"Path={protocol.BROWSER_COOKIE_PATH}",
        "SameSite=Lax",
        "HttpOnly",
    ]
    if _secure(request, runtime.settings.auth):
        parts.append("Secure")
    return "; ".join(parts)


def _query_pairs(query: str) -> list[tuple[str, str]] | None:
    """The parameters in order; one without a value is as if omitted (RFC 6749 §3.1)."""
    try:
        return parse_qsl(query, max_num_fields=_MAX_FIELDS)
    except ValueError:
        return None


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=status.HTTP_302_FOUND, headers=_NO_STORE)


# --- the protocol's browser endpoints ---------------------------------------------------


@router.get(protocol.AUTHORIZE_PATH)
async def authorize(request: Request, service: WritingServiceDep) -> Response:
    """OpenID Connect authorization endpoint (code flow, PKCE required)."""
    pairs = _query_pairs(request.url.query)
    if pairs is None:
        return pages.error_page("The request has too many parameters.")
    outcome = await service.authorize(pairs, request.cookies.get(protocol.BROWSER_COOKIE))
    if isinstance(outcome, ErrorPage):
        return pages.error_page(outcome.message)
    return _redirect(outcome.location)


@router.get(protocol.END_SESSION_PATH)
async def end_session(
    request: Request, service: WritingServiceDep, runtime: RuntimeDep
) -> Response:
    """RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)."""
    params = dict(reversed(_query_pairs(request.url.query) or []))
    return await _end_session(request, service, runtime, params, confirming=False)


@router.post(protocol.END_SESSION_PATH)
async def end_session_form(
    request: Request, service: WritingServiceDep, runtime: RuntimeDep
) -> Response:
    """RP-initiated logout as a form post, and the confirmation page's answer."""
    params = dict(reversed(_query_pairs(request.url.query) or []))
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == _FORM:
        body = (await request.body()).decode("utf-8", "replace")
        params.update(dict(reversed(_query_pairs(body) or [])))
    return await _end_session(request, service, runtime, params, confirming=True)


async def _end_session(
    request: Request,
    service: AuthorizationService,
    runtime: Runtime,
    params: dict[str, str],
    *,
    confirming: bool,
) -> Response:
    cookie = request.cookies.get(protocol.BROWSER_COOKIE)
    outcome = await service.end_session(
        params, cookie, csrf=params.get("csrf"), confirming=confirming
    )
    return _logout_response(outcome, request, runtime)


def _logout_response(outcome: LogoutOutcome, request: Request, runtime: Runtime) -> Response:
    if isinstance(outcome, ConfirmLogout):
        return pages.confirm_logout_page(outcome.fields)
    if isinstance(outcome, ErrorPage):
        return pages.error_page(outcome.message)
    response: Response
    if isinstance(outcome, Redirect):
        response = _redirect(outcome.location)
    else:
        response = pages.signed_out_page()
    response.headers.append("set-cookie", _browser_cookie(request, runtime, "", 0))
    return response


# --- the client app's JSON routes -------------------------------------------------------


class ConsentClient(BaseModel):
    client_id: str
    name: str
    logo_url: str | None


class ConsentRead(BaseModel):
    """What the consent page shows."""

    client: ConsentClient
    scopes: list[str] = Field(description="Every scope the application asks for")
    new_scopes: list[str] = Field(description="Those the person has not allowed it yet")
    redirect_uri: str


class ConsentAnswer(RequestBody):
    query: str = Field(
        min_length=1,
        max_length=8192,
        description="The authorize request's query string, as the consent page got it",
    )


class RedirectTo(BaseModel):
    redirect_to: str = Field(description="Where the browser goes next")


class ConnectedAppRead(BaseModel):
    client_id: str
    name: str
    logo_url: str | None
    scopes: list[str]
    granted_at: datetime
    updated_at: datetime


_AUTHORIZE_PARAMETERS: list[dict[str, Any]] = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
    for name in (
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "prompt",
        "max_age",
        "login_hint",
    )
]


@api_router.post("/session", status_code=status.HTTP_204_NO_CONTENT)
async def start_browser_session(
    actor: CurrentUser,
    service: ServiceDep,
    runtime: RuntimeDep,
    request: Request,
    response: Response,
) -> None:
    """Sign this browser in to the OpenID provider as your current session (the client
    app calls it right after a login): sets the `gatehouse_op` cookie."""
    token, max_age = await service.start_browser_session(actor.session_id)
    response.headers.append("set-cookie", _browser_cookie(request, runtime, token, max_age))


@api_router.get(
    "/consent",
    response_model=ConsentRead,
    openapi_extra={"parameters": _AUTHORIZE_PARAMETERS},
)
async def consent_screen(request: Request, actor: CurrentUser, service: ServiceDep) -> ConsentRead:
    """What an authorize request asks of you (the consent page): the application and
    its scopes, those not yet allowed among them. Takes the authorize query as is."""
    view = await service.consent_view(actor.user_id, request.url.query)
    return ConsentRead(
        client=ConsentClient(
            client_id=view.client.client_id, name=view.client.name, logo_url=view.client.logo_url
        ),
        scopes=list(view.scopes),
        new_scopes=list(view.new_scopes),
        redirect_uri=view.redirect_uri,
    )


@api_router.post("/consent", response_model=RedirectTo)
async def give_consent(
    body: ConsentAnswer,
    actor: CurrentUser,
    service: ServiceDep,
    runtime: RuntimeDep,
    request: Request,
    response: Response,
) -> RedirectTo:
    """Allow the application what it asks for; the browser goes back to authorize.
    The browser's provider cookie is set to this session too, so the code goes to the
    account that said yes."""
    redirect_to = await service.give_consent(actor.user_id, body.query)
    token, max_age = await service.start_browser_session(actor.session_id)
    response.headers.append("set-cookie", _browser_cookie(request, runtime, token, max_age))
    return RedirectTo(redirect_to=redirect_to)


@api_router.post("/consent/deny", response_model=RedirectTo)
async def deny_consent(body: ConsentAnswer, _: CurrentUser, service: ServiceDep) -> RedirectTo:
    """Refuse; the browser goes back to the application with `access_denied`."""
    return RedirectTo(redirect_to=await service.deny_consent(body.query))


def _app(app: ConnectedApp) -> ConnectedAppRead:
    return ConnectedAppRead(
        client_id=app.client.client_id,
        name=app.client.name,
        logo_url=app.client.logo_url,
        scopes=app.scopes,
        granted_at=app.granted_at,
        updated_at=app.updated_at,
    )


@apps_router.get("", response_model=list[ConnectedAppRead])
async def connected_apps(actor: CurrentUser, service: ServiceDep) -> list[ConnectedAppRead]:
    """The applications you log in to with Gatehouse, and what each may see."""
    return [_app(app) for app in await service.connected_apps(actor.user_id)]


@apps_router.delete("/{client_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def disconnect_app(client_id: str, actor: CurrentUser, service: ServiceDep) -> None:
    """Remove an application's access: your consent is forgotten and its tokens stop
    working at once (it asks again next time)."""
    await service.disconnect(actor.user_id, client_id)
