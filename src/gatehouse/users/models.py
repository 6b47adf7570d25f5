from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Index, Integer, String, Uuid, func, text
from sqlalchemy.orm import Mapped, mapped_column

from gatehouse.db.base import Base
from gatehouse.kit.time import utcnow
from gatehouse.kit.types import UTCDateTime


class Role(StrEnum):
    admin = "admin"
    user = "user"
    readonly = "readonly"


# Indexes of the live (not soft-deleted) users only: what every list reads by default.
_LIVE: dict[str, Any] = {
    "postgresql_where": text("deleted_at IS NULL"),
    "sqlite_where": text("deleted_at IS NULL"),
}


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # Stored normalised (NFKC, trimmed, lower case): one spelling per address.
    email: Mapped[str] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    # active_history: the live-user counts (gatehouse.users.counts) need the value a
    # flush replaces even when the row was loaded without it.
    role: Mapped[str] = mapped_column(
        String(50), default=Role.user.value, server_default=Role.user.value, active_history=True
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, server_default=func.now()
    )
    deleted_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, default=None, active_history=True
    )
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Row version: the ETag, and SQLAlchemy checks it on every UPDATE.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Bumped when every outstanding access token must stop working at once
    # (role change, password change, deletion, "log out everywhere").
    auth_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'user', 'readonly')", name="role_valid"),
        Index("idx_users_email", "email"),
        Index("idx_users_role", "role"),
        # Live accounts by role (the admin overview) without reading the rows; also the
        # list sorted by role, ties by id.
        Index("idx_users_live_role", "role", "id", **_LIVE),
        # The admin list's pages, one index per sort: the ids of a page, in order, from
        # the index alone (id breaks ties; role serves the role filter without the row).
        Index("idx_users_live_created", "created_at", "id", "role", **_LIVE),
        Index("idx_users_live_updated", "updated_at", "id", "role", **_LIVE),
        Index("idx_users_live_email", "email", "id", "role", **_LIVE),
        Index("idx_users_live_name", "name", "id", "role", **_LIVE),
        Index("idx_users_created_at", "created_at"),
        Index(
            "uq_users_email_live",
            "email",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
    )


class UserCount(Base):
    """How many live users each role has, kept by every write that makes a user live or
    not (gatehouse.users.counts), so a list's total is read, not counted."""

    __tablename__ = "user_counts"

    role: Mapped[str] = mapped_column(String(50), primary_key=True)
    live: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
