"""Every SQL statement about second factors: TOTP, recovery codes, the login's
mfa_token challenges, and what MFA needs to know of passkeys (their table is read and,
for an admin reset or an erasure, emptied here; only the passkeys feature adds rows)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.mfa.models import MfaChallenge, RecoveryCode, TotpFactor
from gatehouse.passkeys.models import Passkey, WebAuthnChallenge
from gatehouse.passkeys.repository import PasskeyRepository


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class MfaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # A user's passkeys are factors too; their reads are the passkeys feature's.
        self.passkeys = PasskeyRepository(session)

    # --- what a user has ------------------------------------------------------------------

    async def has_mfa(self, user_id: uuid.UUID) -> bool:
        """A confirmed TOTP or any passkey: one statement."""
        found = await self.session.scalar(
            select(
                or_(
                    exists().where(
                        TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None)
                    ),
                    exists().where(Passkey.user_id == user_id),
                )
            )
        )
        return bool(found)

    async def factor_count(self, user_id: uuid.UUID) -> int:
        """Confirmed TOTP (0 or 1) plus passkeys, as the database has them now."""
        totp = await self.session.scalar(
            select(func.count())
            .select_from(TotpFactor)
            .where(TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None))
        )
        return int(totp or 0) + await self.passkeys.count_for_user(user_id)

    async def totp(self, user_id: uuid.UUID) -> TotpFactor | None:
        # Fresh from the database: the conditional updates below bypass the ORM.
        found: TotpFactor | None = await self.session.scalar(
            select(TotpFactor)
            .where(TotpFactor.user_id == user_id)
            .execution_options(populate_existing=True)
        )
        return found

    async def recovery_codes_left(self, user_id: uuid.UUID) -> int:
        count = await self.session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        return int(count or 0)

    async def recovery_codes(self, user_id: uuid.UUID) -> Sequence[RecoveryCode]:
        rows = await self.session.scalars(
            select(RecoveryCode)
            .where(RecoveryCode.user_id == user_id)
            .order_by(RecoveryCode.created_at)
        )
        return rows.all()

    # --- TOTP -----------------------------------------------------------------------------

    async def put_pending_totp(self, user_id: uuid.UUID, sealed: str, now: datetime) -> None:
        """A new unconfirmed secret, replacing a pending one (the caller checked that no
        confirmed one exists)."""
        await self.session.execute(
            delete(TotpFactor).where(
                TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_(None)
            )
        )
        self.session.add(TotpFactor(user_id=user_id, secret=sealed, created_at=now))
        await self.session.flush()

    async def confirm_totp(self, user_id: uuid.UUID, step: int, now: datetime) -> bool:
        result = await self.session.execute(
            update(TotpFactor)
            .where(TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_(None))
            .values(confirmed_at=now, last_used_step=step)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def use_totp_step(self, user_id: uuid.UUID, step: int) -> bool:
        """Record `step` as used unless it (or a later one) was already: the race guard
        that makes one code good once, even for two concurrent requests."""
        result = await self.session.execute(
            update(TotpFactor)
            .where(
                TotpFactor.user_id == user_id,
                TotpFactor.confirmed_at.is_not(None),
                or_(TotpFactor.last_used_step.is_(None), TotpFactor.last_used_step < step),
            )
            .values(last_used_step=step)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def delete_totp(self, user_id: uuid.UUID) -> bool:
        result = await self.session.execute(delete(TotpFactor).where(TotpFactor.user_id == user_id))
        return _rowcount(result) > 0

    # --- recovery codes ---------------------------------------------------------------------

    async def replace_recovery_codes(
        self, user_id: uuid.UUID, hashes: Sequence[str], now: datetime
    ) -> None:
        await self.delete_recovery_codes(user_id)
        self.session.add_all(
            RecoveryCode(user_id=user_id, code_hash=code_hash, created_at=now)
            for code_hash in hashes
        )
        await self.session.flush()

    async def use_recovery_code(self, user_id: uuid.UUID, code_hash: str, now: datetime) -> bool:
        """Spend an unused code of the user's; False when there is none such (a second
        concurrent use of the same code matches nothing)."""
        result = await self.session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def delete_recovery_codes(self, user_id: uuid.UUID) -> int:
        result = await self.session.execute(
            delete(RecoveryCode).where(RecoveryCode.user_id == user_id)
        )
        return _rowcount(result)

    # --- the login's mfa_token ------------------------------------------------------------

    async def add_challenge(self, challenge: MfaChallenge) -> MfaChallenge:
        self.session.add(challenge)
        await self.session.flush()
        return challenge

    async def challenge(self, token_hash: str) -> MfaChallenge | None:
        found: MfaChallenge | None = await self.session.scalar(
            select(MfaChallenge).where(MfaChallenge.token_hash == token_hash)
        )
        return found

    async def fail_challenge(self, challenge_id: uuid.UUID) -> int:
        """One more wrong code; the challenge's failures now (counted in the database,
        so concurrent wrong codes each count)."""
        result = await self.session.execute(
            update(MfaChallenge)
            .where(MfaChallenge.id == challenge_id)
            .values(failures=MfaChallenge.failures + 1)
            .returning(MfaChallenge.failures)
            .execution_options(synchronize_session=False)
        )
        return int(result.scalar_one())

    async def use_challenge(
        self, challenge_id: uuid.UUID, now: datetime, max_failures: int
    ) -> bool:
        """Spend a live challenge: unused, unexpired, not exhausted; False otherwise
        (another request spent it first)."""
        result = await self.session.execute(
            update(MfaChallenge)
            .where(
                MfaChallenge.id == challenge_id,
                MfaChallenge.used_at.is_(None),
                MfaChallenge.expires_at > now,
                MfaChallenge.failures < max_failures,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def delete_challenges_ended_before(self, cutoff: datetime) -> int:
        result = await self.session.execute(
            delete(MfaChallenge).where(MfaChallenge.expires_at < cutoff)
        )
        return _rowcount(result)

    # --- removing everything (admin reset, erasure) ------------------------------------------

    async def delete_passkeys(self, user_id: uuid.UUID) -> int:
        result = await self.session.execute(delete(Passkey).where(Passkey.user_id == user_id))
        return _rowcount(result)

    async def delete_all(self, user_id: uuid.UUID) -> dict[str, int]:
        """Every factor and pending ceremony of the user; how many rows of each."""
        totp = await self.session.execute(delete(TotpFactor).where(TotpFactor.user_id == user_id))
        codes = await self.delete_recovery_codes(user_id)
        passkeys = await self.delete_passkeys(user_id)
        webauthn = await self.session.execute(
            delete(WebAuthnChallenge).where(WebAuthnChallenge.user_id == user_id)
        )
        challenges = await self.session.execute(
            delete(MfaChallenge).where(MfaChallenge.user_id == user_id)
        )
        return {
            "totp": _rowcount(totp),
            "recovery_codes": codes,
            "passkeys": passkeys,
            "challenges": _rowcount(challenges) + _rowcount(webauthn),
        }
