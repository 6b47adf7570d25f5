"""Every SQL statement of passkeys: credentials, ceremony challenges, and the reads of
the second-factor state that passkey rules depend on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.passkeys.models import Passkey, WebAuthnChallenge
from gatehouse.users.models import User


class PasskeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, passkey: Passkey) -> Passkey:
        self.session.add(passkey)
        await self.session.flush()
        return passkey

    async def list_for_user(self, user_id: uuid.UUID) -> Sequence[Passkey]:
        rows = await self.session.scalars(
            select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at)
        )
        return rows.all()

    async def count_for_user(self, user_id: uuid.UUID) -> int:
        count = await self.session.scalar(
            select(func.count()).select_from(Passkey).where(Passkey.user_id == user_id)
        )
        return int(count or 0)

    async def get_owned(self, passkey_id: uuid.UUID, user_id: uuid.UUID) -> Passkey | None:
        result: Passkey | None = await self.session.scalar(
            select(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user_id)
        )
        return result

    async def by_credential_id(self, credential_id: bytes) -> Passkey | None:
        result: Passkey | None = await self.session.scalar(
            select(Passkey).where(Passkey.credential_id == credential_id)
        )
        return result

    async def credential_exists(self, credential_id: bytes) -> bool:
        found = await self.session.scalar(
            select(exists().where(Passkey.credential_id == credential_id))
        )
        return bool(found)

    async def live_owner(self, user_id: uuid.UUID) -> User | None:
        result: User | None = await self.session.scalar(
            select(User).where(User.id == user_id, User.deleted_at.is_(None))
        )
        return result

    async def record_use(
        self, passkey_id: uuid.UUID, sign_count: int, backed_up: bool, when: datetime
    ) -> None:
        await self.session.execute(
            update(Passkey)
            .where(Passkey.id == passkey_id)
            .values(sign_count=sign_count, backed_up=backed_up, last_used_at=when)
            .execution_options(synchronize_session="fetch")
        )

    async def delete(self, passkey: Passkey) -> None:
        await self.session.delete(passkey)
        await self.session.flush()


class ChallengeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, challenge: WebAuthnChallenge) -> WebAuthnChallenge:
        self.session.add(challenge)
        await self.session.flush()
        return challenge

    async def spend(self, challenge_id: uuid.UUID, now: datetime) -> WebAuthnChallenge | None:
        """Mark an unused challenge used and return it; None when it is unknown or was
        used already. The conditional UPDATE is the race guard: of two requests
        presenting the same challenge, the second matches no row (PostgreSQL re-checks
        `used_at IS NULL` after the first commits; SQLite has one writer at a time).
        Expiry and purpose are the caller's to check: a challenge presented for the wrong
        purpose or too late is spent all the same."""
        result = await self.session.execute(
            update(WebAuthnChallenge)
            .where(WebAuthnChallenge.id == challenge_id, WebAuthnChallenge.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            return None
        found: WebAuthnChallenge | None = await self.session.scalar(
            select(WebAuthnChallenge)
            .where(WebAuthnChallenge.id == challenge_id)
            .execution_options(populate_existing=True)
        )
        return found

    async def delete_expired(self, before: datetime) -> int:
        result = await self.session.execute(
            delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at < before)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
