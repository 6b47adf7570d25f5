"""roll up the overview's counts: sign-ups and logins per closed UTC hour, and up to
which hour the rollup is complete

Revision ID: 20261207_0007
Revises: 20261207_0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0007"
down_revision: str | None = "20261207_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Both start empty: until the first roll the overview counts everything from the
    # trail, as before; the worker's sweep fills the 31 days back on its first run.
    op.create_table(
        "audit_activity_hours",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "action", "outcome", name=op.f("pk_audit_activity_hours")),
    )
    op.create_table(
        "audit_activity_rollup",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rolled_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_activity_rollup")),
    )


def downgrade() -> None:
    op.drop_table("audit_activity_rollup")
    op.drop_table("audit_activity_hours")
