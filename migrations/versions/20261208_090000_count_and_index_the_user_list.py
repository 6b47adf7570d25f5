"""count and index the admin user list: live users per role in `user_counts` (filled
here), and one index of the live users per sort

Revision ID: 20261208_0009
Revises: 20261208_0008
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261208_0009"
down_revision: str | None = "20261208_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "deleted_at IS NULL"
# (name, columns): every one partial, on the live users.
INDEXES: list[tuple[str, list[str]]] = [
    ("idx_users_live_created", ["created_at", "id", "role"]),
    ("idx_users_live_updated", ["updated_at", "id", "role"]),
    ("idx_users_live_email", ["email", "id", "role"]),
    ("idx_users_live_name", ["name", "id", "role"]),
]
# Replaces idx_users_live_role (role): ties in the role sort are broken by id.
ROLE_INDEX = "idx_users_live_role"
ROLE_INDEX_NEW = "idx_users_live_role_id"


def upgrade() -> None:
    op.create_table(
        "user_counts",
        sa.Column("role", sa.String(length=50), nullable=False),
        sa.Column("live", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("role", name=op.f("pk_user_counts")),
    )
    # Filled in this transaction; a write by an instance still running the previous
    # version is not counted: the hourly cleanup's recount (or `gatehouse users
    # recount` right after the deploy) repairs that.
    op.execute(
        "INSERT INTO user_counts (role, live) SELECT role, count(*) FROM users"
        " WHERE deleted_at IS NULL GROUP BY role"
    )
    if op.get_bind().dialect.name == "postgresql":
        # Every sign-up and edit writes users: CONCURRENTLY lets them through while each
        # index reads the table; it cannot run in a transaction.
        with op.get_context().autocommit_block():
            for name, columns in INDEXES:
                op.create_index(
                    name,
                    "users",
                    columns,
                    postgresql_where=sa.text(LIVE),
                    postgresql_concurrently=True,
                )
            # Built under a name of its own, then swapped: the overview counts by role
            # from one of the two throughout.
            op.create_index(
                ROLE_INDEX_NEW,
                "users",
                ["role", "id"],
                postgresql_where=sa.text(LIVE),
                postgresql_concurrently=True,
            )
            op.drop_index(ROLE_INDEX, "users", postgresql_concurrently=True)
            op.execute(f"ALTER INDEX {ROLE_INDEX_NEW} RENAME TO {ROLE_INDEX}")
        return
    with op.batch_alter_table("users", schema=None) as batch_op:
        for name, columns in INDEXES:
            batch_op.create_index(name, columns, unique=False, sqlite_where=sa.text(LIVE))
        batch_op.drop_index(ROLE_INDEX)
        batch_op.create_index(ROLE_INDEX, ["role", "id"], unique=False, sqlite_where=sa.text(LIVE))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(ROLE_INDEX)
        batch_op.create_index(
            ROLE_INDEX,
            ["role"],
            unique=False,
            postgresql_where=sa.text(LIVE),
            sqlite_where=sa.text(LIVE),
        )
        for name, _ in reversed(INDEXES):
            batch_op.drop_index(name)
    op.drop_table("user_counts")
