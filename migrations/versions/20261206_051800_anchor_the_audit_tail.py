"""anchor the audit tail: signed checkpoints, maintenance may delete expired rows only

Revision ID: 20261206_0004
Revises: 20261125_0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261206_0004"
down_revision: str | None = "20261125_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The row comparison the erasure's UPDATE must pass: nothing but pii changes, to NULL.
_UNCHANGED = """
       AND (NEW.id, NEW.seq, NEW.occurred_at, NEW.action, NEW.outcome, NEW.reason,
            NEW.actor_id, NEW.actor_role, NEW.target_type, NEW.target_id,
            NEW.request_id, NEW.details::text, NEW.pii_digest, NEW.prev_hash, NEW.hash)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.seq, OLD.occurred_at, OLD.action, OLD.outcome, OLD.reason,
            OLD.actor_id, OLD.actor_role, OLD.target_type, OLD.target_id,
            OLD.request_id, OLD.details::text, OLD.pii_digest, OLD.prev_hash, OLD.hash)"""

# Maintenance may delete only what the retention job could: rows older than the
# shortest retention the settings allow (365 days), less a day for the application's
# clock running ahead of the database's. Before, the flag allowed deleting any row,
# the newest included, and `verify` could not tell.
NARROWED = f"""
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'TRUNCATE'
     AND coalesce(current_setting('gatehouse.audit_maintenance', true), '') = 'on' THEN
    IF TG_OP = 'DELETE' THEN
      IF OLD.occurred_at < now() - interval '364 days' THEN
        RETURN OLD;
      END IF;
      RAISE EXCEPTION 'audit_events is append-only (DELETE of a row younger than 364 days refused)'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.pii IS NULL{_UNCHANGED} THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$
"""

# As 20261125_0003 made it: maintenance could delete any row.
PREVIOUS = f"""
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'TRUNCATE'
     AND coalesce(current_setting('gatehouse.audit_maintenance', true), '') = 'on' THEN
    IF TG_OP = 'DELETE' THEN
      RETURN OLD;
    END IF;
    IF NEW.pii IS NULL{_UNCHANGED} THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$
"""

# Checkpoints are never changed nor removed, maintenance or not.
CHECKPOINTS_APPEND_ONLY = """
CREATE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_checkpoints is append-only (% refused)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$
"""
CHECKPOINT_TRIGGERS = (
    "CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE"
    " ON audit_checkpoints FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only()",
    "CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints"
    " FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_append_only()",
)


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column(
            "row_count", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NARROWED)
        op.execute(CHECKPOINTS_APPEND_ONLY)
        for statement in CHECKPOINT_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoints_no_truncate ON audit_checkpoints")
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoints_append_only ON audit_checkpoints")
        op.execute("DROP FUNCTION IF EXISTS audit_checkpoints_append_only()")
        op.execute(PREVIOUS)
    op.drop_table("audit_checkpoints")
