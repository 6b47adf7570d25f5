"""index the overview's counts: sign-ups and logins per hour from the audit trail

Revision ID: 20261207_0005
Revises: 20261206_0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261207_0005"
down_revision: str | None = "20261206_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "idx_audit_events_action_time"
COLUMNS = ["action", "occurred_at", "outcome"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Every login and request appends to audit_events: a plain CREATE INDEX would
        # hold those writes for as long as it reads the whole table (about 1.5 s a
        # million rows). CONCURRENTLY lets them through; it cannot run in a transaction.
        with op.get_context().autocommit_block():
            op.create_index(INDEX, "audit_events", COLUMNS, postgresql_concurrently=True)
        return
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(INDEX, COLUMNS, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
