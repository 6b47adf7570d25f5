"""Checking the chain and applying retention: run by `gatehouse audit verify` and the
scheduled cleanup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.audit import trail
from gatehouse.audit.chain import HASHED_FIELDS, Verdict, verify
from gatehouse.audit.models import AuditEvent
from gatehouse.db.engine import Database
from gatehouse.kit.time import utcnow
from gatehouse.runtime import Runtime

RETENTION_ACTION = "audit.retention_purge"
_BATCH = 2000
# What verify reads of a row: the hashed fields and what the chain stores beside them.
_COLUMNS = ("id", *HASHED_FIELDS, "pii", "prev_hash", "hash")


async def allow_maintenance(session: AsyncSession) -> None:
    """Let this transaction delete expired rows or null personal data (PostgreSQL's
    append-only trigger refuses everything else, and this, to anyone else)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT set_config('gatehouse.audit_maintenance', 'on', true)"))


async def _anchor(session: AsyncSession) -> tuple[int, str] | None:
    details = await session.scalar(
        select(AuditEvent.details)
        .where(AuditEvent.action == RETENTION_ACTION)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    if not details:
        return None
    return int(details["through_seq"]), str(details["through_hash"])


async def verify_chain(db: Database, key: bytes) -> Verdict:
    """Walk the whole chain in seq order, a batch at a time."""
    async with db.session(write=False) as session:
        anchor = await _anchor(session)

        async def rows() -> AsyncIterator[dict[str, Any]]:
            after = -1
            while True:
                batch = (
                    await session.execute(
                        select(*(getattr(AuditEvent, c) for c in _COLUMNS))
                        .where(AuditEvent.seq > after)
                        .order_by(AuditEvent.seq)
                        .limit(_BATCH)
                    )
                ).all()
                for row in batch:
                    yield dict(row._mapping)
                if len(batch) < _BATCH:
                    return
                after = batch[-1].seq

        return await verify(key, rows(), anchor=anchor)


async def purge_expired(
    runtime: Runtime, retention_days: int, *, now: datetime | None = None
) -> int:
    """Remove rows older than the retention period, oldest first, and record the cut.

    Only a prefix of the chain goes (rows before the first one still inside the
    period), so nothing younger than the period is ever removed, even with a clock
    that stepped back; the audit row of the purge names the last removed row, from
    which the rest of the chain verifies.
    """
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    async with runtime.unit_of_work() as uow:
        session = uow.session
        first_kept = await session.scalar(
            select(func.min(AuditEvent.seq)).where(AuditEvent.occurred_at >= cutoff)
        )
        last = select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.occurred_at < cutoff)
        if first_kept is not None:
            last = last.where(AuditEvent.seq < first_kept)
        through = (await session.execute(last.order_by(AuditEvent.seq.desc()).limit(1))).first()
        if through is None:
            return 0
        await allow_maintenance(session)
        result = await session.execute(delete(AuditEvent).where(AuditEvent.seq <= through.seq))
        removed = int(result.rowcount or 0)  # type: ignore[attr-defined]
        uow.audit.chain_tail = (through.seq, through.hash)
        uow.audit.record(
            trail.Entry(
                action=RETENTION_ACTION,
                details={
                    "removed": removed,
                    "through_seq": through.seq,
                    "through_hash": through.hash,
                    "retention_days": retention_days,
                },
            ),
        )
    return removed
