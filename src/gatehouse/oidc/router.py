"""HTTP ↔ service for the OpenID provider's back channel: discovery, token, userinfo,
revocation and introspection.

These endpoints speak OAuth, not Gatehouse's API: form-encoded bodies in, RFC 6749
`{"error", "error_description"}` out (never the envelope), `Cache-Control: no-store` on
everything that carries a token. They are described by the discovery document and the
RFCs, not by the OpenAPI document (a relying party's library reads the former).

Rate limits: the middleware limits `/api/` only, by caller address; a relying party's
server calls these endpoints for all its users from one address, so they count per
client instead (`GATEHOUSE_RATE_LIMIT_OAUTH_TOKEN`, each endpoint apart): a confidential
client by its client_id once it has authenticated (a stranger who knows the id cannot
spend its budget), a public client, and userinfo's caller, by client_id and address
(anyone can name a public client). A failed client authentication counts against the
caller's address. The discovery document and the JWKS are not limited.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from gatehouse.clients.models import OAuthClient
from gatehouse.clients.schemas import ClientType, GrantType, Scope
from gatehouse.clients.service import AuthMethod
from gatehouse.dependencies import RuntimeDep, UowDep
from gatehouse.kit import metrics
from gatehouse.kit.http import address_key
from gatehouse.oidc import protocol, tokens
from gatehouse.oidc.errors import OAuthError, invalid_request
from gatehouse.oidc.service import ClientCredentials, OAuthService, check_verifier
from gatehouse.ratelimit.limiter import Policy, RateLimiter, RateLimitUnavailable
from gatehouse.runtime import Runtime

router = APIRouter(tags=["oauth2"], include_in_schema=False)

FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# A body of more fields than any request here has is not an OAuth request.
_MAX_FIELDS = 32
# Never read from a URL: they end up in proxy and browser logs (RFC 6749 §3.2).
_SECRET_PARAMS = frozenset(
    {"client_secret", "code", "code_verifier", "refresh_token", "token", "access_token"}
)
AUTH_METHODS = [m.value for m in AuthMethod]
CLAIMS = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "amr",
    "at_hash",
    "email",
    "email_verified",
    "name",
    "role",
]


@router.get(protocol.DISCOVERY_PATH)
async def discovery(runtime: RuntimeDep) -> JSONResponse:
    """OpenID Connect Discovery 1.0: where everything is and what is supported."""
    settings = runtime.settings

    def at(path: str) -> str:
        return protocol.endpoint(settings, path)

    document: dict[str, Any] = {
        "issuer": protocol.issuer(settings),
        "authorization_endpoint": at(protocol.AUTHORIZE_PATH),
        "token_endpoint": at(protocol.TOKEN_PATH),
        "userinfo_endpoint": at(protocol.USERINFO_PATH),
        "jwks_uri": at(protocol.JWKS_PATH),
        "revocation_endpoint": at(protocol.REVOCATION_PATH),
        "introspection_endpoint": at(protocol.INTROSPECTION_PATH),
        "end_session_endpoint": at(protocol.END_SESSION_PATH),
        "scopes_supported": [s.value for s in Scope],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [g.value for g in GrantType],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": CLAIMS,
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})


@router.post(protocol.TOKEN_PATH)
async def token(request: Request, uow: UowDep, runtime: RuntimeDep) -> Response:
    """RFC 6749 §3.2: authorization_code (PKCE S256), refresh_token, client_credentials."""

    async def run() -> Response:
        form = await _form(request)
        service = OAuthService(uow, runtime.settings, runtime.tokens.key)
        client = await _authenticated(request, runtime, service, form, "token")
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise invalid_request("grant_type is required")
        if grant_type == GrantType.authorization_code:
            issued = await service.exchange_code(
                client,
                _required(form, "code"),
                _required(form, "redirect_uri"),
                check_verifier(form.get("code_verifier")),
            )
        elif grant_type == GrantType.refresh_token:
            issued = await service.refresh(
                client, _required(form, "refresh_token"), form.get("scope")
            )
        elif grant_type == GrantType.client_credentials:
            issued = await service.client_credentials(client, form.get("scope"))
        else:
            raise OAuthError(
                "unsupported_grant_type",
                "grant_type must be authorization_code, refresh_token or client_credentials",
            )
        return JSONResponse(issued.body(), headers=NO_STORE)

    return await _answer(run)


@router.api_route(protocol.USERINFO_PATH, methods=["GET", "POST"])
async def userinfo(request: Request, uow: UowDep, runtime: RuntimeDep) -> Response:
    """OIDC Core §5.3, with the access token as `Authorization: Bearer` (RFC 6750 §2.1)."""

    async def run() -> Response:
        bearer = _bearer(request)
        if bearer is not None:
            claims = tokens.verify_access_token(runtime.settings, runtime.tokens.key, bearer)
            if claims is not None:
                await _within_limit(request, runtime, "userinfo", claims.client_id, by_address=True)
        service = OAuthService(uow, runtime.settings, runtime.tokens.key)
        return JSONResponse(await service.userinfo(bearer), headers=NO_STORE)

    return await _answer(run)


@router.post(protocol.REVOCATION_PATH)
async def revoke(request: Request, uow: UowDep, runtime: RuntimeDep) -> Response:
    """RFC 7009: 200 whether or not the token was one of the caller's."""

    async def run() -> Response:
        form = await _form(request)
        service = OAuthService(uow, runtime.settings, runtime.tokens.key)
        client = await _authenticated(request, runtime, service, form, "revoke")
        # token_type_hint is not needed: our tokens say what they are.
        await service.revoke(client, _required(form, "token"))
        return Response(status_code=200, headers=NO_STORE)

    return await _answer(run)


@router.post(protocol.INTROSPECTION_PATH)
async def introspect(request: Request, uow: UowDep, runtime: RuntimeDep) -> Response:
    """RFC 7662: what one of the caller's tokens is; `{"active": false}` otherwise."""

    async def run() -> Response:
        form = await _form(request)
        service = OAuthService(uow, runtime.settings, runtime.tokens.key)
        client = await _authenticated(request, runtime, service, form, "introspect")
        answer = await service.introspect(client, _required(form, "token"))
        return JSONResponse(answer, headers=NO_STORE)

    return await _answer(run)


async def _answer(run: Callable[[], Awaitable[Response]]) -> Response:
    """The endpoint's answer, its OAuth refusal included: returned (not raised), so the
    unit of work commits what a refusal must keep (a replay's revocation, the audit)."""
    try:
        return await run()
    except OAuthError as exc:
        return exc.response()


# --- reading requests ---------------------------------------------------------------------


async def _form(request: Request) -> dict[str, str]:
    """The form body as single values (RFC 6749 §3.2: a parameter sent twice, or with
    no value, is refused or absent); every malformation is invalid_request."""
    if request.query_params.keys() & _SECRET_PARAMS:
        raise invalid_request("Send credentials and tokens in the request body, not the URL")
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != FORM:
        raise invalid_request(f"Send the request body as {FORM}")
    try:
        text = (await request.body()).decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise invalid_request("The request body is not a valid form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise invalid_request(f"{name} is given more than once")
        form[name] = value
    # RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
    return {name: value for name, value in form.items() if value != ""}


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if value is None:
        raise invalid_request(f"{name} is required")
    return value


def _credentials(request: Request, form: dict[str, str]) -> ClientCredentials:
    """RFC 6749 §2.3.1: HTTP Basic (client_secret_basic), or client_id and
    client_secret in the body (client_secret_post), or client_id alone (none)."""
    header = request.headers.get("authorization")
    body_id, body_secret = form.get("client_id"), form.get("client_secret")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise invalid_request("Authenticate the client with HTTP Basic or in the body")
        client_id, secret = _basic(value.strip())
        if body_secret is not None:
            raise invalid_request("Authenticate the client one way only: Basic or the body")
        if body_id is not None and body_id != client_id:
            raise invalid_request("client_id differs from the Basic credentials'")
        return ClientCredentials(client_id, secret, AuthMethod.client_secret_basic)
    if body_id is None:
        raise OAuthError("invalid_client", "Client authentication is required", status=401)
    if body_secret is not None:
        return ClientCredentials(body_id, body_secret, AuthMethod.client_secret_post)
    return ClientCredentials(body_id, None, AuthMethod.none)


def _basic(value: str) -> tuple[str, str]:
    """Both parts form-urldecoded after the base64 (RFC 6749 §2.3.1)."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        decoded = ""
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise OAuthError(
            "invalid_client",
            "Malformed HTTP Basic credentials",
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="gatehouse"'},
        )
    return unquote_plus(client_id), unquote_plus(secret)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


# --- per-client rate limits -----------------------------------------------------------------


async def _authenticated(
    request: Request,
    runtime: Runtime,
    service: OAuthService,
    form: dict[str, str],
    endpoint: str,
) -> OAuthClient:
    credentials = _credentials(request, form)
    try:
        client = await service.authenticate(credentials, endpoint)
    except OAuthError:
        await _within_limit(request, runtime, endpoint, None, by_address=True)
        raise
    public = client.type == ClientType.public
    await _within_limit(request, runtime, endpoint, client.client_id, by_address=public)
    return client


async def _within_limit(
    request: Request,
    runtime: Runtime,
    endpoint: str,
    client_id: str | None,
    *,
    by_address: bool,
) -> None:
    """Count this call in its bucket; 429 (OAuth JSON, Retry-After) past the limit."""
    limits = runtime.settings.rate_limit
    if not limits.rate_limit_enabled:
        return
    identity = f"{endpoint}:{client_id or '-'}"
    if by_address:
        address = address_key(
            getattr(request.state, "client_ip", None), limits.rate_limit_ipv6_prefix
        )
        identity += f":{address or 'unknown'}"
    try:
        decision = await runtime.part(RateLimiter).hit(Policy.oauth_token, identity)
    except RateLimitUnavailable:
        retry = str(max(1, round(runtime.settings.redis.redis_breaker_reset_seconds)))
        raise OAuthError(
            "temporarily_unavailable",
            f"Rate limiting is unavailable; retry in {retry} seconds",
            status=503,
            headers={"Retry-After": retry},
        ) from None
    if not decision.allowed:
        metrics.RATE_LIMIT_REJECTIONS.labels(Policy.oauth_token.value).inc()
        retry = str(decision.retry_after())
        headers = {name.decode(): value.decode() for name, value in decision.headers()}
        raise OAuthError(
            "rate_limited",
            f"Too many requests; retry in {retry} seconds",
            status=429,
            headers={**headers, "Retry-After": retry},
        )
