"""The newest rows cannot go unnoticed: the maintenance flag (the retention job's and
the erasure's) no longer lets anyone delete a recent row on PostgreSQL, and the cleanup
keeps a signed checkpoint of the chain's head, which `verify` requires the chain to
reach, so rows removed before it (triggers off, as a superuser) are reported."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy.exc
import time_machine
from sqlalchemy import func, select, text

from gatehouse.audit.chain import GENESIS
from gatehouse.audit.models import AuditCheckpoint, AuditEvent
from gatehouse.audit.service import allow_maintenance, checkpoint, verify_chain
from gatehouse.kit.time import utcnow
from gatehouse.privacy.tasks import cleanup
from gatehouse.runtime import Runtime
from tests.audit.test_chain import behind_the_back, write_rows
from tests.logs import LogCapture


async def count(runtime: Runtime, model: type[AuditEvent] | type[AuditCheckpoint]) -> int:
    async with runtime.db.session(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def as_maintenance(runtime: Runtime, statement: str) -> None:
    """What a database user who sets the maintenance flag can do."""
    async with runtime.db.session() as session:
        await allow_maintenance(session)
        await session.execute(text(statement))


async def test_maintenance_may_not_delete_recent_rows(runtime: Runtime, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("the append-only trigger is PostgreSQL's")
    await write_rows(runtime, 6)

    with pytest.raises(sqlalchemy.exc.DBAPIError, match="younger than 364 days"):
        await as_maintenance(runtime, "DELETE FROM audit_events WHERE seq > 3")
    assert await count(runtime, AuditEvent) == 6
    assert (await verify_chain(runtime.db, runtime.audit_key)).ok


async def test_maintenance_may_delete_rows_past_the_shortest_retention(
    runtime: Runtime, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("the append-only trigger is PostgreSQL's")
    with time_machine.travel(utcnow() - timedelta(days=365), tick=False):
        await write_rows(runtime, 3)
    await write_rows(runtime, 3)

    await as_maintenance(
        runtime, "DELETE FROM audit_events WHERE occurred_at < now() - interval '365 days'"
    )
    assert await count(runtime, AuditEvent) == 3


async def test_checkpoints_are_append_only_even_for_maintenance(
    runtime: Runtime, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("the append-only trigger is PostgreSQL's")
    await write_rows(runtime, 3)
    assert await checkpoint(runtime) is not None
    for statement in (
        "UPDATE audit_checkpoints SET seq = 1",
        "DELETE FROM audit_checkpoints",
        "TRUNCATE audit_checkpoints",
    ):
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
            await as_maintenance(runtime, statement)
    assert await count(runtime, AuditCheckpoint) == 1


async def test_removing_the_newest_rows_before_the_checkpoint_is_detected(
    runtime: Runtime,
) -> None:
    await write_rows(runtime, 6)
    saved = await checkpoint(runtime)
    assert saved is not None
    assert (saved.seq, saved.row_count) == (6, 6)
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.ok, verdict.problem
    assert verdict.head == (6, saved.hash)

    # As a superuser: triggers off, the two newest rows gone.
    await behind_the_back(runtime, "DELETE FROM audit_events WHERE seq > 4")
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.problem is not None
    assert "rows 5..6 of the chain are missing" in str(verdict.problem)
    assert "truncated" in str(verdict.problem)
    assert verdict.checked == 4


async def test_rows_after_the_newest_checkpoint_are_not_anchored(runtime: Runtime) -> None:
    """The documented limit: what was appended since the last checkpoint (an hour's
    rows at most) can be removed by someone who turns the triggers off."""
    await write_rows(runtime, 3)
    await checkpoint(runtime)
    await write_rows(runtime, 3)
    await behind_the_back(runtime, "DELETE FROM audit_events WHERE seq > 3")
    assert (await verify_chain(runtime.db, runtime.audit_key)).ok


async def test_a_checkpoint_not_signed_with_the_key_is_reported(runtime: Runtime) -> None:
    await write_rows(runtime, 3)
    await behind_the_back(
        runtime,
        "INSERT INTO audit_checkpoints (seq, hash, row_count, created_at, signature)"
        " VALUES (2, :hash, 2, :at, :signature)",
        hash=GENESIS,
        at=utcnow().replace(tzinfo=None).isoformat(sep=" ") if runtime.db.is_sqlite else utcnow(),
        signature="0" * 64,
    )
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.problem is not None
    assert "not signed with the audit key" in str(verdict.problem)


async def test_the_cleanup_checkpoints_the_head_and_logs_it(
    runtime: Runtime, json_logs: LogCapture
) -> None:
    await write_rows(runtime, 4)
    await cleanup(runtime)
    async with runtime.db.session(write=False) as session:
        [saved] = (await session.scalars(select(AuditCheckpoint))).all()
    assert (saved.seq, saved.row_count) == (4, 4)
    [line] = [r for r in json_logs.records() if r.get("event") == "audit.checkpoint"]
    assert (line["seq"], line["hash"], line["count"]) == (4, saved.hash, 4)

    await verify_chain(runtime.db, runtime.audit_key)
    [verified] = [r for r in json_logs.records() if r.get("event") == "audit.verified"]
    assert (verified["ok"], verified["head_seq"], verified["head_hash"]) == (True, 4, saved.hash)
