"""Every SQL statement about users."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, UnaryExpression, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.users import counts
from gatehouse.users.models import Role, User
from gatehouse.users.schemas import ListParams, Order, SortField


def list_filters(params: ListParams) -> list[ColumnElement[bool]]:
    """The rows a list call selects: live ones unless `include_deleted`, by role, and
    by a case-insensitive search in email and name."""
    filters: list[ColumnElement[bool]] = []
    if not params.include_deleted:
        filters.append(User.deleted_at.is_(None))
    if params.role is not None:
        filters.append(User.role == params.role.value)
    if params.search:
        pattern = f"%{_like_escape(params.search.lower())}%"
        filters.append(
            or_(
                User.email.like(pattern, escape="\\"),
                func.lower(User.name).like(pattern, escape="\\"),
            )
        )
    return filters


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _order(sort_by: SortField, *, ascending: bool) -> tuple[UnaryExpression[Any], ...]:
    column = getattr(User, sort_by.value)
    if ascending:
        return column.asc(), User.id.asc()
    return column.desc(), User.id.desc()


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID, *, include_deleted: bool = False) -> User | None:
        stmt = select(User).where(User.id == user_id)
        if not include_deleted:
            stmt = stmt.where(User.deleted_at.is_(None))
        result: User | None = await self.session.scalar(stmt)
        return result

    async def get_by_email(self, email: str) -> User | None:
        result: User | None = await self.session.scalar(
            select(User).where(User.email == email, User.deleted_at.is_(None))
        )
        return result

    async def page(self, params: ListParams) -> tuple[Sequence[User], int]:
        """One page of the list and the total it is a page of.

        The page is a deferred join: its ids come first, in order, from the index that
        matches the sort (the live users' indexes hold the sort column, id and role, so
        a deep page skips index entries, not rows), then only those rows are read. The
        total comes first: a page past the end reads nothing more, and one in the second
        half is skipped to from the end. Total and page are two statements, as before:
        a user created or deleted between them may shift that page by one row.
        """
        filters = list_filters(params)
        total = await self._total(params, filters)
        offset = (params.page - 1) * params.page_size
        if offset >= total:
            return [], total
        limit = params.page_size
        ascending = params.order is Order.asc
        scan_ascending = ascending
        if offset > total // 2:
            # Nearer the end: skip from there, in the opposite order (id makes the order
            # total, so its reverse is exact), and the deepest page skips half the users.
            limit = min(limit, total - offset)
            offset = total - offset - limit
            scan_ascending = not ascending
        ids = (
            select(User.id)
            .where(*filters)
            .order_by(*_order(params.sort_by, ascending=scan_ascending))
            .limit(limit)
            .offset(offset)
            .subquery("page")
        )
        rows = await self.session.scalars(
            select(User)
            .join(ids, User.id == ids.c.id)
            .order_by(*_order(params.sort_by, ascending=ascending))
        )
        return rows.all(), total

    async def _total(self, params: ListParams, filters: list[ColumnElement[bool]]) -> int:
        """The live users (of a role) from their counts; any other filter is counted,
        exactly, from the rows: a search reads every user (no index serves a substring)."""
        if not params.search and not params.include_deleted:
            return await counts.live(
                self.session, params.role.value if params.role is not None else None
            )
        total = await self.session.scalar(select(func.count()).select_from(User).where(*filters))
        return int(total or 0)

    def add(self, user: User) -> None:
        self.session.add(user)

    async def lock_active_admins(self) -> list[uuid.UUID]:
        """The live admins, locked so two demotions cannot both leave zero behind."""
        rows = await self.session.scalars(
            select(User.id)
            .where(User.role == Role.admin.value, User.deleted_at.is_(None))
            .with_for_update()
        )
        return list(rows.all())

    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        """Store a re-hash at a new cost: the same password, so not an edit either."""
        await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(password_hash=password_hash, updated_at=User.updated_at)
            .execution_options(synchronize_session=False)
        )

    async def has_users(self) -> bool:
        return await self.session.scalar(select(User.id).limit(1)) is not None

    async def has_live_admin(self) -> bool:
        found = await self.session.scalar(
            select(User.id).where(User.role == Role.admin.value, User.deleted_at.is_(None)).limit(1)
        )
        return found is not None

    async def count_live(self) -> int:
        total = await self.session.scalar(
            select(func.count()).select_from(User).where(User.deleted_at.is_(None))
        )
        return int(total or 0)

    async def touch_login(self, user_id: uuid.UUID, when: datetime) -> None:
        # A Core UPDATE: a login is not an edit, so it must not move the ETag version.
        await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(last_login_at=when, updated_at=User.updated_at)
            .execution_options(synchronize_session=False)
        )
