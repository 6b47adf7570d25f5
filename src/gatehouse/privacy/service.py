"""GDPR: export a user's data, restore a deleted account, erase deleted accounts after
the grace period, and the inactive-users listing and purge. Never commits itself; the
runtime-level functions (worker, CLI) open one unit of work per user.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError

from gatehouse.audit import trail
from gatehouse.auth.principal import Principal
from gatehouse.clients.models import OAuthClient
from gatehouse.config import Settings
from gatehouse.errors import (
    EmailTaken,
    Forbidden,
    GatehouseError,
    LastAdmin,
    UserNotFound,
    ValidationFailed,
)
from gatehouse.events import outbox
from gatehouse.events.schemas import UserRestored, format_timestamp
from gatehouse.kit.time import utcnow
from gatehouse.mfa.repository import MfaRepository
from gatehouse.privacy.erasure import erase
from gatehouse.privacy.errors import (
    RestoreWindowClosed,
    UserAlreadyErased,
    UserNotDeleted,
)
from gatehouse.privacy.repository import PrivacyRepository, is_erased
from gatehouse.privacy.schemas import (
    ExportActionToken,
    ExportApplication,
    ExportAuditEvent,
    ExportEmail,
    ExportEvent,
    ExportFactor,
    ExportGrant,
    ExportProfile,
    ExportSession,
    UserExport,
)
from gatehouse.runtime import Runtime
from gatehouse.uow import UnitOfWork
from gatehouse.users.models import Role, User
from gatehouse.users.repository import UserRepository
from gatehouse.users.service import ensure_another_admin, is_email_conflict, soft_delete

log = structlog.get_logger("gatehouse.privacy")

EXPORT_ACTION = "user.export"
RESTORE_ACTION = "user.restore"
DELETE_ACTION = "user.delete"
INACTIVE_LIST_ACTION = "user.inactive_list"
INACTIVE_PURGE_ACTION = "user.inactive_purge"


async def _export_document(repo: PrivacyRepository, user_id: uuid.UUID) -> UserExport | None:
    """Everything held about the user, read in one transaction; None if there is no
    such user (or they are erased)."""
    user = await repo.user(user_id)
    if user is None or is_erased(user):
        return None
    return UserExport(
        exported_at=utcnow(),
        user=ExportProfile.model_validate(user),
        sessions=[ExportSession.model_validate(s) for s in await repo.sessions(user.id)],
        emails=[ExportEmail.model_validate(e) for e in await repo.emails(user.id)],
        action_tokens=[
            ExportActionToken.model_validate(t) for t in await repo.action_tokens(user.id)
        ],
        factors=await _factors(MfaRepository(repo.session), user.id),
        applications=await _applications(repo, user.id),
        audit_events=[ExportAuditEvent.of(r, user.id) for r in await repo.audit_about(user.id)],
        events=[
            ExportEvent(
                event_type=e.event_type,
                event_id=e.event_id,
                timestamp=str(e.payload.get("timestamp") or format_timestamp(e.created_at)),
            )
            for e in await repo.events_about(user.id)
        ],
    )


async def _applications(repo: PrivacyRepository, user_id: uuid.UUID) -> list[ExportApplication]:
    consents, grants = await repo.applications(user_id)
    found: dict[uuid.UUID, ExportApplication] = {}

    def of(client: OAuthClient) -> ExportApplication:
        if client.id not in found:
            found[client.id] = ExportApplication(
                client_id=client.client_id,
                name=client.name,
                consented_scopes=[],
                consented_at=None,
                grants=[],
            )
        return found[client.id]

    for consent, client in consents:
        app = of(client)
        app.consented_scopes, app.consented_at = list(consent.scopes), consent.granted_at
    for grant, client in grants:
        of(client).grants.append(
            ExportGrant(
                scopes=list(grant.scopes),
                created_at=grant.created_at,
                revoked_at=grant.revoked_at,
                revoked_reason=grant.revoked_reason,
            )
        )
    return list(found.values())


async def _factors(mfa: MfaRepository, user_id: uuid.UUID) -> list[ExportFactor]:
    found: list[ExportFactor] = []
    totp = await mfa.totp(user_id)
    if totp is not None:
        found.append(
            ExportFactor(
                kind="totp",
                name=None,
                created_at=totp.created_at,
                confirmed_at=totp.confirmed_at,
                last_used_at=None,
                used_at=None,
            )
        )
    found.extend(
        ExportFactor(
            kind="passkey",
            name=passkey.name,
            created_at=passkey.created_at,
            confirmed_at=None,
            last_used_at=passkey.last_used_at,
            used_at=None,
        )
        for passkey in await mfa.passkeys.list_for_user(user_id)
    )
    found.extend(
        ExportFactor(
            kind="recovery_code",
            name=None,
            created_at=code.created_at,
            confirmed_at=None,
            last_used_at=None,
            used_at=code.used_at,
        )
        for code in await mfa.recovery_codes(user_id)
    )
    return found


class PrivacyService:
    def __init__(self, uow: UnitOfWork, settings: Settings) -> None:
        self.uow = uow
        self.session = session = uow.session
        self.settings = settings
        self.repo = PrivacyRepository(session)

    async def export(self, actor: Principal, user_id: uuid.UUID) -> UserExport:
        """Everything held about the user: themself, or any user for an admin (deleted
        ones too, until erased); a readonly caller is refused, a plain user sees none."""
        if actor.user_id != user_id and not actor.is_admin:
            self._audit(actor, EXPORT_ACTION, user_id, outcome="denied", always=True)
            if actor.role is Role.readonly:
                raise Forbidden("Only admins can export another user's data")
            raise UserNotFound(user_id)
        # An export tolerates a few seconds' lag: the read replica may serve it, except
        # right after the caller's own write (then the primary does).
        document = await self.uow.replica_ok(
            lambda session: _export_document(PrivacyRepository(session), user_id)
        )
        if document is None:
            raise UserNotFound(user_id)
        self._audit(
            actor,
            EXPORT_ACTION,
            user_id,
            details={
                "sessions": len(document.sessions),
                "emails": len(document.emails),
                "factors": len(document.factors),
                "audit_events": len(document.audit_events),
                "events": len(document.events),
            },
        )
        return document

    async def restore(self, actor: Principal, user_id: uuid.UUID) -> User:
        """Undo a soft delete within the grace period: the account is live again (its
        sessions stay ended; the user logs in anew). A refusal is audited too."""
        try:
            user = await self._restore(user_id)
        except GatehouseError as exc:
            # A validation code alone (a taken email) would not say what was wrong.
            details = {"fields": sorted(exc.details)} if isinstance(exc, ValidationFailed) else {}
            self._audit(
                actor,
                RESTORE_ACTION,
                user_id,
                outcome="failure",
                reason=exc.code,
                details=details,
                always=True,
            )
            raise
        self._audit(actor, RESTORE_ACTION, user.id)
        return user

    async def _restore(self, user_id: uuid.UUID) -> User:
        user = await self.repo.user(user_id, lock=True)
        if user is None:
            raise UserNotFound(user_id)
        if user.deleted_at is None:
            raise UserNotDeleted()
        if is_erased(user):
            raise UserAlreadyErased()
        grace = self.settings.audit.erasure_grace_days
        if utcnow() > user.deleted_at + timedelta(days=grace):
            raise RestoreWindowClosed(
                f"The {grace}-day grace period ended; the account is due for erasure"
            )
        if await self.repo.live_owner_of(user.email, user.id) is not None:
            raise EmailTaken()
        user.deleted_at = None
        try:
            await self.session.flush()
        except IntegrityError as exc:
            # A sign-up with the same address committed after our check.
            if is_email_conflict(exc):
                raise EmailTaken() from None
            raise
        await outbox.record(
            self.uow, UserRestored(user_id=user.id, version=user.version), aggregate_id=user.id
        )
        return user

    def _audit(
        self,
        actor: Principal,
        action: str,
        user_id: uuid.UUID,
        *,
        outcome: str = "success",
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        always: bool = False,
    ) -> None:
        self.uow.audit.record(
            trail.Entry(
                action=action,
                outcome=outcome,
                reason=reason,
                target_type="user",
                target_id=str(user_id),
                actor_id=actor.user_id,
                actor_role=actor.role.value,
                details=details or {},
            ),
            always=always,
        )


# --- scheduled and operator work (worker, CLI) ----------------------------------------------


async def purge_erased(
    runtime: Runtime, now: datetime | None = None, *, budget_seconds: float | None = None
) -> int:
    """Erase every user deleted more than `erasure_grace_days` ago and not yet erased,
    one unit of work each; how many were erased. Running it again erases nothing more.

    With `budget_seconds`, stop starting new erasures after that long: a backlog (a mass
    deletion a month ago) is worked off over several runs instead of one job outliving
    its time limit.
    """
    grace = runtime.settings.audit.erasure_grace_days
    cutoff = (now or utcnow()) - timedelta(days=grace)
    deadline = time.monotonic() + budget_seconds if budget_seconds is not None else None
    failed: set[uuid.UUID] = set()
    erased = 0
    # Each unit of work below acts as the system (`Actor.system()`): no caller, no client.
    while True:
        if deadline is not None and time.monotonic() > deadline:
            log.warning("privacy.erasure_deferred", erased=erased)
            break
        current: uuid.UUID | None = None
        try:
            async with runtime.unit_of_work() as uow:
                repo = PrivacyRepository(uow.session)
                user = await repo.next_due_for_erasure(cutoff, failed)
                if user is None:
                    break
                current = user.id
                result = await erase(
                    uow, user, settings=runtime.settings, details={"grace_days": grace}
                )
        except Exception:
            if current is None:
                raise
            # Left for the next run; the others go on.
            log.exception("privacy.erase_failed", user_id=str(current))
            failed.add(current)
            continue
        erased += 1
        log.info("privacy.user_erased", user_id=str(current), **vars(result))
    return erased


@dataclass(frozen=True)
class InactiveUser:
    id: uuid.UUID
    email: str
    name: str
    role: str
    created_at: datetime
    last_login_at: datetime | None
    # The last login, or the creation for a user who never logged in.
    last_seen_at: datetime
    # Purging an admin needs care (the last one is never purged): flagged for the operator.
    is_admin: bool


@dataclass(frozen=True)
class Skipped:
    id: uuid.UUID
    email: str
    reason: str


@dataclass
class InactivePurge:
    erased: int = 0
    skipped: list[Skipped] = field(default_factory=list)


def _inactive(user: User) -> InactiveUser:
    return InactiveUser(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        last_seen_at=user.last_login_at or user.created_at,
        is_admin=user.role == Role.admin.value,
    )


def _inactive_days(runtime: Runtime, days: int | None) -> int:
    return days if days is not None else runtime.settings.audit.inactive_user_days


async def list_inactive(
    runtime: Runtime, days: int | None = None, *, now: datetime | None = None
) -> list[InactiveUser]:
    """Live users not seen for more than `days` (default `inactive_user_days`): their
    last login, or their creation if they never logged in, is older than that."""
    days = _inactive_days(runtime, days)
    cutoff = (now or utcnow()) - timedelta(days=days)
    async with runtime.unit_of_work(write=False) as uow:
        rows = [_inactive(u) for u in await PrivacyRepository(uow.session).inactive(cutoff)]
        uow.audit.record(
            trail.Entry(
                action=INACTIVE_LIST_ACTION,
                details={"days": days, "count": len(rows), "admins": sum(r.is_admin for r in rows)},
            )
        )
    return rows


async def purge_inactive(
    runtime: Runtime, days: int | None = None, *, now: datetime | None = None
) -> InactivePurge:
    """Delete and at once erase every inactive user (the operator's explicit `--purge`),
    one unit of work each; the last live admin is kept, with the reason."""
    days = _inactive_days(runtime, days)
    cutoff = (now or utcnow()) - timedelta(days=days)
    outcome = InactivePurge()
    async with runtime.db.session(write=False) as session:
        candidates = [_inactive(u) for u in await PrivacyRepository(session).inactive(cutoff)]
    for candidate in candidates:
        async with runtime.unit_of_work() as uow:
            if candidate.is_admin:
                # Admins first, then the row: the order every admin removal locks in.
                try:
                    await ensure_another_admin(UserRepository(uow.session), candidate.id)
                except LastAdmin:
                    reason = "last active admin: never purged, create another admin first"
                    outcome.skipped.append(Skipped(candidate.id, candidate.email, reason))
                    uow.audit.record(
                        trail.Entry(
                            action=DELETE_ACTION,
                            outcome="failure",
                            reason="last_admin",
                            target_type="user",
                            target_id=str(candidate.id),
                            details={"inactive_days": days},
                        )
                    )
                    continue
            user = await PrivacyRepository(uow.session).user(candidate.id, lock=True)
            # Checked again under the lock: deleted or logged in since the listing.
            if user is None or user.deleted_at is not None:
                continue
            if (user.last_login_at or user.created_at) >= cutoff:
                continue
            if user.role == Role.admin.value and not candidate.is_admin:
                continue  # promoted since the listing; the next run sees it as an admin
            # What `DELETE /users/{id}` does, for consumers that follow deletions; the
            # erasure comes right after.
            await soft_delete(uow, user, reason="inactive", details={"inactive_days": days})
            await erase(
                uow,
                user,
                settings=runtime.settings,
                details={"reason": "inactive", "inactive_days": days},
            )
        outcome.erased += 1
        log.info("privacy.inactive_user_erased", user_id=str(candidate.id))
    async with runtime.unit_of_work() as uow:
        uow.audit.record(
            trail.Entry(
                action=INACTIVE_PURGE_ACTION,
                details={"days": days, "erased": outcome.erased, "skipped": len(outcome.skipped)},
            )
        )
    return outcome
