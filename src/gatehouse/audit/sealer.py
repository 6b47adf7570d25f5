"""Sealing: giving the rows that requests inserted unsealed their place in the chain.

A request inserts its audit rows with their own fields and personal-data digest only
(gatehouse.audit.trail); this job, run by the worker's sweep every few seconds, takes
the chain lock, reads the committed unsealed rows oldest id first, a batch at a time,
and sets each row's `seq` (contiguous after the last sealed row), `prev_hash` and
`hash` (the HMAC `verify` checks). One batch is one transaction. With several sealers
at once (every API process of the embedded default sweeps) the lock makes them take
turns: the second finds the rows sealed and seals the next ones, so there is one
chain. Sealing a row twice is impossible: only rows whose seq is NULL are read and
updated, and PostgreSQL's trigger refuses to change a sealed row's chain.
"""

from __future__ import annotations

import structlog

from gatehouse.audit.chain import GENESIS, row_hash
from gatehouse.audit.repository import AuditRepository
from gatehouse.db.engine import Database

RETENTION_ACTION = "audit.retention_purge"
BATCH = 1000

log = structlog.get_logger("gatehouse.audit")


async def retention_anchor(repository: AuditRepository) -> tuple[int, str] | None:
    """(seq, hash) of the last row the retention job removed, as its newest audit row
    says (sealed or not: the purge that removed the rows wrote it in the same commit)."""
    details = await repository.last_details(RETENTION_ACTION)
    if not details:
        return None
    return int(details["through_seq"]), str(details["through_hash"])


async def seal_pending(db: Database, key: bytes, *, batch: int = BATCH) -> int:
    """Seal every committed unsealed row, `batch` rows a transaction; how many."""
    if not await _any_unsealed(db):
        return 0
    sealed = 0
    while True:
        count = await _seal_batch(db, key, batch)
        sealed += count
        if count < batch:
            break
    if sealed:
        log.debug("audit.sealed", rows=sealed)
    return sealed


async def _any_unsealed(db: Database) -> bool:
    # A read first: on SQLite a write transaction takes the database's write lock, and
    # the sweep runs every few seconds whether or not anything was audited.
    async with db.session(write=False) as session:
        return bool(await AuditRepository(session).unsealed(1))


async def _seal_batch(db: Database, key: bytes, size: int) -> int:
    async with db.session() as session:
        repository = AuditRepository(session)
        # Before any read: the last link and the rows are read after the previous
        # sealer committed (READ COMMITTED takes a snapshot per statement).
        await repository.lock_chain()
        rows = await repository.unsealed(size)
        if not rows:
            return 0
        last = await repository.last_link()
        # No sealed row left: the retention job removed them all, and the chain goes on
        # from the last one it removed.
        seq, prev_hash = last or await retention_anchor(repository) or (0, GENESIS)
        links = []
        for row in rows:
            seq += 1
            digest = row_hash(key, prev_hash, {**row, "seq": seq})
            links.append(
                {"row_id": row["id"], "link_seq": seq, "link_prev": prev_hash, "link_hash": digest}
            )
            prev_hash = digest
        await repository.seal(links)
    return len(rows)
