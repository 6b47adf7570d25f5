"""Re-encrypting stored secrets under the key ring's first key
(`gatehouse keys rotate-encryption`, docs/operations.md#rotating-the-encryption-keys).

Each column of tokens is walked in order of its row key, one batch per transaction, and
only the values not under the first key are read: tokens of an older key are decrypted
and encrypted again, clear legacy values (`EncryptedColumn.clear_legacy`) encrypted.
A value is replaced only if it is still the one read (a secret rotated meanwhile is
left as its writer stored it), without bumping the row's version or `updated_at`: the
secret is the same, only its wrapping changed. Running it again finds nothing to do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.audit.trail import Entry
from gatehouse.kit.encryption import (
    VERSION,
    EncryptedColumn,
    EncryptionError,
    KeyRing,
    UnknownKey,
    is_token,
)
from gatehouse.mfa.service import TOTP_SECRET_COLUMN
from gatehouse.runtime import Runtime
from gatehouse.webhooks.signing import SECRET_COLUMN

log = structlog.get_logger("gatehouse.encryption")

# Every column of encrypted tokens; a feature that stores one adds it here.
ENCRYPTED_COLUMNS: tuple[EncryptedColumn, ...] = (SECRET_COLUMN, TOTP_SECRET_COLUMN)
ACTION = "keys.rotate_encryption"


@dataclass
class ColumnCounts:
    label: str
    # Tokens of an older key, now under the first one.
    reencrypted: int = 0
    # Values stored in clear before encryption, now encrypted.
    encrypted: int = 0
    # Values that cannot be decrypted, by why (which names the kid, never the value).
    failed: dict[str, int] = field(default_factory=dict)
    batches: int = 0

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    def fail(self, why: str) -> None:
        self.failed[why] = self.failed.get(why, 0) + 1

    def as_details(self) -> dict[str, Any]:
        return {
            "reencrypted": self.reencrypted,
            "encrypted": self.encrypted,
            "failed": self.failures,
        }


@dataclass
class Rotation:
    key_id: str
    columns: list[ColumnCounts]

    @property
    def failures(self) -> int:
        return sum(counts.failures for counts in self.columns)


async def rotate_encryption(
    runtime: Runtime,
    batch_size: int,
    columns: Sequence[EncryptedColumn] = ENCRYPTED_COLUMNS,
    progress: Callable[[ColumnCounts], None] | None = None,
) -> Rotation:
    """Bring every column under the first key; audited once, with the counts."""
    ring = runtime.encryption
    rotation = Rotation(ring.current, [])
    for column in columns:
        counts = ColumnCounts(column.label)
        rotation.columns.append(counts)
        after: uuid.UUID | None = None
        while True:
            async with runtime.unit_of_work() as uow:
                rows = await _due(uow.session, column, ring.current, after, batch_size)
                for key, value in rows:
                    await _rewrap(uow.session, ring, column, key, value, counts)
            counts.batches += 1
            if progress is not None:
                progress(counts)
            if len(rows) < batch_size:
                break
            after = rows[-1][0]
        log.info(
            "encryption.rotated", column=column.label, key_id=ring.current, **counts.as_details()
        )
    async with runtime.unit_of_work() as uow:
        uow.audit.record(
            Entry(
                ACTION,
                outcome="failure" if rotation.failures else "success",
                reason="undecryptable" if rotation.failures else None,
                details={
                    "key_id": ring.current,
                    "batch_size": batch_size,
                    "columns": {counts.label: counts.as_details() for counts in rotation.columns},
                },
            )
        )
    return rotation


def _why(error: EncryptionError) -> str:
    if isinstance(error, UnknownKey):
        return (
            f"key {error.kid!r} is not in GATEHOUSE_ENCRYPTION_KEYS "
            "(put it back, after the first key, until this command succeeds)"
        )
    return f"{error.reason} (key {error.kid!r})"


async def _due(
    session: AsyncSession,
    column: EncryptedColumn,
    current: str,
    after: uuid.UUID | None,
    limit: int,
) -> list[tuple[uuid.UUID, str]]:
    """The next rows, by key, whose value is not a token of the current key."""
    stmt = select(column.key, column.column).where(
        column.column.is_not(None),
        ~column.column.startswith(f"{VERSION}.{current}.", autoescape=True),
    )
    if after is not None:
        stmt = stmt.where(column.key > after)
    result = await session.execute(stmt.order_by(column.key).limit(limit))
    return [(key, value) for key, value in result.all()]


async def _rewrap(
    session: AsyncSession,
    ring: KeyRing,
    column: EncryptedColumn,
    key: uuid.UUID,
    value: str,
    counts: ColumnCounts,
) -> None:
    context = column.context(key)
    if is_token(value):
        try:
            plaintext = ring.decrypt(value, context=context)
        except EncryptionError as exc:  # logged by the ring, with the kid and the row
            counts.fail(_why(exc))
            return
        tally = "reencrypted"
    elif column.clear_legacy:
        plaintext, tally = value.encode(), "encrypted"
    else:
        log.error("encryption.not_a_token", column=column.label, context=context)
        counts.fail("not a token of this key ring")
        return
    entity = column.column.class_
    # The same secret, wrapped anew: what tracks changes to the row stays as it was.
    kept = {c: c for c in inspect(entity).columns if c.onupdate is not None}
    result = await session.execute(
        update(entity)
        .where(column.key == key, column.column == value)
        .values({column.column: ring.encrypt(plaintext, context=context), **kept})
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0):
        setattr(counts, tally, getattr(counts, tally) + 1)
