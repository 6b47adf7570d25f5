"""Writing the audit trail: `uow.audit.record()` from any service, in its unit of work.

Entries wait in the unit of work and are inserted just before it commits, in one
INSERT, unsealed: with their own fields and personal-data digest, without a place in
the chain. No lock and no read of the chain's last link: audited requests of every
process run side by side. The sealer (gatehouse.audit.sealer) chains them seconds later.
A modification's entry commits or rolls back with the modification (no audit, no
change). An entry recorded with `always=True` (a failed login, a refused request) is
written even when the unit of work rolls back, in a transaction of its own.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.audit.chain import pii_digest, term_digest
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
    """One unit of work's audit entries, inserted into the trail when it commits."""

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
        await append(session, self._key, entries)


async def append(session: AsyncSession, key: bytes, entries: list[Entry]) -> None:
    """Insert `entries` unsealed; the caller's transaction commits them."""
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for entry in entries:
        pii = {**entry.pii, "salt": secrets.token_hex(8)} if entry.pii else None
        rows.append(
            {
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
                "pii": pii,
                "pii_digest": pii_digest(key, pii),
            }
        )
    await AuditRepository(session).insert_unsealed(rows)
