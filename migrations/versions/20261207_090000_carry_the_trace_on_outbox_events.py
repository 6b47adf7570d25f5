"""carry the trace on outbox events: the W3C traceparent of the request that wrote one

Revision ID: 20261207_0006
Revises: 20261207_0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0006"
down_revision: str | None = "20261207_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: rows written with tracing off (and every older row) have none.
    with op.batch_alter_table("outbox_events") as batch_op:
        batch_op.add_column(sa.Column("traceparent", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_events") as batch_op:
        batch_op.drop_column("traceparent")
