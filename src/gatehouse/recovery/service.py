"""Email verification, password reset and undoing an email change by emailed,
single-use, expiring tokens.

Never commits: the caller's unit of work does. The request use cases answer the same
whether or not the address has an account; only the mail tells its owner anything.
"""

from __future__ import annotations

from datetime import datetime

from gatehouse.audit.trail import Entry
from gatehouse.auth.passwords import PasswordHasher, password_problems
from gatehouse.auth.protection import LoginProtection
from gatehouse.auth.repository import SessionRepository
from gatehouse.config import Settings
from gatehouse.emails.service import queue_email
from gatehouse.emails.templates import Kind
from gatehouse.errors import ValidationFailed
from gatehouse.kit.fields import normalise_email
from gatehouse.kit.time import utcnow
from gatehouse.recovery.errors import InvalidToken
from gatehouse.recovery.models import ActionToken
from gatehouse.recovery.repository import ActionTokenRepository
from gatehouse.uow import UnitOfWork
from gatehouse.users.models import User
from gatehouse.users.repository import UserRepository
from gatehouse.users.service import (
    announce_changes,
    announce_password_changed,
    flush_users,
    public_state,
)

# One mail of a kind per account per window, however often it is asked for: the
# request endpoints are public, and someone else's inbox is not ours to flood.
REQUEST_WINDOW_SECONDS = 60


def _window_key(user: User, now: datetime) -> str:
    return f"request:{user.id}:{int(now.timestamp()) // REQUEST_WINDOW_SECONDS}"


def _requested(action: str, email: str, user: User | None) -> Entry:
    """A mail asked for: the address typed is personal data; whether it has an account
    is for the trail alone (the API answers the same either way)."""
    return Entry(
        action,
        target_type="user" if user is not None else None,
        target_id=str(user.id) if user is not None else None,
        details={"account_found": user is not None},
        pii={"identifier": email},
    )


def _on_user(action: str, user: User) -> Entry:
    # Whoever holds the emailed token acts as the account's owner.
    return Entry(
        action,
        actor_id=user.id,
        actor_role=user.role,
        target_type="user",
        target_id=str(user.id),
    )


class RecoveryService:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        hasher: PasswordHasher,
        protection: LoginProtection | None = None,
    ) -> None:
        self.uow = uow
        # The login protection whose delay and locks on the account a reset lifts.
        self.protection = protection
        self.session = session = uow.session
        self.settings = settings
        self.hasher = hasher
        self.users = UserRepository(session)
        self.tokens = ActionTokenRepository(session)
        self.sessions = SessionRepository(session)

    async def request_verification(self, email: str) -> None:
        """Mail a verification link to a live account whose address is not verified."""
        user = await self.users.get_by_email(email)
        self.uow.audit.record(_requested("auth.email_verify_request", email, user))
        if user is None or user.email_verified_at is not None:
            return
        await queue_email(
            self.uow,
            self.settings,
            kind=Kind.verify_email,
            user=user,
            dedupe_key=_window_key(user, utcnow()),
        )

    async def request_password_reset(self, email: str) -> None:
        """Mail a password-reset link to a live account."""
        user = await self.users.get_by_email(email)
        self.uow.audit.record(_requested("auth.password_reset_request", email, user))
        if user is None:
            return
        await queue_email(
            self.uow,
            self.settings,
            kind=Kind.password_reset,
            user=user,
            dedupe_key=_window_key(user, utcnow()),
        )

    async def verify_email(self, token: str) -> User:
        """Mark the address the token was sent to verified, if it is still the account's."""
        now = utcnow()
        row, user = await self._check(token, Kind.verify_email, now)
        await self._consume(row, user, now)
        if user.email_verified_at is None:
            before = public_state(user)
            user.email_verified_at = now
            await self.session.flush()
            await announce_changes(self.uow, user, before)
        self.uow.audit.record(_on_user("auth.email_verify", user))
        return user

    async def reset_password(self, token: str, new_password: str) -> None:
        """Set a new password; every session ends and every other reset link dies."""
        now = utcnow()
        new_hash = await self._hash_if_usable(token, new_password, now)
        row, user = await self._check(token, Kind.password_reset, now)
        problems = password_problems(
            new_password, self.settings.auth, email=user.email, name=user.name
        )
        if problems:
            # Before the token is used: the owner can try again with a better password.
            self._failed(Kind.password_reset, "validation_error", user)
            raise ValidationFailed({"new_password": problems})
        await self._consume(row, user, now)
        user.password_hash = new_hash or await self.hasher.hash(new_password)
        user.auth_version += 1
        await self.session.flush()
        await self.tokens.use_up(user.id, Kind.password_reset.value, now)
        await self.sessions.revoke_all(user.id, now, "password_reset")
        await announce_password_changed(self.uow, user, "reset")
        self.uow.audit.record(_on_user("auth.password_reset", user))
        if self.protection is not None:
            # The owner proved the mailbox: a guessing attack must not keep them out.
            await self.protection.cleared(normalise_email(user.email))

    async def undo_email_change(self, token: str) -> User:
        """Put back the address an account left (the token came to it): every session
        ends and every other undo link of the account dies, so whoever moved the address
        is logged out and cannot move it back with the link the new address received.

        The address counts as verified: the link was opened from its mail.
        """
        now = utcnow()
        row, user = await self._check(token, Kind.email_changed, now)
        await self._consume(row, user, now)
        before = public_state(user)
        user.email = row.email
        user.email_verified_at = now
        user.auth_version += 1
        # The address may have a new account by now: then 400 "Email already exists".
        await flush_users(self.session)
        await self.tokens.use_up(user.id, Kind.email_changed.value, now)
        await self.sessions.revoke_all(user.id, now, "email_change_undone")
        await announce_changes(self.uow, user, before)
        entry = _on_user("auth.email_change_undo", user)
        entry.pii = {"email": row.email, "from": before["email"]}
        self.uow.audit.record(entry)
        return user

    async def _hash_if_usable(self, token: str, new_password: str, now: datetime) -> str | None:
        """The new password's hash, made before the unit of work's first statement (on
        SQLite that statement takes the write lock, which bcrypt must not hold); None
        when a read apart says the reset will be refused, so a bad token costs no bcrypt.
        `_check` then decides, as always."""
        async with self.uow.reader() as session:
            row = await ActionTokenRepository(session).find(token, Kind.password_reset.value)
            user = await UserRepository(session).get(row.user_id) if row is not None else None
        usable = (
            row is not None
            and user is not None
            and row.used_at is None
            and row.expires_at > now
            and user.email == row.email
            and not password_problems(
                new_password, self.settings.auth, email=user.email, name=user.name
            )
        )
        return await self.hasher.hash(new_password) if usable else None

    async def _check(self, token: str, kind: Kind, now: datetime) -> tuple[ActionToken, User]:
        row = await self.tokens.find(token, kind.value)
        if row is None:
            self._failed(kind, "invalid_token", cause="unknown")
            raise InvalidToken()
        user = await self.users.get(row.user_id)
        if row.used_at is not None or row.expires_at <= now:
            cause = "used" if row.used_at is not None else "expired"
            self._failed(kind, "invalid_token", user, cause=cause)
            raise InvalidToken()
        if user is None:
            self._failed(kind, "invalid_token", cause="stale")
            raise InvalidToken()
        # An old link must not act on an address the account no longer has; an undo link's
        # address is the one to go back to, moot once the account has it again.
        back_already = user.email == row.email
        if back_already if kind is Kind.email_changed else not back_already:
            self._failed(kind, "invalid_token", user, cause="stale")
            raise InvalidToken()
        return row, user

    async def _consume(self, row: ActionToken, user: User, now: datetime) -> None:
        if not await self.tokens.consume(row.id, now):
            self._failed(Kind(row.purpose), "invalid_token", user, cause="used")
            raise InvalidToken()

    def _failed(
        self, kind: Kind, reason: str, user: User | None = None, *, cause: str | None = None
    ) -> None:
        """Audit a refused confirmation; written although the request rolls back. The
        answer is one INVALID_TOKEN whatever the cause; the trail keeps the cause."""
        action = {
            Kind.verify_email: "auth.email_verify",
            Kind.email_changed: "auth.email_change_undo",
        }.get(kind, "auth.password_reset")
        self.uow.audit.record(
            Entry(
                action,
                outcome="failure",
                reason=reason,
                target_type="user" if user is not None else None,
                target_id=str(user.id) if user is not None else None,
                details={"token": cause} if cause is not None else {},
            ),
            always=True,
        )
