"""Checking the chain and applying retention: run by `gatehouse audit verify` and the
scheduled cleanup."""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.audit import trail
from gatehouse.audit.chain import Problem, Verdict, checkpoint_signature, verify
from gatehouse.audit.models import AuditCheckpoint
from gatehouse.audit.repository import AuditRepository
from gatehouse.audit.sealer import RETENTION_ACTION as RETENTION_ACTION
from gatehouse.audit.sealer import retention_anchor
from gatehouse.db.engine import Database
from gatehouse.kit import metrics
from gatehouse.kit.time import utcnow
from gatehouse.runtime import Runtime

_BATCH = 2000

log = structlog.get_logger("gatehouse.audit")


async def allow_maintenance(session: AsyncSession) -> None:
    """Let this transaction delete expired rows or null personal data (PostgreSQL's
    append-only trigger refuses everything else, and this, to anyone else)."""
    await AuditRepository(session).allow_maintenance()


def unsealed_age(oldest: datetime | None) -> float | None:
    """Seconds since the oldest unsealed row was recorded (never negative: another
    host's clock may be a little ahead)."""
    return None if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())


def _signed(key: bytes, checkpoint: AuditCheckpoint) -> bool:
    expected = checkpoint_signature(
        key, checkpoint.seq, checkpoint.hash, checkpoint.row_count, checkpoint.created_at
    )
    return hmac.compare_digest(expected, checkpoint.signature)


async def verify_chain(db: Database, key: bytes) -> Verdict:
    """Walk the whole chain in seq order, a batch at a time; it must reach the newest
    checkpoint. The head it reached is logged (`audit.verified`), with the rows not
    sealed yet, which the walk does not cover."""
    verdict = await _verify_chain(db, key)
    _report("audit.verified", verdict, log.info)
    return verdict


async def verify_recent(runtime: Runtime) -> Verdict:
    """Check the chain from the previous checkpoint on, and report the verdict
    (gatehouse_audit_chain_ok and its time, the `audit.chain_checked` log line).

    Run by the cleanup job right after its own checkpoint: each run checks the rows
    written since the run before (signed checkpoint to signed checkpoint, then to the
    head), so its cost follows the traffic of an hour, not the size of the trail. An
    older row altered later is `gatehouse audit verify`'s to find (the whole chain).
    The first run, with no earlier checkpoint, checks the whole chain.
    """
    verdict = await _verify_chain(runtime.db, runtime.audit_key, recent=True)
    metrics.AUDIT_CHAIN_OK.set(1 if verdict.ok else 0)
    metrics.AUDIT_CHAIN_VERIFIED_AT.set_to_current_time()
    _report("audit.chain_checked", verdict, log.info if verdict.ok else log.error)
    return verdict


def _report(event: str, verdict: Verdict, level: Callable[..., Any]) -> None:
    head_seq, head_hash = verdict.head or (None, None)
    level(
        event,
        ok=verdict.ok,
        rows=verdict.checked,
        head_seq=head_seq,
        head_hash=head_hash,
        problem=None if verdict.ok else str(verdict.problem),
        unsealed=verdict.unsealed,
        oldest_unsealed_seconds=verdict.oldest_unsealed_seconds,
    )


async def _verify_chain(db: Database, key: bytes, *, recent: bool = False) -> Verdict:
    # One read transaction for the whole walk: the anchor, the checkpoint and the rows
    # are one snapshot.
    async with db.session(write=False) as session:
        repository = AuditRepository(session)
        anchor = await retention_anchor(repository)
        newest = await repository.newest_checkpoint()
        if newest is not None and not _signed(key, newest):
            message = f"checkpoint {newest.id} is not signed with the audit key (forged?)"
            return Verdict(0, Problem(None, None, message))
        checkpoint = (newest.seq, newest.hash) if newest is not None else None
        start = -1
        previous = await repository.checkpoint_before(newest.id) if recent and newest else None
        if previous is not None and (anchor is None or previous.seq > anchor[0]):
            # Trusted as a starting point only with the key's signature.
            if not _signed(key, previous):
                message = f"checkpoint {previous.id} is not signed with the audit key (forged?)"
                return Verdict(0, Problem(None, None, message))
            anchor, start = (previous.seq, previous.hash), previous.seq

        async def rows() -> AsyncIterator[dict[str, Any]]:
            after = start
            while True:
                batch = await repository.rows_after(after, _BATCH)
                for row in batch:
                    yield row
                if len(batch) < _BATCH:
                    return
                after = batch[-1]["seq"]

        verdict = await verify(key, rows(), anchor=anchor, checkpoint=checkpoint)
        unsealed, oldest = await repository.unsealed_backlog()
        return dataclasses.replace(
            verdict, unsealed=unsealed, oldest_unsealed_seconds=unsealed_age(oldest)
        )


async def checkpoint(runtime: Runtime) -> AuditCheckpoint | None:
    """Keep the chain's head as a signed checkpoint, and log it (`audit.checkpoint`).

    Run by the cleanup job after the retention purge. Maintenance (the flag that lets
    the purge delete expired rows) cannot remove a checkpoint on PostgreSQL, and the
    log line is a copy outside the database: rows up to the head cannot go unnoticed.
    """
    async with runtime.db.session() as session:
        repository = AuditRepository(session)
        head = await repository.last_link()
        if head is None:
            return None
        seq, head_hash = head
        row_count = await repository.count_through(seq)
        created_at = utcnow()
        row = AuditCheckpoint(
            seq=seq,
            hash=head_hash,
            row_count=row_count,
            created_at=created_at,
            signature=checkpoint_signature(
                runtime.audit_key, seq, head_hash, row_count, created_at
            ),
        )
        await repository.add_checkpoint(row)
    log.info("audit.checkpoint", seq=seq, hash=head_hash, count=row_count)
    return row


async def purge_expired(
    runtime: Runtime, retention_days: int, *, now: datetime | None = None
) -> int:
    """Remove rows older than the retention period, oldest first, and record the cut.

    Only a prefix of the sealed chain goes (rows before the first one still inside the
    period), so nothing younger than the period is ever removed, even with a clock
    that stepped back; the audit row of the purge names the last removed row, from
    which the rest of the chain verifies.
    """
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    async with runtime.unit_of_work() as uow:
        repository = AuditRepository(uow.session)
        # The sealer waits: the anchor below and the chain it continues stay one.
        await repository.lock_chain()
        first_kept = await repository.first_seq_since(cutoff)
        through = await repository.last_before(cutoff, below_seq=first_kept)
        if through is None:
            return 0
        through_seq, through_hash = through
        await repository.allow_maintenance()
        removed = await repository.delete_through(through_seq)
        # Sealed later, like any row; with no sealed row left, the sealer continues the
        # chain from the anchor this row records.
        uow.audit.record(
            trail.Entry(
                action=RETENTION_ACTION,
                details={
                    "removed": removed,
                    "through_seq": through_seq,
                    "through_hash": through_hash,
                    "retention_days": retention_days,
                },
            ),
        )
    return removed
