"""Every SQL statement about OAuth clients and the consents users give them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.clients.models import OAuthClient, OAuthConsent


class ClientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, client_pk: uuid.UUID) -> OAuthClient | None:
        result: OAuthClient | None = await self.session.get(OAuthClient, client_pk)
        return result

    async def by_client_id(self, client_id: str) -> OAuthClient | None:
        result: OAuthClient | None = await self.session.scalar(
            select(OAuthClient).where(OAuthClient.client_id == client_id)
        )
        return result

    async def page(self, page: int, page_size: int) -> tuple[Sequence[OAuthClient], int]:
        total = await self.session.scalar(select(func.count()).select_from(OAuthClient))
        rows = await self.session.scalars(
            select(OAuthClient)
            .order_by(OAuthClient.created_at.desc(), OAuthClient.id.desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        return rows.all(), int(total or 0)

    def add(self, client: OAuthClient) -> None:
        self.session.add(client)

    async def delete(self, client: OAuthClient) -> None:
        await self.session.delete(client)


class ConsentRepository:
    """What each user allowed each client: read by the consent screen, which asks only
    for the scopes not granted yet."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(self, user_id: uuid.UUID) -> Sequence[tuple[OAuthConsent, OAuthClient]]:
        """A user's consents with their clients, most recently changed first."""
        rows = await self.session.execute(
            select(OAuthConsent, OAuthClient)
            .join(OAuthClient, OAuthClient.id == OAuthConsent.oauth_client_id)
            .where(OAuthConsent.user_id == user_id)
            .order_by(OAuthConsent.updated_at.desc(), OAuthClient.id)
        )
        return [(consent, client) for consent, client in rows.all()]

    async def get(self, user_id: uuid.UUID, client_pk: uuid.UUID) -> OAuthConsent | None:
        result: OAuthConsent | None = await self.session.scalar(
            select(OAuthConsent)
            .where(OAuthConsent.user_id == user_id, OAuthConsent.oauth_client_id == client_pk)
            .execution_options(populate_existing=True)
        )
        return result

    async def grant(
        self, user_id: uuid.UUID, client_pk: uuid.UUID, scopes: Sequence[str], now: datetime
    ) -> OAuthConsent:
        """Add `scopes` to what the user allowed the client (never takes any away)."""
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        # Insert-or-nothing first: two first consents racing cannot both insert, and the
        # loser merges into the winner's row below.
        inserted = await self.session.execute(
            insert(OAuthConsent)
            .values(
                user_id=user_id,
                oauth_client_id=client_pk,
                scopes=sorted(set(scopes)),
                granted_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["user_id", "oauth_client_id"])
            .returning(OAuthConsent.user_id)
        )
        created = inserted.scalar_one_or_none() is not None
        consent: OAuthConsent | None = await self.session.scalar(
            select(OAuthConsent)
            .where(OAuthConsent.user_id == user_id, OAuthConsent.oauth_client_id == client_pk)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if consent is None:  # inserted above, or there already: only a bug gets here
            raise LookupError("the consent row vanished inside its own transaction")
        if not created:
            merged = sorted(set(consent.scopes) | set(scopes))
            if merged != sorted(consent.scopes):
                consent.scopes = merged
                consent.updated_at = now
                await self.session.flush()
        return consent

    async def revoke(self, user_id: uuid.UUID, client_pk: uuid.UUID) -> bool:
        """Forget the user's consent to the client; whether there was one."""
        result = await self.session.execute(
            delete(OAuthConsent)
            .where(OAuthConsent.user_id == user_id, OAuthConsent.oauth_client_id == client_pk)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))
