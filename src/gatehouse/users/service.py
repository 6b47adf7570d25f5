"""The rules about user accounts. Never commits: the caller's unit of work does."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from gatehouse.audit.trail import Entry
from gatehouse.auth.passwords import PasswordHasher, password_problems
from gatehouse.auth.principal import Principal
from gatehouse.auth.repository import SessionRepository
from gatehouse.cache.store import CachedUser
from gatehouse.config import AuthSettings, Settings
from gatehouse.emails.service import queue_email
from gatehouse.emails.templates import Kind
from gatehouse.errors import (
    EmailTaken,
    Forbidden,
    LastAdmin,
    UserNotFound,
    ValidationFailed,
    VersionConflict,
)
from gatehouse.events import outbox
from gatehouse.events.schemas import (
    UserChanges,
    UserCreated,
    UserDeleted,
    UserPasswordChanged,
    UserUpdated,
)
from gatehouse.kit.time import utcnow
from gatehouse.mfa.checks import require_step_up
from gatehouse.oidc.repository import GrantRepository
from gatehouse.uow import UnitOfWork
from gatehouse.users.errors import ReauthenticationRequired, WrongPassword
from gatehouse.users.models import Role, User
from gatehouse.users.repository import UserRepository
from gatehouse.users.schemas import (
    ListParams,
    MeUpdate,
    PasswordChange,
    UserCreate,
    UserEdit,
    UserRead,
)


def is_email_conflict(exc: IntegrityError) -> bool:
    text = str(exc.orig).lower()
    return "uq_users_email_live" in text or "users.email" in text


# Fields a user.updated event reports, with their new values (never a secret).
_EVENT_FIELDS = ("email", "name", "role", "email_verified")


def public_state(user: User) -> dict[str, Any]:
    return {
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "email_verified": user.email_verified_at is not None,
    }


async def announce_created(uow: UnitOfWork, user: User) -> None:
    await outbox.record(
        uow,
        UserCreated(
            user_id=user.id,
            email=user.email,
            name=user.name,
            role=Role(user.role),
            email_verified=user.email_verified_at is not None,
            version=user.version,
        ),
        aggregate_id=user.id,
    )


async def announce_changes(uow: UnitOfWork, user: User, before: dict[str, Any]) -> None:
    """Record user.updated with the fields that differ from `before`, if any."""
    after = public_state(user)
    changes = {name: after[name] for name in _EVENT_FIELDS if after[name] != before[name]}
    if not changes:
        return
    await outbox.record(
        uow,
        UserUpdated(user_id=user.id, changes=UserChanges(**changes), version=user.version),
        aggregate_id=user.id,
    )


async def announce_password_changed(uow: UnitOfWork, user: User, reason: str) -> None:
    # Whoever knew the old password may have authorized an OAuth client with it: every
    # grant ends with it (the first-party sessions are the caller's to end).
    await GrantRepository(uow.session).revoke_for_user(user.id, utcnow(), f"password_{reason}")
    await outbox.record(
        uow,
        UserPasswordChanged(user_id=user.id, reason=reason, version=user.version),
        aggregate_id=user.id,
    )


def _on_user(action: str, user_id: uuid.UUID, **fields: Any) -> Entry:
    return Entry(action, target_type="user", target_id=str(user_id), **fields)


def _audit_changes(uow: UnitOfWork, user: User, before: dict[str, Any]) -> None:
    """Audit an edit: which fields changed; the role's values (not personal), and the
    email or name values as personal data (erasable)."""
    after = public_state(user)
    changed = [name for name in _EVENT_FIELDS if after[name] != before[name]]
    if not changed:
        return
    details: dict[str, Any] = {"fields": changed}
    if "role" in changed:
        details["role"] = {"from": before["role"], "to": after["role"]}
    pii = {name: after[name] for name in ("email", "name") if name in changed}
    action = "user.role_change" if "role" in changed else "user.update"
    uow.audit.record(_on_user(action, user.id, details=details, pii=pii))


def cache_entry(user: User) -> CachedUser:
    """What the cache keeps of a user: the read model's own JSON, so every field of
    `UserRead`, present or future, is cached without a list kept by hand. Invalidated by
    the ORM flush listener in gatehouse.cache.store whenever the row changes."""
    return CachedUser(UserRead.model_validate(user).model_dump_json(), user.version)


async def flush_users(session: AsyncSession) -> None:
    """Flush user rows; the database decides uniqueness and versions (a pre-check would
    race), and its answer becomes the contract's error."""
    try:
        await session.flush()
    except IntegrityError as exc:
        if is_email_conflict(exc):
            raise EmailTaken() from None
        raise
    except StaleDataError:
        raise VersionConflict() from None


async def ensure_another_admin(users: UserRepository, leaving: uuid.UUID) -> None:
    """The last-admin rule, for every way an admin can stop being one (role change,
    deletion, an inactive-user purge): some other live admin must remain.

    Locks the live admins' rows first, the order every admin removal takes them in, so
    two removals of the last two admins cannot both pass.
    """
    admins = await users.lock_active_admins()
    if all(admin == leaving for admin in admins):
        raise LastAdmin()


async def soft_delete(
    uow: UnitOfWork, user: User, *, reason: str | None = None, details: dict[str, Any] | None = None
) -> None:
    """Delete an account, restorable within the grace period: `deleted_at` set, every
    session ended, `user.deleted` recorded and audited. The last-admin rule applies."""
    if user.role == Role.admin.value:
        await ensure_another_admin(UserRepository(uow.session), user.id)
    now = utcnow()
    user.deleted_at = now
    user.auth_version += 1
    await flush_users(uow.session)
    await SessionRepository(uow.session).revoke_all(user.id, now, "user_deleted")
    await outbox.record(
        uow, UserDeleted(user_id=user.id, version=user.version), aggregate_id=user.id
    )
    uow.audit.record(_on_user("user.delete", user.id, reason=reason, details=details or {}))


class UserService:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: AuthSettings,
        hasher: PasswordHasher,
        mail: Settings | None = None,
    ):
        self.uow = uow
        self.session = session = uow.session
        self.settings = settings
        self.hasher = hasher
        # What a notice mail needs (product name, public URL); None only where no email
        # changes (the CLI's create-admin, bare service tests): then no notice is written.
        self.mail = mail
        self.users = UserRepository(session)
        self.sessions = SessionRepository(session)

    async def list(self, actor: Principal, params: ListParams) -> tuple[Sequence[User], int]:
        if params.include_deleted and not actor.is_admin:
            raise Forbidden("Only admins can list deleted users")
        # The admin's list tolerates a few seconds' lag: the read replica may serve it.
        users, total = await self.uow.replica_ok(
            lambda session: UserRepository(session).page(params)
        )
        filters = params.model_dump(mode="json", exclude_defaults=True)
        if params.search is not None:
            # Typed text, often someone's full address: only its keyed digest is kept.
            filters["search"] = self.uow.audit.term(params.search)
        self.uow.audit.record(
            Entry(
                "user.list",
                target_type="user",
                details={"filters": filters, "returned": len(users)},
            ),
        )
        return users, total

    async def get(self, actor: Principal, user_id: uuid.UUID) -> CachedUser:
        """Read one user, as the API shows it (`UserRead`'s JSON, as the cache keeps
        it: the hot path sends it on unparsed) and its row version; a plain user may
        read only themself (others look absent)."""
        if actor.user_id != user_id and not actor.can_read_users():
            self.uow.audit.record(
                _on_user("authz.denied", user_id, outcome="denied", reason="not_permitted"),
                always=True,
            )
            raise UserNotFound(user_id)
        found = await self._read(user_id)
        if found is None:
            raise UserNotFound(user_id)
        if actor.user_id != user_id:
            self.uow.audit.record(_on_user("user.read", user_id))
        return found

    async def _read(self, user_id: uuid.UUID) -> CachedUser | None:
        cache = self.uow.cache
        if cache is None:
            return await self._load_entry(user_id)
        return await cache.user(user_id, lambda: self._load_entry(user_id), self.uow.cache_reads)

    async def _load_entry(self, user_id: uuid.UUID) -> CachedUser | None:
        user = await self.users.get(user_id)
        return cache_entry(user) if user is not None else None

    async def create(self, data: UserCreate, *, audit: bool = True) -> User:
        """A new account; `audit=False` when the caller audits it (sign-up)."""
        self._check_password(data.password, email=data.email, name=data.name, field="password")
        user = User(
            email=data.email,
            name=data.name,
            role=data.role.value,
            password_hash=await self.hasher.hash(data.password),
        )
        self.users.add(user)
        await self._flush()
        await announce_created(self.uow, user)
        if audit:
            self.uow.audit.record(
                _on_user(
                    "user.create",
                    user.id,
                    details={"role": user.role},
                    pii={"email": user.email, "name": user.name},
                ),
            )
        return user

    async def update(
        self,
        actor: Principal,
        user_id: uuid.UUID,
        changes: UserEdit,
        expected_version: int | None,
    ) -> User:
        """Admin edit of any user: name, email, role.

        An admin changing their own email here proves it is them, as on /me: a stolen
        admin token must not be able to move the account to an address its thief reads.
        """
        verified = None
        if user_id == actor.user_id and changes.email and changes.current_password:
            verified = await self._verify_current(actor.user_id, changes.current_password)
        if user_id == actor.user_id and changes.email is not None:
            await self._step_up_for_email(actor, changes.email)
        user = await self._get_for_write(user_id, expected_version)
        before = public_state(user)
        if changes.role is not None and changes.role.value != user.role:
            if user.id == actor.user_id:
                raise Forbidden("You cannot change your own role")
            if user.role == Role.admin.value:
                await ensure_another_admin(self.users, user.id)
            user.role = changes.role.value
            user.auth_version += 1
        if changes.name is not None:
            user.name = changes.name
        left = None
        if changes.email is not None and changes.email != user.email:
            if user.id == actor.user_id:
                self._reauthenticate(user, changes.current_password, verified)
            left = self._set_email(user, changes.email)
        await self._flush()
        await self._notify_email_change(user, left)
        await announce_changes(self.uow, user, before)
        _audit_changes(self.uow, user, before)
        return user

    async def delete(
        self, actor: Principal, user_id: uuid.UUID, expected_version: int | None
    ) -> None:
        user = await self._get_for_write(user_id, expected_version)
        await soft_delete(self.uow, user)

    async def update_me(
        self, actor: Principal, data: MeUpdate, expected_version: int | None
    ) -> User:
        if actor.role is Role.readonly:
            raise Forbidden("Readonly accounts cannot change their profile")
        verified = None
        if data.email is not None and data.current_password is not None:
            verified = await self._verify_current(actor.user_id, data.current_password)
        if data.email is not None:
            await self._step_up_for_email(actor, data.email)
        user = await self._get_for_write(actor.user_id, expected_version)
        before = public_state(user)
        left = None
        if data.email is not None and data.email != user.email:
            self._reauthenticate(user, data.current_password, verified)
            left = self._set_email(user, data.email)
        if data.name is not None:
            user.name = data.name
        await self._flush()
        await self._notify_email_change(user, left)
        await announce_changes(self.uow, user, before)
        _audit_changes(self.uow, user, before)
        return user

    async def change_password(self, actor: Principal, data: PasswordChange) -> None:
        """New password; every other session of the caller ends, this one goes on."""
        verified = await self._verify_current(actor.user_id, data.current_password)
        if self.mail is not None:
            # With MFA on, the password alone does not move the account: a second
            # factor checked recently in this session too (403 STEP_UP_REQUIRED).
            await require_step_up(self.uow, self.mail, actor)
        new_hash = None
        if verified is not None and not password_problems(
            data.new_password, self.settings, email=verified.email, name=verified.name
        ):
            # Hashed before the unit of work's first statement (SQLite's write lock).
            new_hash = await self.hasher.hash(data.new_password)
        user = await self._get_for_write(actor.user_id, None)
        if verified is None or verified.password_hash != user.password_hash:
            self.uow.audit.record(
                _on_user(
                    "auth.password_change", user.id, outcome="failure", reason="wrong_password"
                ),
                always=True,
            )
            raise WrongPassword()
        self._check_password(
            data.new_password, email=user.email, name=user.name, field="new_password"
        )
        user.password_hash = new_hash or await self.hasher.hash(data.new_password)
        await self._flush()
        await self.sessions.revoke_all(user.id, utcnow(), "password_changed", keep=actor.session_id)
        await announce_password_changed(self.uow, user, "changed")
        self.uow.audit.record(_on_user("auth.password_change", user.id))

    async def delete_me(self, actor: Principal) -> None:
        user = await self._get_for_write(actor.user_id, None)
        await soft_delete(self.uow, user)

    async def _step_up_for_email(self, actor: Principal, email: str) -> None:
        """Moving your own account to a new address needs a recent step-up when you have
        MFA (as it needs your password): whoever holds the mailbox can reset the rest."""
        if self.mail is None:
            return
        async with self.uow.reader() as session:
            current = await UserRepository(session).get(actor.user_id)
        if current is not None and current.email != email:
            await require_step_up(self.uow, self.mail, actor)

    def _reauthenticate(
        self, user: User, current_password: str | None, verified: User | None
    ) -> None:
        """The caller proves they are the account's owner before moving its email.

        `verified`: the account as `_verify_current` read it when the password matched
        (checked before this unit of work's first statement, outside SQLite's write
        lock); a hash changed since then is not the one the caller proved.
        """
        if current_password is None:
            raise ReauthenticationRequired()
        if verified is None or verified.password_hash != user.password_hash:
            self.uow.audit.record(
                _on_user("user.update", user.id, outcome="failure", reason="wrong_password"),
                always=True,
            )
            raise WrongPassword()

    @staticmethod
    def _set_email(user: User, email: str) -> str | None:
        """Set a new address; the one the account left, or None if it is the same."""
        if email == user.email:
            return None
        left = user.email
        user.email = email
        # A new address is unverified until its owner proves it.
        user.email_verified_at = None
        return left

    async def _notify_email_change(self, user: User, left: str | None) -> None:
        """Tell the address the account left, with a link that takes it back (for a few
        days): whoever moved the account, its owner hears of it where they read mail.

        After the flush: the database has accepted the new address (unique) by then.
        """
        if left is None or self.mail is None:
            return
        await queue_email(
            self.uow,
            self.mail,
            kind=Kind.email_changed,
            user=user,
            dedupe_key=f"{user.id}:{uuid.uuid4()}",
            to=left,
        )

    async def _get_for_write(self, user_id: uuid.UUID, expected_version: int | None) -> User:
        user = await self.users.get(user_id)
        if user is None:
            raise UserNotFound(user_id)
        if expected_version is not None and expected_version != user.version:
            raise VersionConflict()
        return user

    def _check_password(self, password: str, *, email: str, name: str, field: str) -> None:
        problems = password_problems(password, self.settings, email=email, name=name)
        if problems:
            raise ValidationFailed({field: problems})

    async def _verify_current(self, user_id: uuid.UUID, password: str) -> User | None:
        """The account as read, if `password` matches its hash; else None.

        Read in `uow.reader()` and verified outside the unit of work's transaction: on
        SQLite its first statement takes the write lock, which bcrypt must not hold. The
        caller compares the hash with the row it then writes: a password changed
        meanwhile is not the one verified.
        """
        async with self.uow.reader() as session:
            user = await UserRepository(session).get(user_id)
        if user is None:
            return None
        return user if await self.hasher.verify(password, user.password_hash) else None

    async def _flush(self) -> None:
        await flush_users(self.session)
