"""Writing the audit trail: `record()` from any service, in the caller's unit of work.

Entries wait in the unit of work and are appended just before it commits, under the
chain lock, so the lock is held for the commit alone. A modification's entry commits or
rolls back with the modification (no audit, no change). An entry recorded with
`always=True` (a failed login, a refused request) is written even when the unit of
work rolls back, in a transaction of its own.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.audit.chain import GENESIS, pii_digest, row_hash
from gatehouse.audit.models import AuditEvent
from gatehouse.db.engine import (
    DATABASE_INFO_KEY,
    WRITE_INFO_KEY,
    Database,
    after_commit,
    after_rollback,
    before_commit,
)
from gatehouse.kit.context import actor_var, client_var, current_request_id
from gatehouse.kit.time import utcnow

AUDIT_KEY_INFO = "gatehouse.audit_key"
# (seq, hash) the chain continues from when this unit of work emptied the table (the
# retention job removed every row): the next row follows the last one removed.
CHAIN_TAIL_INFO = "gatehouse.audit.chain_tail"
_PENDING = "gatehouse.audit.pending"
_ALWAYS = "gatehouse.audit.always"
# pg_advisory_xact_lock key of the chain: one appender at a time, until its commit.
CHAIN_LOCK = 0x6761746568  # "gateh"
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
    # the client's IP and user agent are added from the request.
    pii: dict[str, Any] = field(default_factory=dict)
    actor_id: uuid.UUID | None = None
    actor_role: str | None = None
    # Filled in when recorded, from the request's context.
    request_id: str | None = None


def _with_context(entry: Entry) -> Entry:
    actor = actor_var.get()
    if entry.actor_id is None and actor is not None:
        entry.actor_id, entry.actor_role = actor.user_id, actor.role
    client = client_var.get()
    if client is not None:
        if client.ip is not None:
            entry.pii.setdefault("ip", client.ip)
        if client.user_agent is not None:
            entry.pii.setdefault("user_agent", client.user_agent[:USER_AGENT_MAX])
    entry.request_id = entry.request_id or current_request_id()
    return entry


def record(session: AsyncSession, entry: Entry, *, always: bool = False) -> None:
    """Audit `entry` with this unit of work; with `always`, even if it rolls back."""
    entry = _with_context(entry)
    pending: list[Entry] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        before_commit(session, _append_pending)
    pending.append(entry)
    if always:
        kept: list[Entry] | None = session.info.get(_ALWAYS)
        if kept is None:
            kept = session.info[_ALWAYS] = []
            database: Database = session.info[DATABASE_INFO_KEY]
            key: bytes = session.info[AUDIT_KEY_INFO]

            async def write_kept() -> None:
                async with database.session() as own:
                    await append(own, key, kept)

            after_rollback(session, write_kept)
        kept.append(entry)


async def _append_pending(session: AsyncSession) -> None:
    entries: list[Entry] = session.info.pop(_PENDING, [])
    session.info.pop(_ALWAYS, None)
    if not entries:
        return
    key: bytes = session.info[AUDIT_KEY_INFO]
    database: Database = session.info[DATABASE_INFO_KEY]
    if database.is_sqlite and not session.info.get(WRITE_INFO_KEY, True):
        # A SQLite read transaction cannot become a writer safely (its snapshot may be
        # stale): the audit of a read gets a transaction of its own, once the read has
        # given its connection back (holding one while waiting for another starves the
        # pool under concurrent reads).
        async def write_after() -> None:
            async with database.session() as own:
                await append(own, key, entries)

        after_commit(session, write_after)
        return
    await append(session, key, entries)


async def append(session: AsyncSession, key: bytes, entries: list[Entry]) -> None:
    """Chain `entries` after the last row; the caller's transaction commits them."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})
    last = (
        await session.execute(
            select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
        )
    ).first()
    if last is not None:
        seq, prev_hash = last[0], last[1]
    else:
        seq, prev_hash = session.info.get(CHAIN_TAIL_INFO, (0, GENESIS))
    now = utcnow()
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
        session.add(AuditEvent(**fields, pii=pii, prev_hash=prev_hash, hash=digest))
        prev_hash = digest
    await session.flush()
