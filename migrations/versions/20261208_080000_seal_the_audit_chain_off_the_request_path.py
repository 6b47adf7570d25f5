"""seal the audit chain off the request path: rows are inserted unsealed (seq, prev_hash
and hash NULL) and the sealer chains them, in id order, seconds later

Revision ID: 20261208_0008
Revises: 20261207_0007
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261208_0008"
down_revision: str | None = "20261207_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHAIN = ("seq", "prev_hash", "hash")
UNSEALED_INDEX = "idx_audit_events_unsealed"

# Every column but the chain's three, as the sealing UPDATE must leave them.
_OWN_FIELDS_UNCHANGED = """
       (NEW.id, NEW.occurred_at, NEW.action, NEW.outcome, NEW.reason,
        NEW.actor_id, NEW.actor_role, NEW.target_type, NEW.target_id,
        NEW.request_id, NEW.details::text, NEW.pii::text, NEW.pii_digest)
       IS NOT DISTINCT FROM
       (OLD.id, OLD.occurred_at, OLD.action, OLD.outcome, OLD.reason,
        OLD.actor_id, OLD.actor_role, OLD.target_type, OLD.target_id,
        OLD.request_id, OLD.details::text, OLD.pii::text, OLD.pii_digest)"""

# The erasure's UPDATE: nothing but pii changes, to NULL (sealed or not).
_UNCHANGED = """
       AND (NEW.id, NEW.seq, NEW.occurred_at, NEW.action, NEW.outcome, NEW.reason,
            NEW.actor_id, NEW.actor_role, NEW.target_type, NEW.target_id,
            NEW.request_id, NEW.details::text, NEW.pii_digest, NEW.prev_hash, NEW.hash)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.seq, OLD.occurred_at, OLD.action, OLD.outcome, OLD.reason,
            OLD.actor_id, OLD.actor_role, OLD.target_type, OLD.target_id,
            OLD.request_id, OLD.details::text, OLD.pii_digest, OLD.prev_hash, OLD.hash)"""

# As 20261206_0004 made it, plus one exception, open to any transaction like an INSERT:
# sealing, which sets the three chain columns of an unsealed row, once. A sealed row's
# chain never changes again, and sealing changes nothing else. Sealing needs no flag: a
# row sealed without the audit key fails verification like any forged row.
SEALING = f"""
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE'
     AND OLD.seq IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL
     AND NEW.seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
     AND {_OWN_FIELDS_UNCHANGED} THEN
    RETURN NEW;
  END IF;
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

# As 20261206_0004 made it: no sealing.
PREVIOUS = f"""
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


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Dropping NOT NULL changes the catalogue only: no rewrite, no scan.
        for column in CHAIN:
            op.alter_column("audit_events", column, nullable=True)
        op.execute(SEALING)
        # Every audited request inserts here: CONCURRENTLY lets them through while the
        # index is built (it cannot run in a transaction).
        with op.get_context().autocommit_block():
            op.create_index(
                UNSEALED_INDEX,
                "audit_events",
                ["id"],
                postgresql_where=sa.text("seq IS NULL"),
                postgresql_concurrently=True,
            )
        return
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        for column in CHAIN:
            batch_op.alter_column(column, existing_type=_type(column), nullable=True)
        batch_op.create_index(UNSEALED_INDEX, ["id"], sqlite_where=sa.text("seq IS NULL"))


def downgrade() -> None:
    unsealed = op.get_bind().scalar(sa.text("SELECT count(*) FROM audit_events WHERE seq IS NULL"))
    if unsealed:
        raise RuntimeError(
            f"{unsealed} audit rows are not sealed yet: run the worker's sweep (or "
            "`gatehouse audit verify`, which seals first) before downgrading"
        )
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(UNSEALED_INDEX, table_name="audit_events")
        op.execute(PREVIOUS)
        for column in CHAIN:
            op.alter_column("audit_events", column, nullable=False)
        return
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(UNSEALED_INDEX)
        for column in CHAIN:
            batch_op.alter_column(column, existing_type=_type(column), nullable=False)


def _type(column: str) -> sa.types.TypeEngine[object]:
    if column == "seq":
        return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    return sa.String(length=64)
