"""Every SQL statement of the export, the restore and the erasure of a user."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, cast, delete, func, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.audit.models import AuditEvent
from gatehouse.auth.models import RefreshToken, Session
from gatehouse.clients.models import OAuthClient, OAuthConsent
from gatehouse.emails.models import EmailMessage
from gatehouse.events.models import OutboxEvent
from gatehouse.oidc.models import OAuthBrowserSession, OAuthGrant, OAuthRefreshToken
from gatehouse.recovery.models import ActionToken
from gatehouse.users.models import User
from gatehouse.webhooks.models import WebhookDelivery

# An erased account's address: `.invalid` is reserved (RFC 2606), so no live account
# can ever have one (the email validator refuses it) and it marks the row as erased.
ERASED_DOMAIN = "erased.invalid"
# The pii keys that hold an address: a profile's email, what was typed at a login or
# a verification or reset request.
_ADDRESS_KEYS = ("email", "identifier")


def erased_email(user_id: uuid.UUID) -> str:
    return f"erased-{user_id}@{ERASED_DOMAIN}"


def is_erased(user: User) -> bool:
    return user.email.endswith(f"@{ERASED_DOMAIN}")


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class PrivacyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- users ---------------------------------------------------------------------------

    async def user(self, user_id: uuid.UUID, *, lock: bool = False) -> User | None:
        """The row, deleted or not; with `lock`, held until the unit of work ends."""
        stmt = select(User).where(User.id == user_id)
        if lock:
            stmt = stmt.with_for_update()
        result: User | None = await self.session.scalar(stmt)
        return result

    async def live_owner_of(self, email: str, other_than: uuid.UUID) -> uuid.UUID | None:
        found: uuid.UUID | None = await self.session.scalar(
            select(User.id).where(
                User.email == email, User.deleted_at.is_(None), User.id != other_than
            )
        )
        return found

    async def next_due_for_erasure(
        self, deleted_before: datetime, skip: Collection[uuid.UUID]
    ) -> User | None:
        """One soft-deleted, not yet erased user deleted before the cutoff, locked; rows
        another purge holds are skipped (PostgreSQL), so two purges never collide."""
        stmt = (
            select(User)
            .where(
                User.deleted_at.is_not(None),
                User.deleted_at < deleted_before,
                User.email.not_like(f"%@{ERASED_DOMAIN}"),
            )
            .order_by(User.deleted_at, User.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if skip:
            stmt = stmt.where(User.id.not_in(list(skip)))
        result: User | None = await self.session.scalar(stmt)
        return result

    async def inactive(self, seen_before: datetime) -> Sequence[User]:
        """Live users whose last login (or creation, if they never logged in) is older
        than the cutoff, the longest unseen first."""
        rows = await self.session.scalars(
            select(User)
            .where(
                User.deleted_at.is_(None),
                or_(
                    and_(User.last_login_at.is_not(None), User.last_login_at < seen_before),
                    and_(User.last_login_at.is_(None), User.created_at < seen_before),
                ),
            )
            .order_by(User.created_at, User.id)
        )
        return rows.all()

    # --- what the export shows -------------------------------------------------------------

    async def sessions(self, user_id: uuid.UUID) -> Sequence[Session]:
        rows = await self.session.scalars(
            select(Session).where(Session.user_id == user_id).order_by(Session.created_at)
        )
        return rows.all()

    async def emails(self, user_id: uuid.UUID) -> Sequence[EmailMessage]:
        rows = await self.session.scalars(
            select(EmailMessage)
            .where(EmailMessage.user_id == user_id)
            .order_by(EmailMessage.created_at)
        )
        return rows.all()

    async def action_tokens(self, user_id: uuid.UUID) -> Sequence[ActionToken]:
        rows = await self.session.scalars(
            select(ActionToken)
            .where(ActionToken.user_id == user_id)
            .order_by(ActionToken.created_at)
        )
        return rows.all()

    async def audit_about(self, user_id: uuid.UUID) -> Sequence[AuditEvent]:
        """Rows the user did or that were about them (both columns are indexed)."""
        rows = await self.session.scalars(
            select(AuditEvent)
            .where(or_(AuditEvent.actor_id == user_id, AuditEvent.target_id == str(user_id)))
            .order_by(AuditEvent.id)
        )
        return rows.all()

    async def events_about(self, user_id: uuid.UUID) -> Sequence[OutboxEvent]:
        rows = await self.session.scalars(
            select(OutboxEvent).where(OutboxEvent.aggregate_id == user_id).order_by(OutboxEvent.id)
        )
        return rows.all()

    # --- erasure ---------------------------------------------------------------------------

    async def applications(
        self, user_id: uuid.UUID
    ) -> tuple[
        Sequence[tuple[OAuthConsent, OAuthClient]], Sequence[tuple[OAuthGrant, OAuthClient]]
    ]:
        """The user's consents and grants, each with its client, oldest first."""
        consents = await self.session.execute(
            select(OAuthConsent, OAuthClient)
            .join(OAuthClient, OAuthClient.id == OAuthConsent.oauth_client_id)
            .where(OAuthConsent.user_id == user_id)
            .order_by(OAuthConsent.granted_at)
        )
        grants = await self.session.execute(
            select(OAuthGrant, OAuthClient)
            .join(OAuthClient, OAuthClient.id == OAuthGrant.oauth_client_id)
            .where(OAuthGrant.user_id == user_id)
            .order_by(OAuthGrant.created_at)
        )
        return [(c, k) for c, k in consents.all()], [(g, k) for g, k in grants.all()]

    async def delete_applications(self, user_id: uuid.UUID) -> int:
        """Every consent, grant, refresh token and provider browser session of the user
        (children first, as with sessions); the number of grants and consents."""
        grants = select(OAuthGrant.id).where(OAuthGrant.user_id == user_id)
        await self.session.execute(
            delete(OAuthRefreshToken)
            .where(OAuthRefreshToken.grant_id.in_(grants))
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(
            delete(OAuthBrowserSession)
            .where(
                OAuthBrowserSession.session_id.in_(
                    select(Session.id).where(Session.user_id == user_id)
                )
            )
            .execution_options(synchronize_session=False)
        )
        removed = 0
        for model in (OAuthGrant, OAuthConsent):
            result = await self.session.execute(
                delete(model)
                .where(model.user_id == user_id)
                .execution_options(synchronize_session=False)
            )
            removed += _rowcount(result)
        return removed

    async def delete_sessions(self, user_id: uuid.UUID) -> int:
        """Every session and refresh token of the user (the tokens first: the foreign
        key cascades too, but not on a SQLite connection without foreign keys)."""
        sessions = select(Session.id).where(Session.user_id == user_id)
        await self.session.execute(
            delete(RefreshToken)
            .where(RefreshToken.session_id.in_(sessions))
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(
            delete(Session)
            .where(Session.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def delete_action_tokens(self, user_id: uuid.UUID) -> int:
        result = await self.session.execute(
            delete(ActionToken)
            .where(ActionToken.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def delete_emails(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """Delete the user's mails; their ids (the file mailer names its files by them)."""
        ids = list(
            (
                await self.session.scalars(
                    select(EmailMessage.id).where(EmailMessage.user_id == user_id)
                )
            ).all()
        )
        if ids:
            await self.session.execute(
                delete(EmailMessage)
                .where(EmailMessage.id.in_(ids))
                .execution_options(synchronize_session=False)
            )
        return ids

    async def delete_events(self, ids: Collection[int]) -> None:
        if ids:
            await self.session.execute(
                delete(OutboxEvent)
                .where(OutboxEvent.id.in_(list(ids)))
                .execution_options(synchronize_session=False)
            )

    async def set_event_payload(self, event_id: int, payload: dict[str, Any]) -> None:
        await self.session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event_id)
            .values(payload=payload)
            .execution_options(synchronize_session=False)
        )

    async def deliveries_about(self, user_id: uuid.UUID) -> Sequence[WebhookDelivery]:
        """Webhook deliveries whose event names the user (`data.user_id`); a JSON path
        query on both backends. The table holds 30 days of deliveries, so no index."""
        rows = await self.session.scalars(
            select(WebhookDelivery).where(
                WebhookDelivery.payload[("data", "user_id")].as_string() == str(user_id)
            )
        )
        return rows.all()

    async def delete_deliveries(self, ids: Collection[uuid.UUID]) -> None:
        if ids:
            await self.session.execute(
                delete(WebhookDelivery)
                .where(WebhookDelivery.id.in_(list(ids)))
                .execution_options(synchronize_session=False)
            )

    async def set_delivery_payload(self, delivery_id: uuid.UUID, payload: dict[str, Any]) -> None:
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(payload=payload)
            .execution_options(synchronize_session=False)
        )

    async def addresses_in_audit(self, user_id: uuid.UUID) -> set[str]:
        """Every address the trail's rows about the user ever held: the one they signed
        up or were created with, every address they changed to, every identifier typed
        at a login or request that reached their account (lower case).

        Only rows whose target is the user: a row the user (an admin) did to someone
        else holds that person's address, not theirs.
        """
        rows = await self.session.scalars(
            select(AuditEvent.pii).where(
                AuditEvent.target_id == str(user_id),
                AuditEvent.target_type == "user",
                AuditEvent.pii.is_not(None),
            )
        )
        found: set[str] = set()
        for pii in rows.all():
            for key in _ADDRESS_KEYS:
                value = pii.get(key) if isinstance(pii, dict) else None
                if isinstance(value, str) and value.strip():
                    found.add(value.strip().casefold())
        return found

    async def null_audit_pii(self, user_id: uuid.UUID, addresses: Collection[str]) -> int:
        """Null the personal data of every audit row by or about the user, and of every
        row that names one of their `addresses` anywhere in it, whoever it was about: a
        login or reset typed with an old address by a stranger, a refused sign-up with
        it, an admin's audit read filtered by it.

        Only `pii` changes: the chain covers its digest, not the data, so it still
        verifies. The caller must have allowed maintenance (PostgreSQL's trigger).
        The address search reads every row that has personal data (no index can serve
        a substring): acceptable for a daily job, a few per run.
        """
        terms: set[str] = set()
        for address in addresses:
            folded = address.casefold()
            # As stored: raw, or JSON-escaped (non-ASCII as \uXXXX).
            terms |= {folded, json.dumps(folded)[1:-1]}
        pii_text = func.lower(cast(AuditEvent.pii, Text))
        result = await self.session.execute(
            update(AuditEvent)
            .where(
                AuditEvent.pii.is_not(None),
                or_(
                    AuditEvent.actor_id == user_id,
                    AuditEvent.target_id == str(user_id),
                    *(pii_text.contains(term, autoescape=True) for term in sorted(terms)),
                ),
            )
            # null(): SQL NULL, not the JSON value null (the trigger wants NULL).
            .values(pii=null())
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)
