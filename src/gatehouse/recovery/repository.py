"""Every SQL statement about action tokens (email verification, password reset)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.recovery.models import ActionToken

TOKEN_BYTES = 32


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ActionTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def issue(
        self, user_id: uuid.UUID, purpose: str, email: str, ttl_seconds: int, now: datetime
    ) -> str:
        """A new token for `email`; returns the token itself, which only the email keeps."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        self.session.add(
            ActionToken(
                user_id=user_id,
                purpose=purpose,
                token_hash=hash_token(token),
                email=email,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl_seconds),
            )
        )
        await self.session.flush()
        return token

    async def find(self, token: str, purpose: str) -> ActionToken | None:
        result: ActionToken | None = await self.session.scalar(
            select(ActionToken).where(
                ActionToken.token_hash == hash_token(token), ActionToken.purpose == purpose
            )
        )
        return result

    async def consume(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Mark a token used; False when another request used it first.

        The conditional UPDATE is the race guard: of two concurrent uses, the second
        waits for the first, re-checks `used_at IS NULL` and matches nothing.
        """
        result = await self.session.execute(
            update(ActionToken)
            .where(ActionToken.id == token_id, ActionToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return getattr(result, "rowcount", 0) == 1

    async def use_up(self, user_id: uuid.UUID, purpose: str, now: datetime) -> int:
        """Mark every outstanding token of a user for `purpose` used (after a reset)."""
        result = await self.session.execute(
            update(ActionToken)
            .where(
                ActionToken.user_id == user_id,
                ActionToken.purpose == purpose,
                ActionToken.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0))

    async def delete_spent(self, now: datetime) -> int:
        """Remove used and expired tokens: they can never be accepted again."""
        result = await self.session.execute(
            delete(ActionToken)
            .where(or_(ActionToken.used_at.is_not(None), ActionToken.expires_at <= now))
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0))
