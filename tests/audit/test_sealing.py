"""Sealing (gatehouse.audit.sealer): requests insert their audit rows unsealed, and the
worker's sweep chains them seconds later. Rows of many concurrent units of work end up
in one contiguous chain that verifies, whatever number of sealers run; a sealed row's
chain never changes (PostgreSQL's trigger); what tampering before sealing can and
cannot hide."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import sqlalchemy.exc
from sqlalchemy import event, func, select, text

from gatehouse.audit import trail
from gatehouse.audit.models import AuditEvent
from gatehouse.audit.sealer import seal_pending
from gatehouse.audit.service import allow_maintenance, checkpoint, verify_chain
from gatehouse.kit import metrics
from gatehouse.metrics.gauges import refresh_gauges
from gatehouse.runtime import Runtime
from gatehouse.worker.maintenance import SWEEP_JOB
from gatehouse.worker.registry import all_jobs
from tests.audit.test_chain import behind_the_back
from tests.service_support import seal


async def record(runtime: Runtime, count: int, label: str = "x") -> None:
    """One unit of work auditing `count` entries, as a service records them."""
    async with runtime.unit_of_work() as uow:
        for n in range(count):
            uow.audit.record(
                trail.Entry(
                    action="user.read",
                    actor_id=uuid.uuid4(),
                    actor_role="admin",
                    target_type="user",
                    target_id=str(uuid.uuid4()),
                    details={"label": label, "n": n},
                    pii={"ip": "203.0.113.7"},
                )
            )


async def chain(runtime: Runtime) -> list[tuple[int, int | None, str | None, str | None]]:
    """(id, seq, prev_hash, hash) of every row, by id."""
    async with runtime.db.session(write=False) as session:
        rows = await session.execute(
            select(AuditEvent.id, AuditEvent.seq, AuditEvent.prev_hash, AuditEvent.hash).order_by(
                AuditEvent.id
            )
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows.all()]


async def unsealed_ids(runtime: Runtime) -> list[int]:
    async with runtime.db.session(write=False) as session:
        query = select(AuditEvent.id).where(AuditEvent.seq.is_(None)).order_by(AuditEvent.id)
        return list((await session.scalars(query)).all())


def assert_one_contiguous_chain(rows: list[tuple[int, int | None, str | None, str | None]]) -> None:
    seqs = sorted(seq for _, seq, _, _ in rows if seq is not None)
    assert len(seqs) == len(rows), "every row is sealed"
    assert seqs == list(range(1, len(rows) + 1))


async def test_a_unit_of_work_inserts_its_rows_unsealed_in_one_statement(
    runtime: Runtime,
) -> None:
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        await record(runtime, 3)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    audit = [s for s in statements if "audit_events" in s or "advisory" in s]
    assert len(audit) == 1, audit
    assert audit[0].lstrip().upper().startswith("INSERT INTO AUDIT_EVENTS")
    rows = await chain(runtime)
    assert len(rows) == 3
    assert all(r[1:] == (None, None, None) for r in rows)

    assert await seal(runtime) == 3
    assert_one_contiguous_chain(await chain(runtime))
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.ok, verdict.problem
    assert (verdict.checked, verdict.unsealed) == (3, 0)


async def test_rows_of_many_concurrent_units_of_work_end_up_in_one_verified_chain(
    runtime: Runtime,
) -> None:
    async def sealer_while_they_write() -> None:
        for _ in range(5):
            await seal_pending(runtime.db, runtime.audit_key, batch=4)
            await asyncio.sleep(0)

    writers = [record(runtime, 1 + n % 3, label=f"w{n}") for n in range(30)]
    await asyncio.gather(*writers, sealer_while_they_write(), sealer_while_they_write())
    await seal(runtime)

    rows = await chain(runtime)
    assert len(rows) == sum(1 + n % 3 for n in range(30))
    assert_one_contiguous_chain(rows)
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.ok, verdict.problem
    assert verdict.checked == len(rows)


async def test_the_sealer_is_idempotent(runtime: Runtime) -> None:
    await record(runtime, 5)
    assert await seal(runtime) == 5
    sealed = await chain(runtime)
    assert await seal(runtime) == 0
    assert await chain(runtime) == sealed
    await record(runtime, 2)
    assert await seal(runtime) == 2
    rows = await chain(runtime)
    assert rows[:5] == sealed
    assert_one_contiguous_chain(rows)


async def test_two_sealers_at_once_make_one_chain(runtime: Runtime) -> None:
    for n in range(10):
        await record(runtime, 5, label=str(n))
    # Small batches: the two take turns under the chain lock many times.
    counts = await asyncio.gather(
        seal_pending(runtime.db, runtime.audit_key, batch=3),
        seal_pending(runtime.db, runtime.audit_key, batch=3),
    )
    assert sum(counts) == 50
    assert_one_contiguous_chain(await chain(runtime))
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.ok, verdict.problem
    assert verdict.checked == 50


async def test_the_worker_sweep_seals(runtime: Runtime) -> None:
    await record(runtime, 4)
    await all_jobs()[SWEEP_JOB](runtime, {})
    assert await unsealed_ids(runtime) == []
    assert (await verify_chain(runtime.db, runtime.audit_key)).checked == 4


async def test_verify_checkpoints_and_the_gauges_leave_unsealed_rows_out(
    runtime: Runtime,
) -> None:
    await record(runtime, 3)
    await seal(runtime)
    await record(runtime, 2)

    saved = await checkpoint(runtime)
    assert saved is not None
    assert (saved.seq, saved.row_count) == (3, 3)
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.ok, verdict.problem
    assert (verdict.checked, verdict.unsealed) == (3, 2)
    assert verdict.oldest_unsealed_seconds is not None
    assert verdict.oldest_unsealed_seconds >= 0

    await refresh_gauges(runtime)
    assert metrics.AUDIT_UNSEALED._value.get() == 2
    assert metrics.AUDIT_UNSEALED_OLDEST_AGE._value.get() >= 0
    await seal(runtime)
    await refresh_gauges(runtime)
    assert metrics.AUDIT_UNSEALED._value.get() == 0
    assert metrics.AUDIT_UNSEALED_OLDEST_AGE._value.get() == 0
    assert (await verify_chain(runtime.db, runtime.audit_key)).checked == 5


async def test_rows_are_readable_at_once_sealed_or_not(runtime: Runtime) -> None:
    await record(runtime, 2)
    async with runtime.db.session(write=False) as session:
        count = await session.scalar(select(func.count()).select_from(AuditEvent))
    assert count == 2


# --- tampering before sealing ---------------------------------------------------------


async def test_personal_data_altered_before_sealing_is_named(runtime: Runtime) -> None:
    """Detected: the request keyed the personal data's digest, which the seal covers."""
    await record(runtime, 3)
    [_, target, _] = await unsealed_ids(runtime)
    await behind_the_back(
        runtime,
        "UPDATE audit_events SET pii = :pii WHERE id = :id",
        pii='{"ip": "198.51.100.1", "salt": "00"}',
        id=target,
    )
    await seal(runtime)
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.problem is not None
    assert verdict.problem.row_id == target
    assert "personal data was altered" in str(verdict.problem)


async def test_a_row_sealed_without_the_key_is_named(runtime: Runtime) -> None:
    """Detected: anyone may run the sealing UPDATE (the trigger allows it), but only the
    key makes a hash that verifies."""
    await record(runtime, 2)
    first, second = await unsealed_ids(runtime)
    async with runtime.db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE audit_events SET seq = 1, prev_hash = :g, hash = :h WHERE id = :id"),
            {"g": "0" * 64, "h": "f" * 64, "id": first},
        )
    await seal(runtime)
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.problem is not None
    assert verdict.problem.row_id == first
    assert "altered" in str(verdict.problem)
    assert verdict.checked == 0
    assert second in await chain_ids_after(runtime, 1)


async def chain_ids_after(runtime: Runtime, seq: int) -> list[int]:
    async with runtime.db.session(write=False) as session:
        query = select(AuditEvent.id).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)
        return list((await session.scalars(query)).all())


async def test_other_fields_altered_by_a_superuser_before_sealing_go_unnoticed(
    runtime: Runtime,
) -> None:
    """Not detected: the unsealed window. A superuser (triggers off) who alters an
    unsealed row's own fields, or removes it, before the sweep reaches it leaves a chain
    that verifies; docs/audit.md states the window and the backlog gauge bounds it."""
    await record(runtime, 3)
    first, second, third = await unsealed_ids(runtime)
    await behind_the_back(
        runtime, "UPDATE audit_events SET outcome = 'failure' WHERE id = :id", id=first
    )
    await behind_the_back(runtime, "DELETE FROM audit_events WHERE id = :id", id=second)
    await seal(runtime)
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.ok, verdict.problem
    assert verdict.checked == 2
    # Once sealed, the same change is named.
    await behind_the_back(
        runtime, "UPDATE audit_events SET outcome = 'denied' WHERE id = :id", id=third
    )
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.problem is not None
    assert verdict.problem.row_id == third


# --- the trigger (PostgreSQL) ---------------------------------------------------------


async def as_gatehouse(runtime: Runtime, statement: str, *, maintenance: bool = False) -> None:
    """As Gatehouse's own database user would, triggers on."""
    async with runtime.db.session() as session:
        if maintenance:
            await allow_maintenance(session)
        await session.execute(text(statement))


@pytest.mark.parametrize("backend", ["postgres"])
async def test_the_trigger_allows_sealing_once_and_nothing_else(runtime: Runtime) -> None:
    await record(runtime, 2)
    first, second = await unsealed_ids(runtime)
    refused = [
        # Not sealing: other columns of an unsealed row.
        f"UPDATE audit_events SET outcome = 'failure' WHERE id = {first}",
        # Sealing, and changing a field on the way.
        f"UPDATE audit_events SET seq = 1, prev_hash = 'a', hash = 'b', action = 'x'"
        f" WHERE id = {first}",
        # Half a seal.
        f"UPDATE audit_events SET seq = 1 WHERE id = {first}",
        f"DELETE FROM audit_events WHERE id = {first}",
    ]
    for statement in refused:
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
            await as_gatehouse(runtime, statement)

    await seal(runtime)
    sealed = await chain(runtime)
    for statement in (
        f"UPDATE audit_events SET seq = seq + 10 WHERE id = {first}",
        f"UPDATE audit_events SET hash = prev_hash WHERE id = {second}",
        f"UPDATE audit_events SET seq = NULL, prev_hash = NULL, hash = NULL WHERE id = {first}",
        f"UPDATE audit_events SET prev_hash = hash WHERE id = {second}",
    ):
        for maintenance in (False, True):
            with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
                await as_gatehouse(runtime, statement, maintenance=maintenance)
    assert await chain(runtime) == sealed
    assert (await verify_chain(runtime.db, runtime.audit_key)).ok


@pytest.mark.parametrize("backend", ["postgres"])
async def test_erasure_may_null_the_personal_data_of_an_unsealed_row(runtime: Runtime) -> None:
    await record(runtime, 2)
    first, _ = await unsealed_ids(runtime)
    await as_gatehouse(
        runtime, f"UPDATE audit_events SET pii = NULL WHERE id = {first}", maintenance=True
    )
    await seal(runtime)
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.ok, verdict.problem
    assert verdict.checked == 2
