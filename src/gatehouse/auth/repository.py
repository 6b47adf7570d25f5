"""Every SQL statement about sessions and refresh tokens, and the per-request principal lookup."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import (
    Table,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.elements import ColumnElement

from gatehouse.auth.models import RefreshToken, Session
from gatehouse.cache.store import invalidate_user
from gatehouse.kit.types import UTCDateTime
from gatehouse.users.models import User

# The rotation's statements, built once on the tables: each refresh then skips building
# them, computing their cache keys and the ORM's bulk-update machinery (a third of the
# request's CPU went there). Parameters by name: see `spend_refresh_token`, `extend`.
_tokens: Table = RefreshToken.__table__  # type: ignore[assignment]
_sessions: Table = Session.__table__  # type: ignore[assignment]
_users: Table = User.__table__  # type: ignore[assignment]
_NOW = bindparam("now", type_=UTCDateTime())
_SPEND = (
    update(_tokens)
    .where(_tokens.c.token_hash == bindparam("presented"), _tokens.c.used_at.is_(None))
    .values(used_at=_NOW)
    .returning(_tokens.c.session_id)
)
_OWNER = _users.c.id == _sessions.c.user_id


def _extend(session_id: ColumnElement[uuid.UUID]) -> Update:
    """Move the session `session_id` on, returning its live owner (see `extend`)."""
    idle_until = bindparam("idle_until", type_=UTCDateTime())
    return (
        update(_sessions)
        .where(
            _sessions.c.id == session_id,
            _sessions.c.revoked_at.is_(None),
            _sessions.c.expires_at > _NOW,
            _sessions.c.absolute_expires_at > _NOW,
            exists().where(_OWNER, _users.c.deleted_at.is_(None)),
        )
        .values(
            expires_at=case(
                (_sessions.c.absolute_expires_at < idle_until, _sessions.c.absolute_expires_at),
                else_=idle_until,
            ),
            last_used_at=_NOW,
            # Spelled out: SQLAlchemy leaves Python-side defaults unset inside a WITH.
            updated_at=_NOW,
            # The client's address when known, else the one the session had.
            ip=func.coalesce(bindparam("client_ip", type_=_sessions.c.ip.type), _sessions.c.ip),
        )
        .returning(
            _sessions.c.user_id,
            select(_users.c.role).where(_OWNER).scalar_subquery().label("role"),
            select(_users.c.auth_version).where(_OWNER).scalar_subquery().label("auth_version"),
            _sessions.c.amr,
        )
    )


_EXTEND = _extend(bindparam("sid"))
# Its values are the parameters, named after their columns.
_ADD_TOKEN = insert(_tokens)

# PostgreSQL does the three in one statement (one round trip instead of three: the
# statements' driver and SQLAlchemy overhead was most of a refresh's database time).
# Each step feeds on the rows the previous one returned, so a step that matches nothing
# stops the rest; the outer join still reports whether the token was spent.
_spent = _SPEND.cte("spent")
_moved = _extend(_spent.c.session_id).returning(_sessions.c.id).cte("moved")
_ROTATE = (
    select(
        _spent.c.session_id,
        _moved.c.user_id,
        _moved.c.role,
        _moved.c.auth_version,
        _moved.c.amr,
    )
    .select_from(_spent.outerjoin(_moved, true()))
    .add_cte(
        insert(_tokens)
        .from_select(
            ["token_hash", "session_id", "created_at"],
            select(bindparam("new_hash", type_=_tokens.c.token_hash.type), _moved.c.id, _NOW),
        )
        .cte("added")
    )
)


class Owner(NamedTuple):
    """A moved-on session's live owner, and how the session's login was made."""

    user_id: uuid.UUID
    role: str
    auth_version: int
    # The session's `amr` as stored: space-separated; None for a session from before it.
    amr: str | None


class Rotation(NamedTuple):
    """How far a refresh token's rotation went: the spent token's session (None: the
    token was unknown or used before) and the session's live owner (None: the session
    could not be moved on; nothing was added)."""

    spent: uuid.UUID | None
    owner: Owner | None


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def principal_row(
        self, user_id: uuid.UUID, session_id: uuid.UUID
    ) -> tuple[str, int] | None:
        """(role, auth_version) of a live user in a live session, else None."""
        # The hot path of every authenticated request: one Core statement, no ORM.
        result = await self.session.execute(
            select(User.role, User.auth_version)
            .join(Session, Session.user_id == User.id)
            .where(
                User.id == user_id,
                User.deleted_at.is_(None),
                Session.id == session_id,
                Session.revoked_at.is_(None),
            )
        )
        row = result.first()
        return (row.role, row.auth_version) if row is not None else None

    async def add(self, login: Session) -> Session:
        self.session.add(login)
        await self.session.flush()
        return login

    async def get(self, session_id: uuid.UUID) -> Session | None:
        result: Session | None = await self.session.get(Session, session_id)
        return result

    async def list_active(self, user_id: uuid.UUID, now: datetime) -> Sequence[Session]:
        rows = await self.session.scalars(
            select(Session)
            .where(
                Session.user_id == user_id,
                Session.revoked_at.is_(None),
                Session.expires_at > now,
            )
            .order_by(Session.last_used_at.desc())
        )
        return rows.all()

    async def revoke(self, session_id: uuid.UUID, now: datetime, reason: str) -> bool:
        result = await self.session.execute(
            update(Session)
            .where(Session.id == session_id, Session.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .returning(Session.user_id)
            .execution_options(synchronize_session=False)
        )
        owners = result.scalars().all()
        for user_id in owners:
            invalidate_user(self.session, user_id)  # after commit, for every process
        return bool(owners)

    async def revoke_all(
        self, user_id: uuid.UUID, now: datetime, reason: str, *, keep: uuid.UUID | None = None
    ) -> int:
        stmt = (
            update(Session)
            .where(Session.user_id == user_id, Session.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .execution_options(synchronize_session=False)
        )
        if keep is not None:
            stmt = stmt.where(Session.id != keep)
        result = await self.session.execute(stmt)
        invalidate_user(self.session, user_id)  # after commit, for every process
        return int(getattr(result, "rowcount", 0))

    async def add_refresh_token(self, token_hash: str, session_id: uuid.UUID) -> None:
        await self.session.execute(_ADD_TOKEN, {"token_hash": token_hash, "session_id": session_id})

    async def spend_refresh_token(self, token_hash: str, now: datetime) -> uuid.UUID | None:
        """Mark an unused token used; its session's id, or None when the token is unknown
        or was used already (by this request's predecessor or a concurrent one).

        The conditional UPDATE is the race guard: under READ COMMITTED the second of two
        concurrent updates waits for the first, re-checks `used_at IS NULL` and matches
        nothing (SQLite: writers hold the write lock in turn).
        """
        result = await self.session.execute(_SPEND, {"presented": token_hash, "now": now})
        session_id: uuid.UUID | None = result.scalar_one_or_none()
        return session_id

    async def extend(
        self, session_id: uuid.UUID, now: datetime, idle_until: datetime, ip: str | None
    ) -> Owner | None:
        """Note a live session's use and push its idle limit to `idle_until`, never past
        its absolute limit; its live owner (and the session's amr), or None when
        the session ended or expired or its user is gone (then nothing is changed).

        One statement: the owner is read in it, not loaded (the caller needs three
        columns, and SQLite's RETURNING cannot name the table of an UPDATE ... FROM).
        """
        result = await self.session.execute(
            _EXTEND,
            {"sid": session_id, "now": now, "idle_until": idle_until, "client_ip": ip or None},
        )
        row = result.first()
        return Owner(row[0], row[1], row[2], row[3]) if row is not None else None

    async def rotate(
        self,
        presented: str,
        new_hash: str,
        now: datetime,
        idle_until: datetime,
        ip: str | None,
    ) -> Rotation:
        """Spend the presented token, move its session on (`extend`) and add `new_hash`
        to it; what was spent and who owns it say how far it went (nothing is added
        unless both are there)."""
        if self.session.get_bind().dialect.name == "postgresql":
            result = await self.session.execute(
                _ROTATE,
                {
                    "presented": presented,
                    "new_hash": new_hash,
                    "now": now,
                    "idle_until": idle_until,
                    "client_ip": ip or None,
                },
            )
            row = result.first()
            if row is None:
                return Rotation(None, None)
            owner = Owner(row[1], row[2], row[3], row[4]) if row[1] is not None else None
            return Rotation(row[0], owner)
        # SQLite cannot modify rows in a WITH clause: the same steps one by one.
        spent = await self.spend_refresh_token(presented, now)
        if spent is None:
            return Rotation(None, None)
        owner = await self.extend(spent, now, idle_until, ip)
        if owner is not None:
            await self.add_refresh_token(new_hash, spent)
        return Rotation(spent, owner)

    async def second_factor(self, session_id: uuid.UUID, amr: str | None, now: datetime) -> bool:
        """A second factor was checked in this live session now: its step-up moment is
        `now`, and its amr becomes `amr` unless None. False when the session has ended."""
        values: dict[str, object] = {"mfa_verified_at": now}
        if amr is not None:
            values["amr"] = amr
        result = await self.session.execute(
            update(Session)
            .where(Session.id == session_id, Session.revoked_at.is_(None))
            .values(values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def step_up_state(self, session_id: uuid.UUID) -> datetime | None:
        """When this session last checked a second factor (None: never)."""
        found: datetime | None = await self.session.scalar(
            select(Session.mfa_verified_at).where(Session.id == session_id)
        )
        return found

    async def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        result: RefreshToken | None = await self.session.get(RefreshToken, token_hash)
        return result

    async def delete_ended_before(self, cutoff: datetime) -> int:
        """Forget sessions (and their refresh tokens) that ended before `cutoff`."""
        result = await self.session.execute(
            delete(Session).where(
                or_(
                    Session.revoked_at < cutoff,
                    Session.expires_at < cutoff,
                    Session.absolute_expires_at < cutoff,
                )
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
