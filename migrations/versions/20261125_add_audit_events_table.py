"""add audit events table

Revision ID: 20261125_0003
Revises: 20261125_0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261125_0003"
down_revision: str | None = "20261125_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)

# Append-only on PostgreSQL: UPDATE, DELETE and TRUNCATE are refused, except that the
# retention and erasure jobs (which set gatehouse.audit_maintenance for their own
# transaction) may delete expired rows and null the personal data of a row, nothing else.
APPEND_ONLY = """
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'TRUNCATE'
     AND coalesce(current_setting('gatehouse.audit_maintenance', true), '') = 'on' THEN
    IF TG_OP = 'DELETE' THEN
      RETURN OLD;
    END IF;
    IF NEW.pii IS NULL
       AND (NEW.id, NEW.seq, NEW.occurred_at, NEW.action, NEW.outcome, NEW.reason,
            NEW.actor_id, NEW.actor_role, NEW.target_type, NEW.target_id,
            NEW.request_id, NEW.details::text, NEW.pii_digest, NEW.prev_hash, NEW.hash)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.seq, OLD.occurred_at, OLD.action, OLD.outcome, OLD.reason,
            OLD.actor_id, OLD.actor_role, OLD.target_type, OLD.target_id,
            OLD.request_id, OLD.details::text, OLD.pii_digest, OLD.prev_hash, OLD.hash) THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$
"""
TRIGGERS = (
    "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events"
    " FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
    "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events"
    " FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()",
)


def upgrade() -> None:

    op.create_table(
        "audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_role", sa.String(length=50), nullable=True),
        sa.Column("target_type", sa.String(length=50), nullable=True),
        sa.Column("target_id", sa.String(length=100), nullable=True),
        sa.Column("request_id", sa.String(length=200), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("pii", sa.JSON(), nullable=True),
        sa.Column("pii_digest", sa.String(length=64), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("seq", name=op.f("uq_audit_events_seq")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "idx_audit_events_action",
            ["action", "id"],
            unique=False,
            postgresql_ops={"action": "varchar_pattern_ops"},
        )
        batch_op.create_index("idx_audit_events_actor", ["actor_id", "id"], unique=False)
        batch_op.create_index("idx_audit_events_occurred_at", ["occurred_at", "id"], unique=False)
        batch_op.create_index("idx_audit_events_outcome", ["outcome", "id"], unique=False)
        batch_op.create_index("idx_audit_events_request", ["request_id", "id"], unique=False)
        batch_op.create_index("idx_audit_events_target", ["target_id", "id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY)
        for statement in TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("idx_audit_events_target")
        batch_op.drop_index("idx_audit_events_request")
        batch_op.drop_index("idx_audit_events_outcome")
        batch_op.drop_index("idx_audit_events_occurred_at")
        batch_op.drop_index("idx_audit_events_actor")
        batch_op.drop_index(
            "idx_audit_events_action", postgresql_ops={"action": "varchar_pattern_ops"}
        )

    op.drop_table("audit_events")
