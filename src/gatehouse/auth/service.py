"""Login, refresh-token rotation, logout, registration and the per-request principal."""

from __future__ import annotations

import hashlib
import math
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.audit.repository import AuditRepository
from gatehouse.audit.trail import Entry
from gatehouse.auth.errors import (
    InvalidCredentials,
    InvalidGrant,
    NoSuchAccount,
    RegistrationDisabled,
    SessionNotFound,
    UnlockUnavailable,
)
from gatehouse.auth.models import Session
from gatehouse.auth.passwords import PasswordHasher, password_problems
from gatehouse.auth.principal import Principal
from gatehouse.auth.protection import Attempt, LoginProtection, Verdict
from gatehouse.auth.repository import SessionRepository
from gatehouse.auth.tokens import (
    PASSWORD_AMR,
    AccessClaims,
    TokenService,
    hash_refresh_token,
    new_refresh_token,
)
from gatehouse.config import AuthSettings, MfaSettings, Settings
from gatehouse.emails.service import queue_email
from gatehouse.emails.templates import Kind
from gatehouse.errors import (
    EmailTaken,
    GatehouseError,
    NotAuthenticated,
    UserNotFound,
    ValidationFailed,
)
from gatehouse.kit import metrics
from gatehouse.kit.fields import normalise_email
from gatehouse.kit.time import utcnow
from gatehouse.mfa.checks import methods as mfa_methods
from gatehouse.mfa.errors import MfaRequired
from gatehouse.mfa.models import MfaChallenge
from gatehouse.mfa.repository import MfaRepository
from gatehouse.uow import UnitOfWork
from gatehouse.users.models import Role, User
from gatehouse.users.repository import UserRepository
from gatehouse.users.schemas import UserCreate
from gatehouse.users.service import UserService

# At most one "someone tried to sign up with your address" mail per account per window.
SIGNUP_NOTICE_WINDOW_SECONDS = 3600


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID
    # A password login's device token (the `gatehouse_device` cookie), when protected.
    device_token: str | None = None


# The owner is told their right password was held back at most once per this window.
ATTACK_ALERT_WINDOW_SECONDS = 3600
# A refused login's audit reason -> its outcome in gatehouse_logins_total: a refusal by
# the lock or the account delay looks like a wrong password to the client, not here.
LOGIN_OUTCOMES = {
    "rate_limited": "rate_limited",
    "locked": "locked",
    "delayed_right_password": "locked",
    "unknown_user": "invalid",
    "invalid_password": "invalid",
}


def hash_mfa_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def amr_text(amr: Sequence[str]) -> str:
    """A session's amr as stored: its methods, space-separated, each once."""
    return " ".join(dict.fromkeys(amr))


def amr_of(stored: str | None) -> tuple[str, ...]:
    """A stored amr as the token's claim; a session from before amr was a password login."""
    return tuple(stored.split()) if stored else PASSWORD_AMR


class AuthService:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: AuthSettings,
        hasher: PasswordHasher,
        tokens: TokenService,
        protection: LoginProtection | None = None,
        mail: Settings | None = None,
        mfa: MfaSettings | None = None,
    ) -> None:
        self.uow = uow
        self.mfa_settings = mfa or (mail.mfa if mail is not None else MfaSettings())
        # For the mails to an account's owner (someone signed up with the address, or the
        # account delay refused the right password); None: no such mail.
        self.mail = mail
        self.session = session = uow.session
        self.settings = settings
        self.hasher = hasher
        self.tokens = tokens
        # None: no brute-force protection (GATEHOUSE_RATE_LIMIT_ENABLED=false, CLI).
        self.protection = protection
        self.users = UserRepository(session)
        self.sessions = SessionRepository(session)

    async def principal(
        self, bearer: str, claims: AccessClaims | None = None, *, reads_self: bool = False
    ) -> Principal:
        """The caller behind an access token, as the database sees them right now.

        `claims`: the token's claims when this request already verified it.
        `reads_self`: the request goes on to read the caller's own profile; its cache
        entry is fetched along with the principal's.
        """
        claims = claims or self.tokens.decode_access_token(bearer)
        row = await self._principal_row(claims.user_id, claims.session_id, reads_self)
        if row is None or row[1] != claims.auth_version:
            raise NotAuthenticated("The session has ended; log in again", error="invalid_token")
        return Principal(
            user_id=claims.user_id,
            role=Role(row[0]),
            session_id=claims.session_id,
            auth_version=row[1],
            amr=claims.amr,
        )

    async def _principal_row(
        self, user_id: uuid.UUID, session_id: uuid.UUID, reads_self: bool = False
    ) -> tuple[str, int] | None:
        """(role, auth_version) from the cache, or from the database on a miss.

        Read in `uow.reader()`: on SQLite the request's own session would take the write
        lock here, before the endpoint's bcrypt (changing a password) even starts.
        """

        async def load() -> tuple[str, int] | None:
            async with self.uow.reader() as session:
                return await SessionRepository(session).principal_row(user_id, session_id)

        cache = self.uow.cache
        if cache is None:
            return await load()
        prefetch = self.uow.cache_reads if reads_self else None
        return await cache.principal(user_id, session_id, load, prefetch_user=prefetch)

    async def login(self, username: str, password: str, device: str | None = None) -> TokenPair:
        """Password grant. Unknown email and wrong password cost and answer the same.

        So does an attempt the brute-force protection refuses: the password is still
        checked (one bcrypt call, as always) and the answer is the wrong-password one,
        whatever the result. Only the per-IP budget answers differently (429). When the
        account delay refuses the right password, the owner is mailed instead.
        `device`: the client's device token (`gatehouse_device` cookie), if any.
        """
        try:
            email = normalise_email(username)
        except ValueError:
            email = None
        identifier = email or username.strip().casefold()[:255]
        client = self.uow.actor
        attempt = None
        if self.protection is not None:
            account = email or "invalid:" + username.strip().casefold()
            try:
                attempt = await self.protection.begin(account, client.ip, device)
            except GatehouseError:
                self._login_failed(identifier, None, "rate_limited")
                raise
        # Read apart and verified outside any transaction: on SQLite the unit of work's
        # first statement takes the write lock, which bcrypt must not hold.
        user, apart = None, False
        if email:
            async with self.uow.reader() as session:
                user = await UserRepository(session).get_by_email(email)
                apart = session is not self.session
                if user is not None and attempt is not None and attempt.refused:
                    attempt = await self._unlocked_since(session, user, attempt)
        verified = await self.hasher.verify(password, user.password_hash if user else None)
        refused = attempt is not None and attempt.refused
        rehashed = None
        if verified and not refused and user and self.hasher.needs_rehash(user.password_hash):
            rehashed = await self.hasher.hash(password)
        if verified and not refused and user is not None and apart:
            checked = user.password_hash
            user = await self.users.get(user.id)
            # The password changed (or the account went) between the read and now: the
            # one that was verified is no longer the account's.
            verified = user is not None and user.password_hash == checked
        if not verified or refused:
            if user is None:
                reason = "unknown_user"
            elif verified and attempt is not None and attempt.verdict is Verdict.account_delayed:
                # Never a silent refusal of the owner: they learn it by mail, the client
                # (perhaps the attacker, who then knows nothing new) gets the usual 401.
                alerted = await self._alert_owner(user)
                self._login_failed(identifier, user, "delayed_right_password")
                raise InvalidCredentials(persist=alerted)
            elif refused:
                reason = "locked"
            else:
                reason = "invalid_password"
            self._login_failed(identifier, user, reason)
            if user is not None and attempt is not None:
                self._locked(identifier, user, attempt)
            raise InvalidCredentials()
        assert user is not None  # noqa: S101  (verify is False without a user)
        # The password was right: its bookkeeping happens whether or not a second
        # factor must follow (the source is known, the account's counters clear).
        device_token = None
        if attempt is not None and self.protection is not None:
            device_token = await self.protection.succeeded(attempt)
        if rehashed is not None:
            await self.users.set_password_hash(user.id, rehashed)
        if await MfaRepository(self.session).has_mfa(user.id):
            raise await self._second_step(user, identifier, device_token)
        pair = await self.start_session(user, PASSWORD_AMR, second_factor=False, pii=identifier)
        return replace(pair, device_token=device_token)

    async def _second_step(
        self, user: User, identifier: str, device_token: str | None
    ) -> MfaRequired:
        """The password was right and the account has a second factor: no session yet,
        an mfa_token for POST /auth/mfa/verify instead (its row kept by `persist`)."""
        mfa = self.mfa_settings
        token = secrets.token_urlsafe(32)
        client = self.uow.actor
        now = utcnow()
        repo = MfaRepository(self.session)
        await repo.add_challenge(
            MfaChallenge(
                token_hash=hash_mfa_token(token),
                user_id=user.id,
                expires_at=now + timedelta(seconds=mfa.mfa_token_ttl_seconds),
                ip=client.ip,
                user_agent=(client.user_agent or "")[:512] or None,
                created_at=now,
            )
        )
        self.uow.audit.record(
            Entry(
                "auth.login",
                outcome="failure",
                reason="mfa_required",
                target_type="user",
                target_id=str(user.id),
                pii={"identifier": identifier},
            ),
        )
        metrics.LOGINS.labels("mfa_required").inc()
        error = MfaRequired(
            {
                "mfa_token": token,
                "methods": list(await mfa_methods(repo, user.id)),
                "expires_in": mfa.mfa_token_ttl_seconds,
            }
        )
        error.device_token = device_token
        return error

    async def start_session(
        self,
        user: User,
        amr: Sequence[str],
        *,
        second_factor: bool,
        pii: str | None = None,
        action: str = "auth.login",
        details: Mapping[str, str] | None = None,
    ) -> TokenPair:
        """A completed login: the session (with its `amr`, and the second factor's
        moment when one was checked), the login noted, audited `auth.login`, the pair.

        Every way of logging in ends here: the password alone, the password and a second
        factor (POST /auth/mfa/verify), a passkey alone. `pii`: what the client typed to
        name the account (the audit row's `identifier`), if anything. `action` and
        `details`: the audit row's, where the way of logging in has its own (a passkey's).
        """
        client = self.uow.actor
        now = utcnow()
        await self.users.touch_login(user.id, now)
        login = await self.sessions.add(
            Session(
                user_id=user.id,
                expires_at=now + timedelta(seconds=self.settings.refresh_token_idle_seconds),
                absolute_expires_at=now
                + timedelta(seconds=self.settings.refresh_token_max_seconds),
                user_agent=(client.user_agent or "")[:512] or None,
                ip=client.ip,
                amr=amr_text(amr),
                mfa_verified_at=now if second_factor else None,
            )
        )
        self.uow.audit.record(
            Entry(
                action,
                actor_id=user.id,
                actor_role=user.role,
                target_type="user",
                target_id=str(user.id),
                details={
                    "session_id": str(login.id),
                    "amr": list(dict.fromkeys(amr)),
                    **(details or {}),
                },
                pii={"identifier": pii} if pii is not None else {},
            ),
        )
        metrics.LOGINS.labels("success").inc()
        return await self._issue(user.id, user.role, user.auth_version, login.id, amr_of(login.amr))

    async def _unlocked_since(self, session: AsyncSession, user: User, attempt: Attempt) -> Attempt:
        """The refused attempt, or the same let through because an operator unlocked
        the account since its lock (`gatehouse unlock` without Redis: its audit row)."""
        assert self.protection is not None  # noqa: S101  (an attempt comes from it)
        audit = AuditRepository(session)
        target = str(user.id)

        async def newest_unlock(since: datetime) -> datetime | None:
            return await audit.newest_since("auth.unlock", target, since)

        return await self.protection.reconsider(attempt, newest_unlock)

    async def _alert_owner(self, user: User) -> bool:
        """Queue the "someone is guessing your password" mail; True when one was queued
        (the failed login's transaction must then be kept)."""
        if self.mail is None:
            return False
        window = int(utcnow().timestamp()) // ATTACK_ALERT_WINDOW_SECONDS
        queued = await queue_email(
            self.uow,
            self.mail,
            kind=Kind.login_under_attack,
            user=user,
            dedupe_key=f"attack:{user.id}:{window}",
        )
        return queued is not None

    def _login_failed(self, identifier: str, user: User | None, reason: str) -> None:
        """Audit a refused login; written although the request's transaction rolls back."""
        metrics.LOGINS.labels(LOGIN_OUTCOMES[reason]).inc()
        self.uow.audit.record(
            Entry(
                "auth.login",
                outcome="failure",
                reason=reason,
                target_type="user" if user is not None else None,
                target_id=str(user.id) if user is not None else None,
                pii={"identifier": identifier},
            ),
            always=True,
        )

    def _locked(self, identifier: str, user: User, attempt: Attempt) -> None:
        """Audit the lock or delay this failure armed: one row per lock, where the
        refused attempts during it only get their `auth.login` failure rows."""
        for scope, armed_ms in (("account_ip", attempt.locked_ms), ("account", attempt.delayed_ms)):
            if armed_ms <= 0:
                continue
            self.uow.audit.record(
                Entry(
                    "auth.lock",
                    reason="too_many_failures",
                    target_type="user",
                    target_id=str(user.id),
                    details={"scope": scope, "seconds": math.ceil(armed_ms / 1000)},
                    pii={"identifier": identifier},
                ),
                always=True,
            )

    def _refresh_failed(self, reason: str, login: Session | None = None) -> None:
        reused = reason == "reuse_detected"
        metrics.REFRESHES.labels("reuse_detected" if reused else "invalid").inc()
        self.uow.audit.record(
            Entry(
                "auth.refresh_reuse" if reused else "auth.refresh",
                outcome="failure",
                reason=reason,
                target_type="user" if login is not None else None,
                target_id=str(login.user_id) if login is not None else None,
                details={"session_id": str(login.id)} if login is not None else {},
            ),
            always=True,
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: the presented token is spent, a new one is issued in the same family.

        A token presented twice (replay, or two racing clients) ends the whole family:
        zero tolerance, so a stolen token is worth one use at most.

        The rotation that succeeds spends the token, moves the session on (reading its
        owner) and adds the new token, in one statement on PostgreSQL. What a refusal
        needs read is read only then, and a refusal rolls back whatever was spent (a
        reuse keeps its revocation).
        """
        token_hash = hash_refresh_token(refresh_token)
        successor = new_refresh_token()
        now = utcnow()
        session_id, owner = await self.sessions.rotate(
            token_hash,
            hash_refresh_token(successor),
            now,
            now + timedelta(seconds=self.settings.refresh_token_idle_seconds),
            self.uow.actor.ip,
        )
        if session_id is None:
            raise await self._refuse_spent(token_hash, now)
        if owner is None:
            raise await self._refuse_rotation(session_id, now)
        user_id, role, auth_version, amr = owner
        self.uow.audit.record(
            Entry(
                "auth.refresh",
                actor_id=user_id,
                actor_role=role,
                target_type="user",
                target_id=str(user_id),
                details={"session_id": str(session_id)},
            ),
        )
        metrics.REFRESHES.labels("success").inc()
        return self._pair(successor, user_id, role, auth_version, session_id, amr_of(amr))

    async def _refuse_spent(self, token_hash: str, now: datetime) -> InvalidGrant:
        """The refusal of a token that could not be spent: unknown, or used before."""
        stored = await self.sessions.get_refresh_token(token_hash)
        if stored is None:
            self._refresh_failed("unknown_token")
            return InvalidGrant()
        login = await self.sessions.get(stored.session_id)
        if login is None or login.revoked_at is not None:
            self._refresh_failed("session_ended", login)
            return InvalidGrant()
        await self.sessions.revoke(login.id, now, "refresh_token_reuse")
        self._refresh_failed("reuse_detected", login)
        return InvalidGrant(persist=True)

    async def _refuse_rotation(self, session_id: uuid.UUID, now: datetime) -> InvalidGrant:
        """The refusal of a spent token whose session could not be moved on."""
        login = await self.sessions.get(session_id)
        if login is None or login.revoked_at is not None:
            self._refresh_failed("session_ended", login)
            return InvalidGrant()
        if now >= login.expires_at or now >= login.absolute_expires_at:
            self._refresh_failed("session_expired", login)
            return InvalidGrant("The session has expired; log in again")
        self._refresh_failed("user_deleted", login)
        return InvalidGrant()

    async def logout(self, actor: Principal, *, everywhere: bool) -> None:
        now = utcnow()
        self.uow.audit.record(
            Entry(
                "auth.logout_all" if everywhere else "auth.logout",
                target_type="user",
                target_id=str(actor.user_id),
                details={"session_id": str(actor.session_id)},
            ),
        )
        if not everywhere:
            await self.sessions.revoke(actor.session_id, now, "logout")
            return
        await self.sessions.revoke_all(actor.user_id, now, "logout_all")
        user = await self.users.get(actor.user_id)
        if user is not None:
            user.auth_version += 1
            await self.session.flush()

    async def register(self, data: UserCreate) -> User | None:
        """Sign up; the new account, or None when the address has one already.

        The caller answers both alike, so sign-up tells nobody which addresses have an
        account: same checks in the same order, one bcrypt hash either way (the taken
        case hashes and drops it), and the address's owner is mailed instead.
        """
        attempt = Entry(
            "auth.register", target_type="user", pii={"email": data.email, "name": data.name}
        )
        try:
            if not self.settings.registration_enabled:
                raise RegistrationDisabled()
            problems = password_problems(
                data.password, self.settings, email=data.email, name=data.name
            )
            if problems:
                raise ValidationFailed({"password": problems})
            user = await self._create_unless_taken(data)
        except GatehouseError as exc:
            attempt.outcome, attempt.reason = "failure", exc.code.lower()
            self.uow.audit.record(attempt, always=True)
            raise
        if user is None:
            owner = await self.users.get_by_email(data.email)
            attempt.outcome, attempt.reason = "failure", "email_taken"
            if owner is not None:
                attempt.target_id = str(owner.id)
                await self._signup_notice(owner)
            self.uow.audit.record(attempt)
            return None
        attempt.actor_id, attempt.actor_role = user.id, user.role
        attempt.target_id = str(user.id)
        self.uow.audit.record(attempt)
        return user

    async def _create_unless_taken(self, data: UserCreate) -> User | None:
        """The new account, or None if a live one has the address (racing sign-ups too:
        the insert runs in a savepoint, so losing the unique index's race is the same
        answer, not an aborted transaction)."""
        if await self.users.get_by_email(data.email) is not None:
            await self.hasher.hash(data.password)
            return None
        try:
            async with self.session.begin_nested():
                return await UserService(self.uow, self.settings, self.hasher).create(
                    data.model_copy(update={"role": Role.user}), audit=False
                )
        except EmailTaken:
            return None

    async def _signup_notice(self, owner: User) -> None:
        if self.mail is None:
            return
        window = int(utcnow().timestamp()) // SIGNUP_NOTICE_WINDOW_SECONDS
        await queue_email(
            self.uow,
            self.mail,
            kind=Kind.signup_attempt,
            user=owner,
            # One a window however often it is tried: the endpoint is public, and the
            # owner's inbox is not ours to flood.
            dedupe_key=f"{owner.id}:{window}",
        )

    async def list_sessions(self, user_id: uuid.UUID) -> list[Session]:
        await self._require_user(user_id)
        found = list(await self.sessions.list_active(user_id, utcnow()))
        if self.uow.actor.user_id != user_id:
            self.uow.audit.record(
                Entry(
                    "session.list",
                    target_type="user",
                    target_id=str(user_id),
                    details={"returned": len(found)},
                ),
            )
        return found

    async def end_session(self, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
        await self._require_user(user_id)
        login = await self.sessions.get(session_id)
        if login is None or login.user_id != user_id or login.revoked_at is not None:
            raise SessionNotFound(session_id)
        await self.sessions.revoke(session_id, utcnow(), "ended_by_request")
        self.uow.audit.record(
            Entry(
                "session.end",
                target_type="user",
                target_id=str(user_id),
                details={"session_id": str(session_id)},
            ),
        )

    async def end_sessions(self, user_id: uuid.UUID, *, keep: uuid.UUID | None = None) -> int:
        await self._require_user(user_id)
        ended = await self.sessions.revoke_all(user_id, utcnow(), "ended_by_request", keep=keep)
        self.uow.audit.record(
            Entry(
                "session.end_all",
                target_type="user",
                target_id=str(user_id),
                details={"ended": ended},
            ),
        )
        return ended

    async def _require_user(self, user_id: uuid.UUID) -> None:
        if await self.users.get(user_id) is None:
            raise UserNotFound(user_id)

    async def _issue(
        self,
        user_id: uuid.UUID,
        role: str,
        auth_version: int,
        session_id: uuid.UUID,
        amr: Sequence[str],
    ) -> TokenPair:
        refresh_token = new_refresh_token()
        await self.sessions.add_refresh_token(hash_refresh_token(refresh_token), session_id)
        return self._pair(refresh_token, user_id, role, auth_version, session_id, amr)

    def _pair(
        self,
        refresh_token: str,
        user_id: uuid.UUID,
        role: str,
        auth_version: int,
        session_id: uuid.UUID,
        amr: Sequence[str],
    ) -> TokenPair:
        """The pair handed out, with `refresh_token` already stored."""
        access_token = self.tokens.issue_access_token(
            user_id=user_id,
            session_id=session_id,
            role=role,
            auth_version=auth_version,
            amr=amr,
        )
        metrics.TOKENS_ISSUED.labels("access").inc()
        metrics.TOKENS_ISSUED.labels("refresh").inc()
        return TokenPair(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=self.tokens.ttl,
            session_id=session_id,
        )


@dataclass(frozen=True)
class Unlocked:
    user_id: uuid.UUID
    # True: the shared counters (Redis) are cleared, every process sees it now. False:
    # each serving process keeps its own (no Redis) and applies the unlock, from its
    # audit row, at the account's next login attempt.
    shared: bool


async def unlock(uow: UnitOfWork, protection: LoginProtection | None, email: str) -> Unlocked:
    """End every (account, address) lock and the account delay on the account with
    `email`: the operator's `gatehouse unlock`, by the mark a password reset leaves.

    With Redis, the mark goes where every process counts. Without it, each serving
    process counts in its own memory, out of this process's reach: what reaches them is
    the `auth.unlock` audit row this commits, which a process looks for before its lock
    refuses the account (`LoginProtection.reconsider`).
    """
    try:
        address = normalise_email(email)
    except ValueError:
        raise ValidationFailed({"email": ["Not an email address"]}) from None
    user = await UserRepository(uow.session).get_by_email(address)
    if user is None:
        raise NoSuchAccount(address)
    if protection is None:
        raise UnlockUnavailable(
            "The login protection is off (GATEHOUSE_RATE_LIMIT_ENABLED=false): no account "
            "is ever locked, there is nothing to unlock"
        )
    # Redis configured but not answering: the processes count in their own memory for
    # now, but will be back on Redis, which still holds the locks; nothing is recorded.
    if protection.redis is not None and not await protection.cleared(address):
        raise UnlockUnavailable("Redis did not answer: nothing was unlocked; try again")
    uow.audit.record(
        Entry(
            "auth.unlock",
            target_type="user",
            target_id=str(user.id),
            details={"scope": ["account_ip", "account"]},
            pii={"email": address},
        )
    )
    return Unlocked(user.id, shared=protection.redis is not None)
