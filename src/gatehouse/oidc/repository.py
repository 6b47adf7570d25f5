"""Every SQL statement about grants, their refresh tokens and browser sessions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.oidc.models import OAuthBrowserSession, OAuthGrant, OAuthRefreshToken
from gatehouse.oidc.protocol import CLIENT_CREDENTIALS


class GrantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, grant: OAuthGrant) -> None:
        self.session.add(grant)

    async def get(self, grant_id: uuid.UUID) -> OAuthGrant | None:
        result: OAuthGrant | None = await self.session.get(OAuthGrant, grant_id)
        return result

    async def by_code_hash(self, code_hash: str) -> OAuthGrant | None:
        result: OAuthGrant | None = await self.session.scalar(
            select(OAuthGrant).where(OAuthGrant.code_hash == code_hash).with_for_update()
        )
        return result

    async def spend_code(self, grant_id: uuid.UUID, now: datetime) -> bool:
        """Mark the grant's code used; False when it was used already (by a racing
        request too: the update is conditional, so exactly one exchange wins)."""
        result = await self.session.execute(
            update(OAuthGrant)
            .where(OAuthGrant.id == grant_id, OAuthGrant.code_used_at.is_(None))
            .values(code_used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def revoke(self, grant_id: uuid.UUID, now: datetime, reason: str) -> bool:
        """Revoke one grant (every token issued under it); whether it was live."""
        return bool(await self._revoke_where(now, reason, OAuthGrant.id == grant_id))

    async def revoke_for_user_and_client(
        self, user_id: uuid.UUID, client_pk: uuid.UUID, now: datetime, reason: str
    ) -> int:
        return await self._revoke_where(
            now, reason, OAuthGrant.user_id == user_id, OAuthGrant.oauth_client_id == client_pk
        )

    async def _revoke_where(
        self, now: datetime, reason: str, *conditions: ColumnElement[bool]
    ) -> int:
        """Revoke the live grants matching `conditions`; how many."""
        result = await self.session.execute(
            update(OAuthGrant)
            .where(*conditions, OAuthGrant.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def revoke_for_session(
        self, session_id: uuid.UUID, now: datetime, reason: str, *, keep_offline: bool = True
    ) -> int:
        """Revoke the grants a login session produced; those holding `offline_access`
        were asked for precisely to outlive it, so they stay unless told otherwise."""
        grants = await self.session.scalars(
            select(OAuthGrant).where(
                OAuthGrant.session_id == session_id, OAuthGrant.revoked_at.is_(None)
            )
        )
        ids = [g.id for g in grants.all() if not (keep_offline and "offline_access" in g.scopes)]
        if not ids:
            return 0
        return await self._revoke_where(now, reason, OAuthGrant.id.in_(ids))

    async def active_for_user(self, user_id: uuid.UUID) -> Sequence[OAuthGrant]:
        rows = await self.session.scalars(
            select(OAuthGrant).where(OAuthGrant.user_id == user_id, OAuthGrant.revoked_at.is_(None))
        )
        return rows.all()

    # --- refresh tokens -------------------------------------------------------------------

    def add_refresh_token(self, token: OAuthRefreshToken) -> None:
        self.session.add(token)

    async def refresh_token(self, token_hash: str) -> OAuthRefreshToken | None:
        result: OAuthRefreshToken | None = await self.session.scalar(
            select(OAuthRefreshToken)
            .where(OAuthRefreshToken.token_hash == token_hash)
            .with_for_update()
        )
        return result

    async def spend_refresh_token(self, token_hash: str, now: datetime) -> bool:
        """Mark a refresh token used; False when it was used already (reuse, or a race)."""
        result = await self.session.execute(
            update(OAuthRefreshToken)
            .where(OAuthRefreshToken.token_hash == token_hash, OAuthRefreshToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    # --- token side -----------------------------------------------------------------------

    async def revoke_for_user(self, user_id: uuid.UUID, now: datetime, reason: str) -> int:
        """Revoke every live grant of a person (a password change or reset: whoever
        knew the old password may have authorized a client)."""
        return await self._revoke_where(now, reason, OAuthGrant.user_id == user_id)

    async def delete_finished(
        self,
        *,
        unused_code_before: datetime,
        revoked_before: datetime,
        machine_before: datetime,
        created_before: datetime,
    ) -> int:
        """Forget grants nothing can use any more: a code never exchanged that expired
        before `unused_code_before`; revoked before `revoked_before`; client_credentials
        grants made before `machine_before` (their one access token has expired); any
        grant made before `created_before` (past every token's lifetime). Their refresh
        tokens go with them (ON DELETE CASCADE)."""
        result = await self.session.execute(
            delete(OAuthGrant)
            .where(
                or_(
                    and_(
                        OAuthGrant.code_hash.is_not(None),
                        OAuthGrant.code_used_at.is_(None),
                        OAuthGrant.code_expires_at < unused_code_before,
                    ),
                    OAuthGrant.revoked_at < revoked_before,
                    and_(
                        OAuthGrant.grant_type == CLIENT_CREDENTIALS,
                        OAuthGrant.created_at < machine_before,
                    ),
                    OAuthGrant.created_at < created_before,
                )
            )
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def delete_expired_refresh_tokens(self, now: datetime) -> int:
        """Refresh tokens past their expiry, used or not: refused either way. (A used
        one is kept until then: its reuse is what reveals a theft.)"""
        result = await self.session.execute(
            delete(OAuthRefreshToken)
            .where(OAuthRefreshToken.expires_at < now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class BrowserSessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, browser: OAuthBrowserSession) -> None:
        self.session.add(browser)

    async def get(self, token_hash: str) -> OAuthBrowserSession | None:
        result: OAuthBrowserSession | None = await self.session.get(OAuthBrowserSession, token_hash)
        return result

    async def delete_for_session(self, session_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(OAuthBrowserSession)
            .where(OAuthBrowserSession.session_id == session_id)
            .execution_options(synchronize_session=False)
        )

    # --- token side: cleanup ----------------------------------------------------------------

    async def delete_expired(self, now: datetime) -> int:
        result = await self.session.execute(
            delete(OAuthBrowserSession)
            .where(OAuthBrowserSession.expires_at < now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)
