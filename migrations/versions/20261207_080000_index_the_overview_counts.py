"""index the overview's counts: sign-ups and logins per hour, live users by role, sessions
that may be active

Revision ID: 20261207_0005
Revises: 20261206_0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0005"
down_revision: str | None = "20261206_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, table, columns, partial-index predicate)
INDEXES: list[tuple[str, str, list[str], str | None]] = [
    ("idx_audit_events_action_time", "audit_events", ["action", "occurred_at", "outcome"], None),
    ("idx_users_live_role", "users", ["role"], "deleted_at IS NULL"),
    ("idx_sessions_unrevoked", "sessions", ["absolute_expires_at"], "revoked_at IS NULL"),
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Logins and every audited request write these tables: a plain CREATE INDEX
        # would hold those writes while it reads the whole table (audit_events: about
        # 3 s a million rows). CONCURRENTLY lets them through; it cannot run in a
        # transaction.
        with op.get_context().autocommit_block():
            for name, table, columns, where in INDEXES:
                partial: dict[str, Any] = {"postgresql_where": sa.text(where)} if where else {}
                op.create_index(name, table, columns, postgresql_concurrently=True, **partial)
        return
    for name, table, columns, where in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            partial = {"sqlite_where": sa.text(where)} if where else {}
            batch_op.create_index(name, columns, unique=False, **partial)


def downgrade() -> None:
    for name, table, _, _ in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
