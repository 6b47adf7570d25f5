"""Reading the audit trail: filtered keyset pages and the export, for the admin API.

Both reads are audited themselves (`audit.read`, `audit.export`): who looked at the
trail, with which filters, is part of the trail.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.audit import trail
from gatehouse.audit.cursor import decode_cursor, encode_cursor
from gatehouse.audit.models import AuditEvent
from gatehouse.audit.repository import AuditRepository, Position
from gatehouse.audit.schemas import AuditEventRead, AuditFilters, AuditPage, AuditPageParams
from gatehouse.auth.principal import Principal
from gatehouse.db.engine import Database
from gatehouse.errors import ValidationFailed
from gatehouse.uow import UnitOfWork

EXPORT_BATCH = 1000
# Filter values of this shape (ids, dotted actions, timestamps) go into the audit row's
# safe details; anything else (an email typed as target_id...) may be personal data and
# goes into its `pii`, which erasure nulls.
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._:+-]{1,100}$")


@dataclass(frozen=True)
class AuditExport:
    """An export as of its request: every matching row up to id `through` (None: the
    trail was empty), handed over a batch at a time, oldest first."""

    through: int | None
    batches: AsyncIterator[list[AuditEventRead]]


async def _batch(
    session: AsyncSession,
    *,
    filters: AuditFilters,
    after: Position | None,
    through: int,
    size: int,
) -> Sequence[AuditEvent]:
    return await AuditRepository(session).batch(filters, after=after, through=through, size=size)


class AuditQueries:
    def __init__(self, uow: UnitOfWork, *, database: Database, key: bytes, page_max: int) -> None:
        self.uow = uow
        # The export reads its batches in transactions of their own, after the request's
        # unit of work has committed (see `export`).
        self._database = database
        self._key = key
        self._page_max = page_max

    async def page(self, actor: Principal, params: AuditPageParams) -> AuditPage:
        """One keyset page, newest first; audited as `audit.read`."""
        if params.limit > self._page_max:
            raise ValidationFailed({"limit": [f"must be at most {self._page_max}"]})
        filters = params.filters()
        after = None
        if params.cursor is not None:
            after = decode_cursor(self._key, params.cursor, filters)
        # Reading the trail tolerates a few seconds' lag: the read replica may serve it.
        rows = await self.uow.replica_ok(
            lambda session: AuditRepository(session).page(filters, after=after, limit=params.limit)
        )
        more = len(rows) > params.limit
        rows = rows[: params.limit]
        next_cursor = None
        if more:
            next_cursor = encode_cursor(self._key, Position.of(rows[-1]), filters)
        self._audit_read(actor, "audit.read", filters, returned=len(rows))
        return AuditPage(items=[AuditEventRead.of(row) for row in rows], next_cursor=next_cursor)

    async def export(self, actor: Principal, filters: AuditFilters) -> AuditExport:
        """Every row matching `filters` as of now; audited as `audit.export`.

        The range is fixed and the audit row recorded here, in the caller's unit of
        work, which commits before the first batch is read: an export that was started
        is audited, even if the client hangs up.
        """
        through = await self.uow.replica_ok(lambda session: AuditRepository(session).last_id())
        self._audit_read(actor, "audit.export", filters, through_id=through)
        return AuditExport(through, self._batches(filters, through, actor))

    async def _batches(
        self, filters: AuditFilters, through: int | None, actor: Principal
    ) -> AsyncIterator[list[AuditEventRead]]:
        if through is None:
            return
        after: Position | None = None
        while True:
            # A short read transaction per batch: nothing is held open while the client
            # reads slowly, and the `through` bound keeps the export a fixed range. On
            # the read replica when it may serve the actor; the primary, whenever a
            # batch falls back to it, holds every row up to `through` too.
            rows = await self._database.replica_ok(
                partial(_batch, filters=filters, after=after, through=through, size=EXPORT_BATCH),
                actor_id=actor.user_id,
            )
            if rows:
                yield [AuditEventRead.of(row) for row in rows]
            if len(rows) < EXPORT_BATCH:
                return
            after = Position.of(rows[-1])

    def _audit_read(
        self, actor: Principal, action: str, filters: AuditFilters, **extra: Any
    ) -> None:
        safe: dict[str, str] = {}
        personal: dict[str, str] = {}
        for name, value in filters.given().items():
            (safe if _SAFE_VALUE.match(value) else personal)[name] = value
        self.uow.audit.record(
            trail.Entry(
                action=action,
                target_type="audit",
                actor_id=actor.user_id,
                actor_role=actor.role.value,
                details={"filters": safe, **extra},
                pii={"filters": personal} if personal else {},
            ),
        )
