"""Every SQL statement of the audit trail: appending rows, sealing them into the chain,
the query API, the verification walk and the maintenance (retention, erasure).

Pages are keyset pages, newest first: `WHERE key < :cursor ORDER BY key DESC LIMIT n+1`;
nothing counts rows or skips them with OFFSET, so a page costs the same on the
millionth row as on the first. The key is `id`, whose indexes `(column, id)` hand rows
over in that order for each equality filter. With a time range the key is
`(occurred_at, id)` instead, read from the `(occurred_at, id)` index: ordered by id,
the database would walk every row newer than the range (or older, for the last page)
to find the few inside it, because nothing tells it that ids and times rise together,
and they need not: a clock stepped back, or rows written at a travelled time, break it.
Both orders are the same as long as the clock only moves forward.
tests/audit/test_scale.py checks the plans at 1,000,000 rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.audit.chain import HASHED_FIELDS
from gatehouse.audit.models import AuditCheckpoint, AuditEvent
from gatehouse.audit.schemas import AuditFilters

LIKE_ESCAPE = "\\"
# pg_advisory_xact_lock key of the chain: one sealer (or retention purge) at a time.
CHAIN_LOCK = 0x6761746568  # "gateh"
# What verification reads of a row: the hashed fields and what the chain stores beside.
CHAIN_COLUMNS = ("id", *HASHED_FIELDS, "pii", "prev_hash", "hash")
# What the sealer reads of an unsealed row: what its hash covers, but its place.
OWN_COLUMNS = ("id", *(name for name in HASHED_FIELDS if name != "seq"))


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last row's keys."""

    id: int
    occurred_at: datetime

    @classmethod
    def of(cls, row: AuditEvent) -> Position:
        return cls(row.id, row.occurred_at)


def ordered_by_time(filters: AuditFilters) -> bool:
    return filters.since is not None or filters.until is not None


def _like_prefix(prefix: str) -> str:
    escaped = (
        prefix.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return escaped + "%"


def filter_clauses(filters: AuditFilters, *, dialect: str) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if filters.actor_id is not None:
        clauses.append(AuditEvent.actor_id == filters.actor_id)
    if filters.target_id is not None:
        clauses.append(AuditEvent.target_id == filters.target_id)
    if filters.target_type is not None:
        clauses.append(AuditEvent.target_type == filters.target_type)
    if filters.action is not None:
        # A LIKE with a constant prefix: PostgreSQL turns it into a range on the
        # varchar_pattern_ops index.
        clauses.append(AuditEvent.action.like(_like_prefix(filters.action), escape=LIKE_ESCAPE))
        if dialect == "sqlite":
            # SQLite's LIKE ignores ASCII case; PostgreSQL's does not. Same answer on both.
            clauses.append(func.substr(AuditEvent.action, 1, len(filters.action)) == filters.action)
    if filters.outcome is not None:
        clauses.append(AuditEvent.outcome == filters.outcome.value)
    if filters.since is not None:
        clauses.append(AuditEvent.occurred_at >= filters.since)
    if filters.until is not None:
        clauses.append(AuditEvent.occurred_at < filters.until)
    if filters.request_id is not None:
        clauses.append(AuditEvent.request_id == filters.request_id)
    return clauses


def page_statement(
    filters: AuditFilters, *, after: Position | None, limit: int, dialect: str
) -> Select[AuditEvent]:
    """One page, newest first: `limit` rows past `after`, and one more to tell whether
    another page follows."""
    stmt = select(AuditEvent).where(*filter_clauses(filters, dialect=dialect))
    if ordered_by_time(filters):
        if after is not None:
            key = tuple_(AuditEvent.occurred_at, AuditEvent.id)
            stmt = stmt.where(key < (after.occurred_at, after.id))
        stmt = stmt.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    else:
        if after is not None:
            stmt = stmt.where(AuditEvent.id < after.id)
        stmt = stmt.order_by(AuditEvent.id.desc())
    return stmt.limit(limit + 1)


def export_statement(
    filters: AuditFilters, *, after: Position | None, through: int, size: int, dialect: str
) -> Select[AuditEvent]:
    """The next export batch, oldest first: rows past `after`, none above id `through`."""
    stmt = select(AuditEvent).where(
        *filter_clauses(filters, dialect=dialect), AuditEvent.id <= through
    )
    if ordered_by_time(filters):
        if after is not None:
            key = tuple_(AuditEvent.occurred_at, AuditEvent.id)
            stmt = stmt.where(key > (after.occurred_at, after.id))
        stmt = stmt.order_by(AuditEvent.occurred_at.asc(), AuditEvent.id.asc())
    else:
        if after is not None:
            stmt = stmt.where(AuditEvent.id > after.id)
        stmt = stmt.order_by(AuditEvent.id.asc())
    return stmt.limit(size)


def _link(row: Row[int | None, str | None] | None) -> tuple[int, str] | None:
    """(seq, hash) of a sealed row, read with `seq IS NOT NULL`."""
    if row is None or row[0] is None or row[1] is None:
        return None
    return row[0], row[1]


_INSERT = insert(cast(Table, AuditEvent.__table__))


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    async def _plan_for_these_values(self) -> None:
        # asyncpg prepares statements, and after five runs PostgreSQL may switch to one
        # generic plan for every value: blind to the prefix and the time range, it
        # walks an index far past the page (measured at 1M rows: 40-70 ms a page for
        # an actor over a year, instead of 3 ms). Planning per value costs ~0.2 ms.
        if self.dialect == "postgresql":
            await self.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))

    async def page(
        self, filters: AuditFilters, *, after: Position | None, limit: int
    ) -> Sequence[AuditEvent]:
        """Up to `limit + 1` rows, newest first."""
        await self._plan_for_these_values()
        stmt = page_statement(filters, after=after, limit=limit, dialect=self.dialect)
        return (await self.session.scalars(stmt)).all()

    async def last_id(self) -> int | None:
        last: int | None = await self.session.scalar(select(func.max(AuditEvent.id)))
        return last

    async def batch(
        self, filters: AuditFilters, *, after: Position | None, through: int, size: int
    ) -> Sequence[AuditEvent]:
        await self._plan_for_these_values()
        stmt = export_statement(
            filters, after=after, through=through, size=size, dialect=self.dialect
        )
        return (await self.session.scalars(stmt)).all()

    # The chain: appending, sealing, verifying, retention and erasure.

    async def insert_unsealed(self, rows: list[dict[str, Any]]) -> None:
        """INSERT the rows (seq, prev_hash and hash NULL), without RETURNING.

        A Core insert on the table with the rows as parameters: the statement is
        compiled once per process and cached, where an ORM insert with the rows as
        values was built and compiled again for every request that audits.
        """
        # A row without personal data leaves `pii` out: SQL NULL, as erasure leaves it
        # (a None parameter would be stored as JSON null).
        with_pii = [row for row in rows if row["pii"] is not None]
        without = [
            {name: value for name, value in row.items() if name != "pii"}
            for row in rows
            if row["pii"] is None
        ]
        for group in (with_pii, without):
            if group:
                await self.session.execute(_INSERT, group[0] if len(group) == 1 else group)

    async def lock_chain(self) -> None:
        """Hold the chain until this transaction ends: the sealer's last link stays the
        last. SQLite needs no lock: it has one writer at a time anyway.
        """
        if self.dialect == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK}
            )

    async def last_link(self) -> tuple[int, str] | None:
        """(seq, hash) of the chain's last sealed row; None while none is sealed."""
        last = (
            await self.session.execute(
                select(AuditEvent.seq, AuditEvent.hash)
                .where(AuditEvent.seq.is_not(None))
                .order_by(AuditEvent.seq.desc())
                .limit(1)
            )
        ).first()
        return _link(last)

    async def unsealed(self, size: int) -> list[dict[str, Any]]:
        """Up to `size` committed unsealed rows, oldest id first, as the OWN_COLUMNS."""
        batch = await self.session.execute(
            select(*(getattr(AuditEvent, c) for c in OWN_COLUMNS))
            .where(AuditEvent.seq.is_(None))
            .order_by(AuditEvent.id)
            .limit(size)
        )
        return [dict(row._mapping) for row in batch]

    async def seal(self, links: Iterable[dict[str, Any]]) -> None:
        """Set each row's chain: `{"row_id", "link_seq", "link_prev", "link_hash"}`."""
        # The table, not the entity: the ORM would make this a bulk update by primary
        # key, which cannot keep the `seq IS NULL` guard.
        table = cast(Table, AuditEvent.__table__)
        await self.session.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"), table.c.seq.is_(None))
            .values(
                seq=bindparam("link_seq"),
                prev_hash=bindparam("link_prev"),
                hash=bindparam("link_hash"),
            ),
            list(links),
        )

    async def unsealed_backlog(self) -> tuple[int, datetime | None]:
        """How many rows wait for the sealer, and when the oldest was recorded."""
        row = (
            await self.session.execute(
                select(func.count(), func.min(AuditEvent.occurred_at)).where(
                    AuditEvent.seq.is_(None)
                )
            )
        ).one()
        return int(row[0]), row[1]

    async def last_details(self, action: str) -> dict[str, Any] | None:
        """The details of the newest row of `action` (the last retention cut, say),
        sealed or not."""
        details: dict[str, Any] | None = await self.session.scalar(
            select(AuditEvent.details)
            .where(AuditEvent.action == action)
            .order_by(AuditEvent.id.desc())
            .limit(1)
        )
        return details

    async def newest_since(self, action: str, target_id: str, since: datetime) -> datetime | None:
        """When the newest row of `action` on `target_id` was written, if not before
        `since` (an operator's unlock of an account, for the login protection)."""
        newest: datetime | None = await self.session.scalar(
            select(func.max(AuditEvent.occurred_at)).where(
                AuditEvent.action == action,
                AuditEvent.target_id == target_id,
                AuditEvent.occurred_at >= since,
            )
        )
        return newest

    async def rows_after(self, seq: int, size: int) -> list[dict[str, Any]]:
        """Up to `size` rows past `seq`, in chain order, as the CHAIN_COLUMNS."""
        batch = await self.session.execute(
            select(*(getattr(AuditEvent, c) for c in CHAIN_COLUMNS))
            .where(AuditEvent.seq > seq)
            .order_by(AuditEvent.seq)
            .limit(size)
        )
        return [dict(row._mapping) for row in batch]

    async def first_seq_since(self, cutoff: datetime) -> int | None:
        """The lowest seq of the sealed rows recorded at or after `cutoff`."""
        first: int | None = await self.session.scalar(
            select(func.min(AuditEvent.seq)).where(AuditEvent.occurred_at >= cutoff)
        )
        return first

    async def last_before(
        self, cutoff: datetime, *, below_seq: int | None = None
    ) -> tuple[int, str] | None:
        """(seq, hash) of the last sealed row recorded before `cutoff`, and below
        `below_seq`."""
        stmt = select(AuditEvent.seq, AuditEvent.hash).where(
            AuditEvent.occurred_at < cutoff, AuditEvent.seq.is_not(None)
        )
        if below_seq is not None:
            stmt = stmt.where(AuditEvent.seq < below_seq)
        last = (await self.session.execute(stmt.order_by(AuditEvent.seq.desc()).limit(1))).first()
        return _link(last)

    async def delete_through(self, seq: int) -> int:
        """Remove the chain up to `seq` inclusive (after `allow_maintenance`); how many.
        Unsealed rows stay (their seq is NULL)."""
        result = await self.session.execute(delete(AuditEvent).where(AuditEvent.seq <= seq))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def allow_maintenance(self) -> None:
        """Let this transaction delete expired rows or null personal data (PostgreSQL's
        append-only trigger refuses everything else, and this, to anyone else)."""
        if self.dialect == "postgresql":
            await self.session.execute(
                text("SELECT set_config('gatehouse.audit_maintenance', 'on', true)")
            )

    # Checkpoints: the head, kept where maintenance cannot reach.

    async def count_through(self, seq: int) -> int:
        count: int | None = await self.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.seq <= seq)
        )
        return int(count or 0)

    async def add_checkpoint(self, checkpoint: AuditCheckpoint) -> None:
        self.session.add(checkpoint)
        await self.session.flush()

    async def checkpoint_before(self, checkpoint_id: int) -> AuditCheckpoint | None:
        """The checkpoint written before that one (the previous cleanup's)."""
        previous: AuditCheckpoint | None = await self.session.scalar(
            select(AuditCheckpoint)
            .where(AuditCheckpoint.id < checkpoint_id)
            .order_by(AuditCheckpoint.id.desc())
            .limit(1)
        )
        return previous

    async def newest_checkpoint(self) -> AuditCheckpoint | None:
        newest: AuditCheckpoint | None = await self.session.scalar(
            select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
        )
        return newest
