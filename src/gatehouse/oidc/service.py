"""The OpenID provider's back channel: the token endpoint's grants, userinfo,
revocation (RFC 7009) and introspection (RFC 7662). Never commits: the caller's unit of
work does.

Every refusal is an `OAuthError`, raised before anything is written, or after a write
that must stand (a replayed code or refresh token revokes its grant): the router answers
it and lets the unit of work commit, so those revocations and the refusal's audit row
are kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gatehouse.audit.trail import Entry
from gatehouse.auth.repository import SessionRepository
from gatehouse.auth.tokens import SigningKey
from gatehouse.clients.errors import InvalidClient
from gatehouse.clients.models import OAuthClient
from gatehouse.clients.repository import ClientRepository
from gatehouse.clients.schemas import ClientType, GrantType, Scope
from gatehouse.clients.service import AuthMethod, ClientService
from gatehouse.config import Settings
from gatehouse.kit.time import utcnow
from gatehouse.oidc import protocol, tokens
from gatehouse.oidc.errors import OAuthError, invalid_grant, invalid_request, invalid_scope
from gatehouse.oidc.models import OAuthGrant, OAuthRefreshToken
from gatehouse.oidc.repository import GrantRepository
from gatehouse.uow import UnitOfWork
from gatehouse.users.models import User
from gatehouse.users.repository import UserRepository

# RFC 7636 §4.1: 43 to 128 characters of the unreserved set.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# Scopes about a person: a client acting as itself (client_credentials) has none.
USER_SCOPES = frozenset({Scope.openid, Scope.profile, Scope.email, Scope.offline_access})
OPENID = Scope.openid.value
OFFLINE = Scope.offline_access.value
BEARER = "Bearer"
REFRESH_TOKEN = "refresh_token"  # noqa: S105


@dataclass(frozen=True)
class ClientCredentials:
    """How the caller said who it is (RFC 6749 §2.3): the router reads them from the
    Authorization header or the body."""

    client_id: str
    secret: str | None
    method: AuthMethod


@dataclass(frozen=True)
class Issued:
    """The token endpoint's answer (RFC 6749 §5.1, OIDC Core §3.1.3.3)."""

    access_token: str
    expires_in: int
    scopes: tuple[str, ...]
    id_token: str | None = None
    refresh_token: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": BEARER,
            "expires_in": self.expires_in,
            "scope": " ".join(self.scopes),
        }
        if self.id_token is not None:
            body["id_token"] = self.id_token
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


def pkce_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.6, S256: BASE64URL(SHA256(verifier)) equals the challenge."""
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest())
    # Bytes: compare_digest refuses str with anything but ASCII in it.
    return hmac.compare_digest(computed.rstrip(b"="), challenge.encode())


def profile_claims(user: User, scopes: Sequence[str]) -> dict[str, Any]:
    """What each scope lets a client read about the person (ID token and userinfo)."""
    claims: dict[str, Any] = {}
    if Scope.email in scopes:
        claims["email"] = user.email
        claims["email_verified"] = user.email_verified_at is not None
    if Scope.profile in scopes:
        claims["name"] = user.name
    if Scope.roles in scopes:
        claims["role"] = user.role
    return claims


def parse_scope(value: str | None) -> list[str] | None:
    """A `scope` parameter as its distinct values, in order; None when absent."""
    if value is None:
        return None
    return list(dict.fromkeys(value.split()))


def _invalid_token(description: str) -> OAuthError:
    """RFC 6750 §3.1: a bearer token that is not (or no longer) good."""
    challenge = f'Bearer error="invalid_token", error_description="{description}"'
    return OAuthError(
        "invalid_token", description, status=401, headers={"WWW-Authenticate": challenge}
    )


class OAuthService:
    def __init__(self, uow: UnitOfWork, settings: Settings, key: SigningKey) -> None:
        self.uow = uow
        self.settings = settings
        self.key = key
        self.grants = GrantRepository(uow.session)
        self.users = UserRepository(uow.session)
        self.clients = ClientRepository(uow.session)
        self.sessions = SessionRepository(uow.session)

    # --- client authentication --------------------------------------------------------

    async def authenticate(self, credentials: ClientCredentials, endpoint: str) -> OAuthClient:
        """The client the credentials prove, or 401 invalid_client (with the Basic
        challenge when Basic was used), audited."""
        try:
            return await ClientService(self.uow).authenticate(
                credentials.client_id, credentials.secret, credentials.method
            )
        except InvalidClient as exc:
            self._audit(
                f"oauth.{endpoint}",
                None,
                outcome="failure",
                reason="invalid_client",
                details={"method": credentials.method.value},
            )
            raise OAuthError(
                exc.oauth_error, exc.message, status=exc.status, headers=exc.headers
            ) from None

    # --- the token endpoint ----------------------------------------------------------

    async def exchange_code(
        self,
        client: OAuthClient,
        code: str,
        redirect_uri: str,
        verifier: str,
    ) -> Issued:
        """authorization_code (RFC 6749 §4.1.3, PKCE RFC 7636 §4.6): the code is spent
        once; a second presentation revokes the grant and every token issued under it."""
        grant_type = GrantType.authorization_code.value
        if grant_type not in client.grant_types:
            raise self._refused(
                client, grant_type, "unauthorized_client", _unauthorized(grant_type)
            )
        now = utcnow()
        grant = await self.grants.by_code_hash(protocol.digest(code))
        if grant is None or grant.oauth_client_id != client.id:
            reason = "unknown_code" if grant is None else "other_client"
            raise self._refused(client, grant_type, reason, _bad_code())
        if grant.code_used_at is not None:
            raise await self._replayed(client, grant, now, "code_reused")
        if grant.revoked_at is not None:
            raise self._refused(client, grant_type, "grant_revoked", _bad_code(), grant)
        if grant.code_expires_at is None or now >= grant.code_expires_at:
            raise self._refused(client, grant_type, "code_expired", _bad_code(), grant)
        if redirect_uri != grant.redirect_uri:
            error = invalid_grant("redirect_uri does not match the authorization request's")
            raise self._refused(client, grant_type, "redirect_uri_mismatch", error, grant)
        if grant.code_challenge is None or not pkce_matches(verifier, grant.code_challenge):
            error = invalid_grant("code_verifier does not match the code_challenge")
            raise self._refused(client, grant_type, "pkce_failed", error, grant)
        user = await self._holder(grant)
        if user is None:
            raise self._refused(client, grant_type, "user_gone", _bad_code(), grant)
        if not await self.grants.spend_code(grant.id, now):
            # A racing exchange of the same code won: this one is the replay.
            raise await self._replayed(client, grant, now, "code_reused")
        issued = await self._issue_for_user(
            client, grant, user, tuple(grant.scopes), now, nonce=grant.nonce
        )
        self._issued(client, grant_type, grant, user)
        return issued

    async def refresh(self, client: OAuthClient, token: str, scope: str | None) -> Issued:
        """refresh_token (RFC 6749 §6): rotation; a spent token presented again revokes
        the grant (it was stolen, or the client is confused: either way, it ends)."""
        grant_type = GrantType.refresh_token.value
        if grant_type not in client.grant_types:
            raise self._refused(
                client, grant_type, "unauthorized_client", _unauthorized(grant_type)
            )
        now = utcnow()
        token_hash = protocol.digest(token)
        stored = await self.grants.refresh_token(token_hash)
        grant = await self.grants.get(stored.grant_id) if stored is not None else None
        if stored is None or grant is None or grant.oauth_client_id != client.id:
            reason = "unknown_token" if grant is None else "other_client"
            raise self._refused(client, grant_type, reason, _bad_refresh())
        if stored.used_at is not None:
            raise await self._replayed(client, grant, now, "refresh_reused")
        if grant.revoked_at is not None:
            raise self._refused(client, grant_type, "grant_revoked", _bad_refresh(), grant)
        if now >= stored.expires_at:
            raise self._refused(client, grant_type, "token_expired", _bad_refresh(), grant)
        requested = parse_scope(scope)
        if requested is not None and (not requested or not set(requested) <= set(grant.scopes)):
            error = invalid_scope("scope must be a subset of the scopes granted")
            raise self._refused(client, grant_type, "invalid_scope", error, grant)
        user = await self._holder(grant)
        if user is None:
            raise self._refused(client, grant_type, "user_gone", _bad_refresh(), grant)
        if not await self.grants.spend_refresh_token(token_hash, now):
            raise await self._replayed(client, grant, now, "refresh_reused")
        scopes = tuple(requested) if requested is not None else tuple(grant.scopes)
        issued = await self._issue_for_user(client, grant, user, scopes, now, nonce=None)
        self._issued(client, grant_type, grant, user)
        return issued

    async def client_credentials(self, client: OAuthClient, scope: str | None) -> Issued:
        """client_credentials (RFC 6749 §4.4): a confidential client acting as itself,
        with the client's own scopes only (none about a person)."""
        grant_type = GrantType.client_credentials.value
        if client.type != ClientType.confidential or grant_type not in client.grant_types:
            raise self._refused(
                client, grant_type, "unauthorized_client", _unauthorized(grant_type)
            )
        allowed = [s for s in client.scopes if s not in USER_SCOPES]
        requested = parse_scope(scope)
        if requested is not None and not set(requested) <= set(allowed):
            error = invalid_scope(
                "client_credentials may ask only for the client's own scopes: "
                + (" ".join(allowed) or "none")
            )
            raise self._refused(client, grant_type, "invalid_scope", error)
        scopes = tuple(requested if requested is not None else allowed)
        now = utcnow()
        grant = OAuthGrant(
            id=uuid.uuid4(),
            oauth_client_id=client.id,
            grant_type=grant_type,
            scopes=list(scopes),
            created_at=now,
        )
        self.grants.add(grant)
        access = tokens.mint_access_token(
            self.settings,
            self.key,
            client_id=client.client_id,
            subject=client.client_id,
            grant_id=grant.id,
            scopes=scopes,
            now=now,
        )
        self._issued(client, grant_type, grant, None)
        return Issued(access, self.settings.auth.access_token_ttl_seconds, scopes)

    async def _issue_for_user(
        self,
        client: OAuthClient,
        grant: OAuthGrant,
        user: User,
        scopes: tuple[str, ...],
        now: datetime,
        *,
        nonce: str | None,
    ) -> Issued:
        amr = tuple(grant.amr.split()) if grant.amr else ()
        access = tokens.mint_access_token(
            self.settings,
            self.key,
            client_id=client.client_id,
            subject=str(user.id),
            grant_id=grant.id,
            scopes=scopes,
            now=now,
            auth_time=grant.auth_time,
            amr=amr,
        )
        id_token = None
        if OPENID in scopes:
            id_token = tokens.mint_id_token(
                self.settings,
                self.key,
                client_id=client.client_id,
                subject=str(user.id),
                now=now,
                auth_time=grant.auth_time,
                amr=amr,
                access_token=access,
                nonce=nonce,
                profile=profile_claims(user, scopes),
            )
        refresh = None
        if OFFLINE in grant.scopes and GrantType.refresh_token in client.grant_types:
            refresh = protocol.new_refresh_token()
            auth = self.settings.auth
            expires = min(
                now + timedelta(seconds=auth.refresh_token_idle_seconds),
                grant.created_at + timedelta(seconds=auth.refresh_token_max_seconds),
            )
            self.grants.add_refresh_token(
                OAuthRefreshToken(
                    token_hash=protocol.digest(refresh),
                    grant_id=grant.id,
                    created_at=now,
                    expires_at=expires,
                )
            )
        ttl = self.settings.auth.access_token_ttl_seconds
        return Issued(access, ttl, scopes, id_token=id_token, refresh_token=refresh)

    async def _holder(self, grant: OAuthGrant) -> User | None:
        """The person a grant is for, while it still may act for them: not deleted, and
        no password change or disabling since (auth_version)."""
        if grant.user_id is None:
            return None
        user = await self.users.get(grant.user_id)
        if user is None or user.auth_version != grant.auth_version:
            return None
        return user

    async def _replayed(
        self, client: OAuthClient, grant: OAuthGrant, now: datetime, reason: str
    ) -> OAuthError:
        """A spent code or refresh token presented again: the grant ends (RFC 6749
        §4.1.2, §10.4), and the refusal stands with it (the router commits)."""
        await self.grants.revoke(grant.id, now, reason)
        self._audit(
            "oauth.code_reused" if reason == "code_reused" else "oauth.refresh_reused",
            client,
            outcome="failure",
            reason=reason,
            details={"grant_id": str(grant.id), "user_id": _text(grant.user_id)},
        )
        return invalid_grant(
            "The authorization code was already used"
            if reason == "code_reused"
            else "The refresh token was already used"
        )

    def _refused(
        self,
        client: OAuthClient,
        grant_type: str,
        reason: str,
        error: OAuthError,
        grant: OAuthGrant | None = None,
    ) -> OAuthError:
        details: dict[str, Any] = {"grant_type": grant_type, "client_id": client.client_id}
        if grant is not None:
            details["grant_id"] = str(grant.id)
        self._audit("oauth.token", client, outcome="failure", reason=reason, details=details)
        return error

    def _issued(
        self, client: OAuthClient, grant_type: str, grant: OAuthGrant, user: User | None
    ) -> None:
        details = {
            "grant_type": grant_type,
            "client_id": client.client_id,
            "grant_id": str(grant.id),
            "scopes": list(grant.scopes),
        }
        if user is not None:
            details["user_id"] = str(user.id)
        self._audit("oauth.token", client, details=details)

    # --- bearer tokens: userinfo, revocation, introspection ----------------------------

    async def live_access(
        self, token: str, *, verify_exp: bool = True
    ) -> tuple[tokens.OAuthAccessClaims, OAuthGrant, User | None] | None:
        """An access token's claims, its grant and its person, while all still stand:
        the grant not revoked, its client enabled, the person not deleted and with the
        same auth_version. None for anything else."""
        claims = tokens.verify_access_token(self.settings, self.key, token, verify_exp=verify_exp)
        if claims is None:
            return None
        grant = await self._live_grant(claims.grant_id)
        if grant is None:
            return None
        if grant.user_id is None:
            return claims, grant, None
        user = await self._holder(grant)
        if user is None or not await self._login_stands(grant):
            return None
        return claims, grant, user

    async def _login_stands(self, grant: OAuthGrant) -> bool:
        """A grant without `offline_access` acts for the person only while the login that
        made it stands: logging out of Gatehouse, or an admin ending that session, ends
        its access tokens too (with `offline_access` the app asked to outlive it)."""
        if OFFLINE in grant.scopes or grant.session_id is None:
            return True
        login = await self.sessions.get(grant.session_id)
        return login is not None and login.revoked_at is None

    async def _live_grant(self, grant_id: uuid.UUID) -> OAuthGrant | None:
        grant = await self.grants.get(grant_id)
        if grant is None or grant.revoked_at is not None:
            return None
        client = await self.clients.get(grant.oauth_client_id)
        return grant if client is not None and client.enabled else None

    async def userinfo(self, token: str | None) -> dict[str, Any]:
        """OIDC Core §5.3: the person's claims the token's scopes allow."""
        if not token:
            raise OAuthError(
                "invalid_request",
                "Send the access token as Authorization: Bearer",
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="gatehouse"'},
            )
        found = await self.live_access(token)
        if found is None:
            raise _invalid_token("The access token is invalid, expired or revoked")
        claims, _, user = found
        if user is None:
            raise _invalid_token("The access token is not a person's")
        if OPENID not in claims.scopes:
            challenge = 'Bearer error="insufficient_scope", scope="openid"'
            raise OAuthError(
                "insufficient_scope",
                "The access token was not granted the openid scope",
                status=403,
                headers={"WWW-Authenticate": challenge},
            )
        return {"sub": str(user.id), **profile_claims(user, claims.scopes)}

    async def revoke(self, client: OAuthClient, token: str) -> None:
        """RFC 7009: the client's own refresh or access token ends its grant (and every
        other token of it). Another client's or an unknown token: nothing, and the same
        answer, so nobody learns which tokens exist."""
        now = utcnow()
        grant = await self._own_grant(client, token)
        if grant is None:
            return
        revoked = await self.grants.revoke(grant.id, now, "client_revoked")
        if revoked:
            self._audit(
                "oauth.revoke",
                client,
                details={
                    "client_id": client.client_id,
                    "grant_id": str(grant.id),
                    "user_id": _text(grant.user_id),
                },
            )

    async def _own_grant(self, client: OAuthClient, token: str) -> OAuthGrant | None:
        """The grant behind one of this client's tokens, whichever kind it is."""
        grant: OAuthGrant | None = None
        if _looks_refresh(token):
            stored = await self.grants.refresh_token(protocol.digest(token))
            if stored is not None:
                grant = await self.grants.get(stored.grant_id)
        else:
            claims = tokens.verify_access_token(self.settings, self.key, token, verify_exp=False)
            if claims is not None and claims.client_id == client.client_id:
                grant = await self.grants.get(claims.grant_id)
        return grant if grant is not None and grant.oauth_client_id == client.id else None

    async def introspect(self, client: OAuthClient, token: str) -> dict[str, Any]:
        """RFC 7662: what one of this client's live tokens is; `{"active": false}` for
        everything else (another client's, expired, revoked, unknown)."""
        inactive: dict[str, Any] = {"active": False}
        if _looks_refresh(token):
            return await self._introspect_refresh(client, token) or inactive
        found = await self.live_access(token)
        if found is None or found[0].client_id != client.client_id:
            return inactive
        claims = found[0]
        return {
            "active": True,
            "scope": " ".join(claims.scopes),
            "client_id": claims.client_id,
            "sub": claims.subject,
            "exp": claims.expires_at,
            "iat": claims.issued_at,
            "iss": protocol.issuer(self.settings),
            # RFC 7662 §2.2: the type as the token response gave it (RFC 6749 §5.1).
            "token_type": BEARER,
        }

    async def _introspect_refresh(self, client: OAuthClient, token: str) -> dict[str, Any] | None:
        stored = await self.grants.refresh_token(protocol.digest(token))
        if stored is None or stored.used_at is not None or utcnow() >= stored.expires_at:
            return None
        grant = await self._live_grant(stored.grant_id)
        if grant is None or grant.oauth_client_id != client.id:
            return None
        user = await self._holder(grant)
        if user is None:
            return None
        return {
            "active": True,
            "scope": " ".join(grant.scopes),
            "client_id": client.client_id,
            "sub": str(user.id),
            "exp": int(stored.expires_at.timestamp()),
            "iat": int(stored.created_at.timestamp()),
            "iss": protocol.issuer(self.settings),
            "token_type": REFRESH_TOKEN,
        }

    # --- helpers ----------------------------------------------------------------------

    def _audit(
        self,
        action: str,
        client: OAuthClient | None,
        *,
        outcome: str = "success",
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.uow.audit.record(
            Entry(
                action,
                outcome=outcome,
                reason=reason,
                target_type="client" if client is not None else None,
                target_id=str(client.id) if client is not None else None,
                details=details or {},
            ),
            always=outcome != "success",
        )


def _looks_refresh(token: str) -> bool:
    """Our tokens say what they are (refresh tokens by their prefix, access tokens are
    JWTs), so `token_type_hint` is accepted and needs no reading (RFC 7009 §2.1 and RFC
    7662 §2.1 make it a hint only)."""
    return token.startswith(protocol.REFRESH_PREFIX)


def _text(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def _bad_code() -> OAuthError:
    # One description for every reason: a caller learns nothing about codes it did not get.
    return invalid_grant("The authorization code is invalid, expired or revoked")


def _bad_refresh() -> OAuthError:
    return invalid_grant("The refresh token is invalid, expired or revoked")


def _unauthorized(grant_type: str) -> OAuthError:
    return OAuthError("unauthorized_client", f"This client may not use the {grant_type} grant")


def check_verifier(verifier: str | None) -> str:
    """A code_verifier as RFC 7636 §4.1 shapes it, or invalid_request."""
    if verifier is None:
        raise invalid_request("code_verifier is required (PKCE)")
    if not _VERIFIER.fullmatch(verifier):
        raise invalid_request("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
    return verifier
