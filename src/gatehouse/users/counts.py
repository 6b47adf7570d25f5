"""How many live users each role has (`user_counts`), kept in the transaction of every
write that makes a user live or stops it being live, so that the admin list reads its
total from a row instead of counting every user on every page.

Kept by an ORM flush listener rather than by each write: a sign-up, an admin's create,
the first admin, a soft delete, a restore, an inactive-user purge and a role change all
reach the database through a flush, and a future path does too without remembering this
module. Erasure leaves a deleted user deleted, so it changes no count. A write that
bypasses the ORM (the seed's bulk insert) calls `adjust` itself; manual SQL is repaired
by `recount` (the hourly cleanup, `gatehouse users recount`).

One row per role: concurrent sign-ups (all `user`) update the same row, so each holds its
lock from its flush to its commit: the outbox insert and the audit row after it, a few
milliseconds. Sign-ups come a few a second per core at most (bcrypt, which runs before
the flush), so they seldom meet there; several rows per role, summed on read, would be
the way out if they ever queued.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import UOWTransaction, attributes
from sqlalchemy.sql.dml import Insert

from gatehouse.users.models import User, UserCount


def _upsert(dialect: str, role: str, live: int, *, replace: bool = False) -> Insert:
    """Add `live` to the role's count (or set it, with `replace`), creating its row."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(UserCount).values(role=role, live=live)
    value = stmt.excluded.live if replace else UserCount.live + stmt.excluded.live
    return stmt.on_conflict_do_update(index_elements=[UserCount.role], set_={"live": value})


def _statements(dialect: str, deltas: Mapping[str, int]) -> list[Insert]:
    # Roles in one order: two transactions that change two roles (a role change each)
    # lock the rows in the same order, so they queue instead of deadlocking.
    return [_upsert(dialect, role, delta) for role, delta in sorted(deltas.items()) if delta]


def _was(user: User, name: str) -> object:
    """The attribute's value before this flush (active history: loaded if need be)."""
    history = attributes.get_history(user, name)
    if history.deleted:
        return history.deleted[0]
    return getattr(user, name)


def _live_role_before(user: User) -> str | None:
    return str(_was(user, "role")) if _was(user, "deleted_at") is None else None


def _live_role(user: User) -> str | None:
    return user.role if user.deleted_at is None else None


def flushed_deltas(
    new: Iterable[object], dirty: Iterable[object], deleted: Iterable[object]
) -> Counter[str]:
    """How one flush changes each role's live count."""
    deltas: Counter[str] = Counter()
    for obj in new:
        if isinstance(obj, User) and (role := _live_role(obj)) is not None:
            deltas[role] += 1
    for obj in dirty:
        if isinstance(obj, User):
            before, after = _live_role_before(obj), _live_role(obj)
            if before != after:
                if before is not None:
                    deltas[before] -= 1
                if after is not None:
                    deltas[after] += 1
    for obj in deleted:
        if isinstance(obj, User) and (role := _live_role_before(obj)) is not None:
            deltas[role] -= 1
    return deltas


@event.listens_for(OrmSession, "after_flush")
def _users_flushed(session: OrmSession, _: UOWTransaction) -> None:
    # The flush's own transaction: the count commits, or rolls back, with the rows.
    users = (session.new, session.dirty, session.deleted)
    if not any(isinstance(obj, User) for objects in users for obj in objects):
        return
    deltas = flushed_deltas(*users)
    if deltas:
        _apply(session.connection(), deltas)


def _apply(connection: Connection, deltas: Mapping[str, int]) -> None:
    for stmt in _statements(connection.dialect.name, deltas):
        connection.execute(stmt)


async def adjust(session: AsyncSession, deltas: Mapping[str, int]) -> None:
    """Apply `deltas` (role -> change) for users written without the ORM."""
    for stmt in _statements(session.get_bind().dialect.name, deltas):
        await session.execute(stmt)


async def live(session: AsyncSession, role: str | None = None) -> int:
    """Live users, of one role or of all."""
    stmt = select(func.coalesce(func.sum(UserCount.live), 0))
    if role is not None:
        stmt = stmt.where(UserCount.role == role)
    # Never below zero, even after a manual DELETE that the counts did not see.
    return max(int(await session.scalar(stmt) or 0), 0)


async def recount(session: AsyncSession) -> dict[str, tuple[int, int]]:
    """Set every role's count to the live users counted now; the roles that had
    drifted, as role -> (what the row said, the count). For a write session.

    On PostgreSQL the table is locked against the counts' writers first (they wait
    for the commit, a count's time): a sign-up committed during the count would
    otherwise be counted and then added again, or missed. On SQLite the write
    transaction already excludes every other writer.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await session.execute(text("LOCK TABLE user_counts IN SHARE ROW EXCLUSIVE MODE"))
    rows = await session.execute(
        select(User.role, func.count()).where(User.deleted_at.is_(None)).group_by(User.role)
    )
    counted: dict[str, int] = {str(role): int(n) for role, n in rows.all()}
    stored = await session.execute(select(UserCount.role, UserCount.live))
    held: dict[str, int] = {str(role): int(n) for role, n in stored.all()}
    drift: dict[str, tuple[int, int]] = {}
    for role in sorted(counted.keys() | held.keys()):
        now, was = counted.get(role, 0), held.get(role)
        if was != now:
            drift[role] = (was or 0, now)
            await session.execute(_upsert(dialect, role, now, replace=True))
    return drift
