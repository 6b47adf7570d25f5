"""Erasing one user's personal data for good, in the caller's unit of work.

The users row stays (its id is what audit rows and past events point at) but holds
nothing personal any more; everything else that names the user is deleted, or rewritten
where it must stay (an event or delivery still owed to someone), and the audit trail
keeps its rows with their personal data nulled. The random user id is then a pseudonym:
nothing in Gatehouse links it to a person again.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gatehouse.audit import trail
from gatehouse.audit.service import allow_maintenance
from gatehouse.cache.store import invalidate_user
from gatehouse.config import Settings
from gatehouse.db.engine import after_commit
from gatehouse.emails.sender import MAIL_DIR
from gatehouse.events import outbox
from gatehouse.events.schemas import UserErased
from gatehouse.kit.context import SYSTEM_ROLE
from gatehouse.mfa.repository import MfaRepository
from gatehouse.privacy.repository import PrivacyRepository, erased_email
from gatehouse.uow import UnitOfWork
from gatehouse.users.models import User
from gatehouse.webhooks.repository import PENDING

ERASE_ACTION = "user.erase"
ERASED_NAME = "Erased user"
# Not a hash any verifier accepts: nobody can log in with any password.
UNUSABLE_PASSWORD = "!"  # noqa: S105 (a marker, not a password)
_PERSONAL_KEYS = ("email", "name")


@dataclass(frozen=True)
class Erased:
    """What one erasure removed (for logs and the audit row's details)."""

    sessions: int
    # TOTP secrets, recovery codes, passkeys and pending MFA ceremonies.
    factors: int
    # Consents and grants given to OpenID clients (with their refresh tokens).
    applications: int
    emails: int
    action_tokens: int
    events_deleted: int
    events_scrubbed: int
    deliveries_deleted: int
    deliveries_scrubbed: int
    audit_rows_scrubbed: int


def _scrubbed(payload: dict[str, Any], user: User) -> dict[str, Any] | None:
    """The payload with the user's email and name replaced by the erased row's values;
    None when it carried neither.

    An event still owed to someone keeps its schema (a string, not null, where the
    contract says string); it now says what the row says, and `user.erased` follows.
    """
    replacement = {"email": user.email, "name": user.name}
    result = copy.deepcopy(payload)
    data = result.get("data")
    changed = False
    for part in (data, data.get("changes") if isinstance(data, dict) else None):
        if not isinstance(part, dict):
            continue
        for key in _PERSONAL_KEYS:
            if part.get(key) is not None and part[key] != replacement[key]:
                part[key] = replacement[key]
                changed = True
    return result if changed else None


def _remove_mail_files(mail_dir: Path, email_ids: Collection[uuid.UUID]) -> None:
    """The file mailer's copies (no SMTP server configured): named after the row id."""
    if not mail_dir.is_dir():
        return
    for email_id in email_ids:
        for path in mail_dir.glob(f"*-{email_id}.*"):
            path.unlink(missing_ok=True)


async def erase(
    uow: UnitOfWork,
    user: User,
    *,
    settings: Settings,
    details: dict[str, Any],
) -> Erased:
    """Anonymise `user` (locked by the caller) and remove their personal data everywhere;
    record `user.erased` and the `user.erase` audit row.
    """
    # Without a broker nothing will ever publish an event: dispatched is done.
    broker = settings.broker_url is not None
    session = uow.session
    repo = PrivacyRepository(session)
    old_email = user.email
    user.email = erased_email(user.id)
    user.name = ERASED_NAME
    user.password_hash = UNUSABLE_PASSWORD
    user.email_verified_at = None
    user.last_login_at = None
    user.auth_version += 1
    await session.flush()
    invalidate_user(session, user.id)

    applications = await repo.delete_applications(user.id)
    sessions = await repo.delete_sessions(user.id)
    factors = sum((await MfaRepository(session).delete_all(user.id)).values())
    action_tokens = await repo.delete_action_tokens(user.id)
    emails = await repo.delete_emails(user.id)
    if emails:
        mail_dir = settings.server.data_dir / MAIL_DIR

        async def remove_files() -> None:
            await asyncio.to_thread(_remove_mail_files, mail_dir, emails)

        # Files are not transactional: only once the rows are gone for good.
        after_commit(session, remove_files)

    done: list[int] = []
    scrubbed_events = 0
    for event in await repo.events_about(user.id):
        finished = event.dispatched_at is not None and (
            event.published_at is not None or not broker
        )
        if finished:
            done.append(event.id)
            continue
        payload = _scrubbed(event.payload, user)
        if payload is not None:
            await repo.set_event_payload(event.id, payload)
            scrubbed_events += 1
    await repo.delete_events(done)

    finished_deliveries: list[uuid.UUID] = []
    scrubbed_deliveries = 0
    for delivery in await repo.deliveries_about(user.id):
        if delivery.status != PENDING:
            finished_deliveries.append(delivery.id)
            continue
        payload = _scrubbed(delivery.payload, user)
        if payload is not None:
            await repo.set_delivery_payload(delivery.id, payload)
            scrubbed_deliveries += 1
    await repo.delete_deliveries(finished_deliveries)

    # Every address the user ever had, not only the last: strangers' attempts and
    # refused sign-ups with an earlier one are linked to the user by the address alone.
    addresses = {old_email.casefold(), *await repo.addresses_in_audit(user.id)}
    await allow_maintenance(session)
    audit_rows = await repo.null_audit_pii(user.id, addresses)

    await outbox.record(
        uow, UserErased(user_id=user.id, version=user.version), aggregate_id=user.id
    )
    uow.audit.record(
        trail.Entry(
            action=ERASE_ACTION,
            target_type="user",
            target_id=str(user.id),
            actor_role=SYSTEM_ROLE,
            details=details,
        ),
    )
    return Erased(
        sessions=sessions,
        factors=factors,
        applications=applications,
        emails=len(emails),
        action_tokens=action_tokens,
        events_deleted=len(done),
        events_scrubbed=scrubbed_events,
        deliveries_deleted=len(finished_deliveries),
        deliveries_scrubbed=scrubbed_deliveries,
        audit_rows_scrubbed=audit_rows,
    )
