"""The browser side of the OpenID provider: who the browser is (the `gatehouse_op`
cookie), the authorize decision (a code, the login page, the consent page or an error
sent back to the client), consent, RP-initiated logout and the apps a person is
connected to. Never commits: the caller's unit of work does.

Where an authorize request may send the browser is decided first: until the client and
the redirect URI are known to be registered, nothing is redirected (an error page
instead: an authorization server that redirects to any address is an open redirector,
RFC 6749 §4.1.2.1). Every later refusal goes back to the client's redirect URI, with
`iss` (RFC 9207) so the client knows which provider answered.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gatehouse.audit.trail import Entry
from gatehouse.auth.models import Session
from gatehouse.auth.repository import SessionRepository
from gatehouse.auth.service import amr_of
from gatehouse.auth.tokens import SigningKey
from gatehouse.clients.errors import ClientNotFound
from gatehouse.clients.models import OAuthClient, OAuthConsent
from gatehouse.clients.repository import ClientRepository, ConsentRepository
from gatehouse.clients.schemas import GrantType, Scope
from gatehouse.config import Settings
from gatehouse.errors import NotAuthenticated
from gatehouse.kit.time import utcnow
from gatehouse.oidc import protocol
from gatehouse.oidc.errors import OAuthRequestInvalid
from gatehouse.oidc.models import OAuthBrowserSession
from gatehouse.oidc.repository import BrowserSessionRepository, GrantRepository
from gatehouse.oidc.tokens import verify_id_token_hint
from gatehouse.uow import UnitOfWork
from gatehouse.users.models import User
from gatehouse.users.repository import UserRepository

# The client app's pages (served by Gatehouse itself, relative to its origin).
LOGIN_PAGE = "/login"
CONSENT_PAGE = "/consent"
# The mark a login sent by prompt=login or max_age must postdate (epoch seconds).
GH_AFTER = "gh_after"
LOGOUT_REASON = "oidc_logout"
CONSENT_REVOKED = "consent_revoked"

PROMPTS = frozenset({"none", "login", "consent"})
SCOPES = frozenset(scope.value for scope in Scope)
# RFC 7636 §4.2: the S256 challenge is 43 characters; the grammar allows up to 128.
_CHALLENGE = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_DIGITS = re.compile(r"[0-9]{1,10}")
_NONCE_MAX = 512
_HINT_MAX = 254
_STATE_MAX = 2048
# A cookie value longer than this is none of ours (ours: 43 characters).
_COOKIE_MAX = 100
_CLIENT_ID_MAX = 64


class UntrustedRequest(Exception):
    """No registered place to send the browser to: an error page, never a redirect."""

    def __init__(self, reason: str, message: str, client: OAuthClient | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.client = client


class Refusal(Exception):
    """An OAuth error (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6) for the client."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class AuthorizeRequest:
    """An authorize request that passed every check of its own (not yet who asks)."""

    client: OAuthClient
    redirect_uri: str
    # The query as received (each parameter once), to send the browser back to it.
    pairs: tuple[tuple[str, str], ...]
    scopes: tuple[str, ...]
    code_challenge: str
    state: str | None = None
    nonce: str | None = None
    prompt: frozenset[str] = frozenset()
    max_age: int | None = None
    login_hint: str | None = None
    gh_after: int | None = None

    @property
    def query(self) -> str:
        return urlencode(self.pairs)


@dataclass(frozen=True)
class Redirect:
    location: str
    # Whether the browser's provider cookie is to be cleared (after a logout).
    clear_cookie: bool = False


@dataclass(frozen=True)
class ErrorPage:
    message: str


@dataclass(frozen=True)
class SignedOut:
    pass


@dataclass(frozen=True)
class ConfirmLogout:
    """Ask before ending the session: the form's hidden fields, CSRF value included."""

    fields: dict[str, str]


@dataclass(frozen=True)
class BrowserLogin:
    """The person a browser is signed in as, by its provider cookie."""

    session: Session
    user: User


@dataclass(frozen=True)
class ConsentView:
    client: OAuthClient
    scopes: tuple[str, ...]
    new_scopes: tuple[str, ...]
    redirect_uri: str


@dataclass
class ConnectedApp:
    client: OAuthClient
    scopes: list[str]
    granted_at: datetime
    updated_at: datetime


AuthorizeOutcome = Redirect | ErrorPage
LogoutOutcome = Redirect | SignedOut | ConfirmLogout | ErrorPage


def with_query(uri: str, params: Iterable[tuple[str, str | None]]) -> str:
    """`uri` with `params` added to its query (those it has already are kept)."""
    parts = urlsplit(uri)
    kept = parse_qsl(parts.query, keep_blank_values=True)
    added = [(name, value) for name, value in params if value is not None]
    return urlunsplit(parts._replace(query=urlencode([*kept, *added])))


def logout_csrf(cookie_token: str) -> str:
    """The logout form's CSRF value: derived from the browser's HttpOnly cookie, which a
    cross-site page can neither read nor guess, so only Gatehouse's own page has it."""
    return hmac.new(cookie_token.encode(), b"gatehouse end_session", hashlib.sha256).hexdigest()


class AuthorizationService:
    def __init__(self, uow: UnitOfWork, settings: Settings, key: SigningKey) -> None:
        self.uow = uow
        self.settings = settings
        self.key = key
        session = uow.session
        self.clients = ClientRepository(session)
        self.consents = ConsentRepository(session)
        self.grants = GrantRepository(session)
        self.browsers = BrowserSessionRepository(session)
        self.sessions = SessionRepository(session)
        self.users = UserRepository(session)
        self.issuer = protocol.issuer(settings)

    # --- GET /oauth2/authorize ----------------------------------------------------------

    async def authorize(
        self, pairs: Sequence[tuple[str, str]], cookie: str | None
    ) -> AuthorizeOutcome:
        """Where to send the browser: the client with a code or an error, the login or
        the consent page, or (no trustworthy redirect URI) an error page."""
        try:
            client, redirect_uri = await self._target(pairs)
        except UntrustedRequest as exc:
            self._audit_authorize(exc.client, "failure", exc.reason)
            return ErrorPage(exc.message)
        state = dict(pairs).get("state")
        try:
            request = self._validate(client, redirect_uri, pairs)
            return await self._decide(request, cookie)
        except Refusal as exc:
            self._audit_authorize(client, "failure", exc.error)
            return Redirect(self._error_uri(redirect_uri, exc.error, exc.description, state))

    async def _target(self, pairs: Sequence[tuple[str, str]]) -> tuple[OAuthClient, str]:
        """The client and its registered redirect URI, or UntrustedRequest."""
        names = [name for name, _ in pairs]
        for name in ("client_id", "redirect_uri"):
            if names.count(name) > 1:
                raise UntrustedRequest("duplicate_parameter", f"{name} is given more than once.")
        params = dict(pairs)
        client_id = params.get("client_id")
        if not client_id:
            raise UntrustedRequest("missing_client_id", "The request names no client_id.")
        client = None
        if len(client_id) <= _CLIENT_ID_MAX:
            client = await self.clients.by_client_id(client_id)
        if client is None:
            raise UntrustedRequest("unknown_client", "This application is not registered.")
        if not client.enabled:
            raise UntrustedRequest("client_disabled", "This application is disabled.", client)
        if GrantType.authorization_code.value not in client.grant_types:
            raise UntrustedRequest(
                "unauthorized_client", "This application may not ask people to log in.", client
            )
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            raise UntrustedRequest(
                "missing_redirect_uri", "The request has no redirect_uri.", client
            )
        if redirect_uri not in client.redirect_uris:
            raise UntrustedRequest(
                "redirect_uri_mismatch",
                "The redirect_uri is not one registered for this application.",
                client,
            )
        return client, redirect_uri

    def _validate(
        self, client: OAuthClient, redirect_uri: str, pairs: Sequence[tuple[str, str]]
    ) -> AuthorizeRequest:
        """Every check of the request's own parameters; Refusal on the first failure."""
        params = _single(pairs)
        if "request" in params:
            raise Refusal("request_not_supported", "Request objects are not supported.")
        if "request_uri" in params:
            raise Refusal("request_uri_not_supported", "request_uri is not supported.")
        response_type = params.get("response_type")
        if not response_type:
            raise Refusal("invalid_request", "response_type is required.")
        if response_type != "code":
            raise Refusal("unsupported_response_type", "Only response_type=code is supported.")
        if params.get("response_mode", "query") != "query":
            raise Refusal("invalid_request", "Only response_mode=query is supported.")
        return AuthorizeRequest(
            client=client,
            redirect_uri=redirect_uri,
            pairs=tuple(pairs),
            scopes=_scopes(client, params.get("scope")),
            code_challenge=_challenge(params),
            state=_bounded(params, "state", _STATE_MAX),
            nonce=_bounded(params, "nonce", _NONCE_MAX),
            prompt=_prompt(params.get("prompt")),
            max_age=_number(params, "max_age"),
            login_hint=_bounded(params, "login_hint", _HINT_MAX),
            gh_after=_number(params, GH_AFTER),
        )

    async def _decide(self, request: AuthorizeRequest, cookie: str | None) -> Redirect:
        now = utcnow()
        login = await self.browser_login(cookie, now)
        if login is None:
            return self._to_login(request, now, reauthenticate=False, fresh=False)
        freshness = _freshness(request, login.session.created_at, now)
        if freshness is not None:
            return self._to_login(request, now, reauthenticate=freshness, fresh=True)
        self.uow.act_as(self.uow.actor.as_user(login.user.id, login.user.role))
        if await self._needs_consent(request, login.user):
            if "none" in request.prompt:
                raise Refusal("consent_required", "The person has not consented to this.")
            return Redirect(f"{CONSENT_PAGE}?{request.query}")
        return self._issue(request, login, now)

    def _to_login(
        self, request: AuthorizeRequest, now: datetime, *, reauthenticate: bool, fresh: bool
    ) -> Redirect:
        """To the login page, which comes back to this request once the person is in;
        `reauthenticate`: the request wants a new login, marked by `gh_after`."""
        if "none" in request.prompt:
            raise Refusal("login_required", "The person must log in.")
        pairs: list[tuple[str, str]] = list(request.pairs)
        if reauthenticate:
            pairs = _without_prompt(pairs, "login")
            pairs = [(k, v) for k, v in pairs if k != GH_AFTER]
            pairs.append((GH_AFTER, str(int(now.timestamp()))))
        query = [("return_to", f"{protocol.AUTHORIZE_PATH}?{urlencode(pairs)}")]
        if request.login_hint:
            query.append(("login_hint", request.login_hint))
        if fresh:
            query.append(("fresh", "1"))
        return Redirect(f"{LOGIN_PAGE}?{urlencode(query)}")

    async def _needs_consent(self, request: AuthorizeRequest, user: User) -> bool:
        if request.client.trusted:
            return False
        if "consent" in request.prompt:
            return True
        consent = await self.consents.get(user.id, request.client.id)
        granted = set(consent.scopes) if consent is not None else set()
        return not set(request.scopes) <= granted

    def _issue(self, request: AuthorizeRequest, login: BrowserLogin, now: datetime) -> Redirect:
        grant, code = protocol.new_code_grant(
            client_pk=request.client.id,
            user_id=login.user.id,
            session_id=login.session.id,
            auth_version=login.user.auth_version,
            auth_time=login.session.created_at,
            amr=amr_of(login.session.amr),
            scopes=request.scopes,
            redirect_uri=request.redirect_uri,
            code_challenge=request.code_challenge,
            nonce=request.nonce,
            now=now,
        )
        self.grants.add(grant)
        self._audit_authorize(request.client, "success", None, scopes=request.scopes)
        return Redirect(
            with_query(
                request.redirect_uri,
                [("code", code), ("state", request.state), ("iss", self.issuer)],
            )
        )

    def _error_uri(self, redirect_uri: str, error: str, description: str, state: str | None) -> str:
        return with_query(
            redirect_uri,
            [
                ("error", error),
                ("error_description", description),
                ("state", state),
                ("iss", self.issuer),
            ],
        )

    def _audit_authorize(
        self,
        client: OAuthClient | None,
        outcome: str,
        reason: str | None,
        scopes: Sequence[str] = (),
    ) -> None:
        details: dict[str, Any] = {}
        if client is not None:
            details["client_id"] = client.client_id
        if scopes:
            details["scopes"] = list(scopes)
        self.uow.audit.record(
            Entry(
                "oauth.authorize",
                outcome=outcome,
                reason=reason,
                target_type="client",
                target_id=str(client.id) if client is not None else None,
                details=details,
            ),
            always=outcome != "success",
        )

    # --- who the browser is -------------------------------------------------------------

    async def browser_login(self, cookie: str | None, now: datetime) -> BrowserLogin | None:
        """The live login session and user behind a provider cookie, else None."""
        if not cookie or len(cookie) > _COOKIE_MAX:
            return None
        browser = await self.browsers.get(protocol.digest(cookie))
        if browser is None or browser.expires_at <= now:
            return None
        login = await self.sessions.get(browser.session_id)
        if login is None or login.revoked_at is not None:
            return None
        if login.expires_at <= now or login.absolute_expires_at <= now:
            return None
        user = await self.users.get(login.user_id)
        if user is None:
            return None
        return BrowserLogin(login, user)

    async def start_browser_session(self, session_id: uuid.UUID) -> tuple[str, int]:
        """A new provider cookie for a login session: (its value, its max age in seconds),
        standing as long as the login session may."""
        now = utcnow()
        login = await self.sessions.get(session_id)
        if login is None or login.revoked_at is not None:
            raise NotAuthenticated("The session has ended; log in again", error="invalid_token")
        token = secrets.token_urlsafe(32)
        self.browsers.add(
            OAuthBrowserSession(
                token_hash=protocol.digest(token),
                session_id=login.id,
                created_at=now,
                expires_at=login.absolute_expires_at,
            )
        )
        return token, max(0, int((login.absolute_expires_at - now).total_seconds()))

    # --- consent (the client app's page, with its bearer token) -------------------------

    async def checked(self, query: str) -> AuthorizeRequest:
        """An authorize query checked as /oauth2/authorize checks it, or
        OAuthRequestInvalid naming the OAuth error."""
        # RFC 6749 §3.1: a parameter without a value is as if omitted.
        pairs = parse_qsl(query)
        try:
            client, redirect_uri = await self._target(pairs)
        except UntrustedRequest as exc:
            error = "invalid_request" if exc.client is not None else "invalid_client"
            raise OAuthRequestInvalid(error, exc.message) from None
        try:
            return self._validate(client, redirect_uri, pairs)
        except Refusal as exc:
            raise OAuthRequestInvalid(exc.error, exc.description) from None

    async def consent_view(self, user_id: uuid.UUID, query: str) -> ConsentView:
        request = await self.checked(query)
        consent = await self.consents.get(user_id, request.client.id)
        granted = set(consent.scopes) if consent is not None else set()
        return ConsentView(
            client=request.client,
            scopes=request.scopes,
            new_scopes=tuple(scope for scope in request.scopes if scope not in granted),
            redirect_uri=request.redirect_uri,
        )

    async def give_consent(self, user_id: uuid.UUID, query: str) -> str:
        """Record the consent; where the browser goes next (back to authorize)."""
        request = await self.checked(query)
        await self.consents.grant(user_id, request.client.id, request.scopes, utcnow())
        self._audit_client("oauth.consent", request.client, scopes=list(request.scopes))
        pairs = _without_prompt(list(request.pairs), "consent")
        return f"{protocol.AUTHORIZE_PATH}?{urlencode(pairs)}"

    async def deny_consent(self, query: str) -> str:
        """The person said no: where the browser goes (the client, with access_denied)."""
        request = await self.checked(query)
        self._audit_client("oauth.consent_denied", request.client, scopes=list(request.scopes))
        return self._error_uri(
            request.redirect_uri,
            "access_denied",
            "The person did not allow access.",
            request.state,
        )

    # --- GET|POST /oauth2/end_session ---------------------------------------------------

    async def end_session(
        self, params: dict[str, str], cookie: str | None, *, csrf: str | None, confirming: bool
    ) -> LogoutOutcome:
        """RP-initiated logout. With an ID token of the signed-in person as the hint,
        or a confirmed form, the login session ends; without either, the person is
        asked first (a page that only Gatehouse can submit)."""
        now = utcnow()
        login = await self.browser_login(cookie, now)
        hint = params.get("id_token_hint")
        claims = verify_id_token_hint(self.settings, self.key, hint) if hint else None
        target = await self._post_logout_target(params, claims)
        if login is not None and not _hint_names(claims, login.user):
            if not confirming:
                return ConfirmLogout(_confirm_fields(params, claims, cookie))
            if cookie is None or not csrf or not hmac.compare_digest(csrf, logout_csrf(cookie)):
                return ErrorPage("This sign-out form is not valid any more. Sign out again.")
        if login is not None:
            await self._log_out(login, now, client_id=params.get("client_id"))
        if target is None:
            return SignedOut()
        return Redirect(target, clear_cookie=True)

    async def _post_logout_target(
        self, params: dict[str, str], claims: dict[str, Any] | None
    ) -> str | None:
        """The post-logout redirect URI with `state`, when registered for the client the
        hint's audience or `client_id` names (both: they must agree); else None."""
        uri = params.get("post_logout_redirect_uri")
        if not uri:
            return None
        audience = claims.get("aud") if claims else None
        named = [audience] if isinstance(audience, str) else list(audience or [])
        client_id = params.get("client_id")
        if client_id and named and client_id not in named:
            return None
        name = client_id or (named[0] if len(named) == 1 else None)
        if not isinstance(name, str) or len(name) > _CLIENT_ID_MAX:
            return None
        client = await self.clients.by_client_id(name)
        if client is None or not client.enabled or uri not in client.post_logout_redirect_uris:
            return None
        return with_query(uri, [("state", params.get("state"))])

    async def _log_out(self, login: BrowserLogin, now: datetime, client_id: str | None) -> None:
        """End the login session, its browser cookies and its grants (those with
        offline_access were asked for to outlive it, and stay)."""
        session_id = login.session.id
        await self.sessions.revoke(session_id, now, LOGOUT_REASON)
        await self.browsers.delete_for_session(session_id)
        revoked = await self.grants.revoke_for_session(session_id, now, LOGOUT_REASON)
        self.uow.act_as(self.uow.actor.as_user(login.user.id, login.user.role))
        details: dict[str, Any] = {"session_id": str(session_id), "grants_revoked": revoked}
        if client_id and len(client_id) <= _CLIENT_ID_MAX:
            details["client_id"] = client_id
        self.uow.audit.record(
            Entry("oauth.logout", target_type="user", target_id=str(login.user.id), details=details)
        )

    # --- connected apps -----------------------------------------------------------------

    async def connected_apps(self, user_id: uuid.UUID) -> list[ConnectedApp]:
        """The clients the person consented to, and those never asked (trusted ones)
        that hold a grant of theirs; most recently changed first."""
        apps = {
            client.id: _from_consent(consent, client)
            for consent, client in await self.consents.list(user_id)
        }
        consented = set(apps)
        for grant in await self.grants.active_for_user(user_id):
            # A code never exchanged gave the client nothing.
            if grant.code_used_at is None or grant.oauth_client_id in consented:
                continue
            app = apps.get(grant.oauth_client_id)
            if app is None:
                client = await self.clients.get(grant.oauth_client_id)
                if client is None:
                    continue
                app = apps[client.id] = ConnectedApp(client, [], grant.created_at, grant.created_at)
            app.scopes = sorted(set(app.scopes) | set(grant.scopes))
            app.granted_at = min(app.granted_at, grant.created_at)
            app.updated_at = max(app.updated_at, grant.created_at)
        return sorted(apps.values(), key=lambda app: app.updated_at, reverse=True)

    async def disconnect(self, user_id: uuid.UUID, client_id: str) -> None:
        """Forget the consent and revoke every grant of the client's (its tokens stop
        working at once); ClientNotFound when there was nothing to remove."""
        client = None
        if len(client_id) <= _CLIENT_ID_MAX:
            client = await self.clients.by_client_id(client_id)
        if client is None:
            raise ClientNotFound(client_id)
        forgot = await self.consents.revoke(user_id, client.id)
        revoked = await self.grants.revoke_for_user_and_client(
            user_id, client.id, utcnow(), CONSENT_REVOKED
        )
        if not forgot and not revoked:
            raise ClientNotFound(client_id)
        self._audit_client("oauth.consent_revoke", client, grants_revoked=revoked)

    def _audit_client(self, action: str, client: OAuthClient, **details: Any) -> None:
        self.uow.audit.record(
            Entry(
                action,
                target_type="client",
                target_id=str(client.id),
                details={"client_id": client.client_id, **details},
            )
        )


# --- the request's parameters -------------------------------------------------------------


def _single(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The parameters by name; each at most once (RFC 6749 §3.1)."""
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise Refusal("invalid_request", f"{name} is given more than once.")
        params[name] = value
    return params


def _scopes(client: OAuthClient, scope: str | None) -> tuple[str, ...]:
    requested = tuple(dict.fromkeys((scope or "").split()))
    if not requested:
        raise Refusal("invalid_scope", "scope is required (openid for an ID token).")
    unknown = [name for name in requested if name not in SCOPES]
    if unknown:
        raise Refusal("invalid_scope", f"Unknown scope: {unknown[0][:50]}.")
    refused = [name for name in requested if name not in client.scopes]
    if refused:
        raise Refusal("invalid_scope", f"This application may not ask for {refused[0]}.")
    return requested


def _challenge(params: dict[str, str]) -> str:
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if not challenge or not method:
        raise Refusal(
            "invalid_request", "PKCE is required: code_challenge and code_challenge_method=S256."
        )
    if method != "S256":
        raise Refusal("invalid_request", "code_challenge_method must be S256.")
    if not _CHALLENGE.fullmatch(challenge):
        raise Refusal("invalid_request", "code_challenge is not a valid S256 challenge.")
    return challenge


def _prompt(value: str | None) -> frozenset[str]:
    """The prompt values Gatehouse acts on. Others are ignored, as OIDC Core §3.1.2.1
    allows (`select_account`: a browser is signed in as one account at a time)."""
    prompt = frozenset((value or "").split())
    if "none" in prompt and len(prompt) > 1:
        raise Refusal("invalid_request", "prompt=none cannot be combined with other values.")
    return prompt & PROMPTS


def _number(params: dict[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not _DIGITS.fullmatch(value):
        raise Refusal("invalid_request", f"{name} must be a number of seconds.")
    return int(value)


def _bounded(params: dict[str, str], name: str, limit: int) -> str | None:
    value = params.get(name)
    if value is not None and len(value) > limit:
        raise Refusal("invalid_request", f"{name} is longer than {limit} characters.")
    return value or None


def _without_prompt(pairs: list[tuple[str, str]], value: str) -> list[tuple[str, str]]:
    """The query with `value` taken out of `prompt` (and `prompt` gone when empty)."""
    out: list[tuple[str, str]] = []
    for name, given in pairs:
        if name == "prompt":
            rest = " ".join(part for part in given.split() if part != value)
            if rest:
                out.append((name, rest))
            continue
        out.append((name, given))
    return out


def _freshness(request: AuthorizeRequest, auth_time: datetime, now: datetime) -> bool | None:
    """Whether the login is too old for the request: True (log in again, and mark the
    request), False (again: the mark is still later than the login), None (fine).

    A login made after the request's own mark satisfies `max_age` too: that login is
    as recent as the request could make it, and the ID token's `auth_time` says when.
    """
    if "login" in request.prompt:
        return True
    if request.gh_after is not None:
        return False if auth_time.timestamp() < request.gh_after else None
    if request.max_age is not None and (now - auth_time).total_seconds() > request.max_age:
        return True
    return None


def _confirm_fields(
    params: dict[str, str], claims: dict[str, Any] | None, cookie: str | None
) -> dict[str, str]:
    """The confirmation form's fields: where to go afterwards, for which client (a
    verified hint's audience when the request named none), and the CSRF value."""
    kept = ("post_logout_redirect_uri", "state", "client_id")
    fields = {name: params[name] for name in kept if params.get(name)}
    audience = claims.get("aud") if claims else None
    if "client_id" not in fields and isinstance(audience, str):
        fields["client_id"] = audience
    fields["csrf"] = logout_csrf(cookie or "")
    return fields


def _hint_names(claims: dict[str, Any] | None, user: User) -> bool:
    return claims is not None and claims.get("sub") == str(user.id)


def _from_consent(consent: OAuthConsent, client: OAuthClient) -> ConnectedApp:
    return ConnectedApp(client, list(consent.scopes), consent.granted_at, consent.updated_at)
