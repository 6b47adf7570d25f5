"""Writing the audit trail: `uow.audit.record()` from any service, in its unit of work.

Entries wait in the unit of work and are appended just before it commits, under the
chain lock, so the lock is held for the commit alone. A modification's entry commits or
rolls back with the modification (no audit, no change). An entry recorded with
`always=True` (a failed login, a refused request) is written even when the unit of
work rolls back, in a transaction of its own.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.audit.chain import GENESIS, pii_digest, row_hash, term_digest
from gatehouse.audit.models import AuditEvent
from gatehouse.audit.repository import AuditRepository
from gatehouse.db.engine import Database, after_commit, after_rollback, before_commit
from gatehouse.kit.context import Actor
from gatehouse.kit.time import utcnow

USER_AGENT_MAX = 512


@dataclass
class Entry:
    action: str
    outcome: str = "success"
    reason: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # Personal data about the event (an identifier typed, a changed email or name);
    # the client's IP and user agent are added from the actor.
    pii: dict[str, Any] = field(default_factory=dict)
    actor_id: uuid.UUID | None = None
    actor_role: str | None = None
    # Filled in when recorded, from the actor.
    request_id: str | None = None


def with_actor(entry: Entry, actor: Actor) -> Entry:
    if entry.actor_id is None and entry.actor_role is None:
        entry.actor_id, entry.actor_role = actor.user_id, actor.role
    if actor.ip is not None:
        entry.pii.setdefault("ip", actor.ip)
    if actor.user_agent is not None:
        entry.pii.setdefault("user_agent", actor.user_agent[:USER_AGENT_MAX])
    entry.request_id = entry.request_id or actor.request_id
    return entry


class AuditTrail:
    """One unit of work's audit entries, chained into the trail when it commits."""

    def __init__(
        self,
        session: AsyncSession,
        database: Database,
        key: bytes,
        actor: Callable[[], Actor],
        *,
        write: bool,
    ) -> None:
        self._session = session
        self._database = database
        self._key = key
        self._actor = actor
        self._write = write
        self._pending: list[Entry] = []
        self._always: list[Entry] = []
        # (seq, hash) the chain continues from when this unit of work emptied the table
        # (the retention job removed every row): the next row follows the last removed.
        self.chain_tail: tuple[int, str] | None = None

    def term(self, text: str) -> dict[str, Any]:
        """A search term (free text a reader typed) as the trail may keep it: a keyed
        digest, since it is often a person's address or name (docs/audit.md)."""
        return term_digest(self._key, text)

    def record(self, entry: Entry, *, always: bool = False) -> None:
        """Audit `entry` with this unit of work; with `always`, even if it rolls back."""
        entry = with_actor(entry, self._actor())
        if not self._pending:
            before_commit(self._session, self._append_pending)
        self._pending.append(entry)
        if always:
            if not self._always:
                after_rollback(self._session, self._write_kept)
            self._always.append(entry)

    async def _write_kept(self) -> None:
        kept, self._always, self._pending = self._always, [], []
        async with self._database.session() as own:
            await append(own, self._key, kept)

    async def _append_pending(self, session: AsyncSession) -> None:
        entries, self._pending, self._always = self._pending, [], []
        if not entries:
            return
        if self._database.is_sqlite and not self._write:
            # A SQLite read transaction cannot become a writer safely (its snapshot may be
            # stale): the audit of a read gets a transaction of its own, once the read has
            # given its connection back (holding one while waiting for another starves the
            # pool under concurrent reads).
            async def write_after() -> None:
                async with self._database.session() as own:
                    await append(own, self._key, entries)

            after_commit(session, write_after)
            return
        await append(session, self._key, entries, self.chain_tail)


async def append(
    session: AsyncSession,
    key: bytes,
    entries: list[Entry],
    chain_tail: tuple[int, str] | None = None,
) -> None:
    """Chain `entries` after the last row; the caller's transaction commits them."""
    repository = AuditRepository(session)
    await repository.lock_chain()
    seq, prev_hash = await repository.last_link() or chain_tail or (0, GENESIS)
    now = utcnow()
    rows: list[AuditEvent] = []
    for entry in entries:
        seq += 1
        pii = {**entry.pii, "salt": secrets.token_hex(8)} if entry.pii else None
        fields: dict[str, Any] = {
            "seq": seq,
            "occurred_at": now,
            "action": entry.action,
            "outcome": entry.outcome,
            "reason": entry.reason,
            "actor_id": entry.actor_id,
            "actor_role": entry.actor_role,
            "target_type": entry.target_type,
            "target_id": entry.target_id,
            "request_id": entry.request_id,
            "details": entry.details,
            "pii_digest": pii_digest(key, pii),
        }
        digest = row_hash(key, prev_hash, fields)
        rows.append(AuditEvent(**fields, pii=pii, prev_hash=prev_hash, hash=digest))
        prev_hash = digest
    await repository.add(rows)
