"""Tamper evidence (AUD-06): the chain verifies until someone alters, removes or inserts
a row behind the API's back, and then `verify_chain` names that row. On PostgreSQL the
table refuses UPDATE, DELETE and TRUNCATE outright."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy.exc
from sqlalchemy import select, text

from gatehouse.audit import trail
from gatehouse.audit.chain import pii_digest, row_hash
from gatehouse.audit.models import AuditEvent
from gatehouse.audit.service import allow_maintenance, verify_chain
from gatehouse.runtime import Runtime
from tests.service_support import seal

ROWS = 12


async def write_rows(runtime: Runtime, count: int = ROWS) -> list[int]:
    """`count` audited actions, a few per unit of work, as services record them."""
    actor = uuid.uuid4()
    for start in range(0, count, 3):
        async with runtime.unit_of_work() as uow:
            for n in range(start, min(start + 3, count)):
                uow.audit.record(
                    trail.Entry(
                        action="user.update",
                        actor_id=actor,
                        actor_role="admin",
                        target_type="user",
                        target_id=str(uuid.uuid4()),
                        details={"fields": ["name"], "n": n},
                        pii={"name": f"Person {n}"},
                    ),
                )
    await seal(runtime)
    async with runtime.db.session(write=False) as session:
        return list((await session.scalars(select(AuditEvent.id).order_by(AuditEvent.seq))).all())


async def behind_the_back(runtime: Runtime, statement: str, **params: object) -> None:
    """As a database superuser would: triggers off (PostgreSQL), no Gatehouse code."""
    async with runtime.db.engine.begin() as conn:
        if not runtime.db.is_sqlite:
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text(statement), params)


async def test_an_untouched_chain_verifies(runtime: Runtime) -> None:
    await write_rows(runtime)
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.ok, verdict.problem
    assert verdict.checked == ROWS


async def test_an_altered_row_is_named(runtime: Runtime) -> None:
    ids = await write_rows(runtime)
    await behind_the_back(
        runtime, "UPDATE audit_events SET outcome = 'failure' WHERE id = :id", id=ids[5]
    )
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.problem is not None
    assert verdict.problem.row_id == ids[5]
    assert "altered" in str(verdict.problem)
    assert verdict.checked == 5


async def test_altered_personal_data_is_named(runtime: Runtime) -> None:
    ids = await write_rows(runtime)
    await behind_the_back(
        runtime,
        "UPDATE audit_events SET pii = :pii WHERE id = :id",
        pii='{"name": "Someone Else", "salt": "00"}',
        id=ids[2],
    )
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.problem is not None
    assert verdict.problem.row_id == ids[2]
    assert "personal data" in verdict.problem.message


async def test_a_removed_row_is_named(runtime: Runtime) -> None:
    ids = await write_rows(runtime)
    await behind_the_back(runtime, "DELETE FROM audit_events WHERE id = :id", id=ids[7])
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.problem is not None
    assert verdict.problem.row_id == ids[8]  # the first row after the gap
    assert "missing" in verdict.problem.message


async def test_a_removed_first_row_is_named(runtime: Runtime) -> None:
    ids = await write_rows(runtime)
    await behind_the_back(runtime, "DELETE FROM audit_events WHERE id = :id", id=ids[0])
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.problem is not None
    assert verdict.problem.row_id == ids[1]


async def test_an_inserted_row_is_named_even_when_it_imitates_the_format(
    runtime: Runtime,
) -> None:
    await write_rows(runtime)
    async with runtime.db.session(write=False) as session:
        last = (
            await session.execute(
                select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
            )
        ).one()
    # The forger knows the algorithm, not the key (GATEHOUSE_AUDIT_KEY lives elsewhere).
    forged_key = b"x" * 48
    fields = {
        "seq": last.seq + 1,
        "occurred_at": "2026-01-01T00:00:00.000000+00:00",
        "action": "user.role_change",
        "outcome": "success",
        "reason": None,
        "actor_id": None,
        "actor_role": None,
        "target_type": "user",
        "target_id": "someone",
        "request_id": None,
        "details": {"role": "admin"},
        "pii_digest": pii_digest(forged_key, None),
    }
    await behind_the_back(
        runtime,
        "INSERT INTO audit_events (seq, occurred_at, action, outcome, target_type, target_id,"
        " details, prev_hash, hash) VALUES (:seq, :at, 'user.role_change', 'success', 'user',"
        " 'someone', :details, :prev, :hash)",
        seq=last.seq + 1,
        at="2026-01-01 00:00:00.000000"
        if runtime.db.is_sqlite
        else datetime(2026, 1, 1, tzinfo=UTC),
        details='{"role": "admin"}',
        prev=last.hash,
        hash=row_hash(forged_key, last.hash, fields),
    )
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.problem is not None
    assert verdict.problem.seq == last.seq + 1
    assert verdict.checked == ROWS


async def test_erasing_personal_data_keeps_the_chain_verifiable(runtime: Runtime) -> None:
    ids = await write_rows(runtime)
    async with runtime.db.session() as session:
        await allow_maintenance(session)
        await session.execute(
            text("UPDATE audit_events SET pii = NULL WHERE id IN (:a, :b)"),
            {"a": ids[1], "b": ids[4]},
        )
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.ok, verdict.problem


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET outcome = 'failure'",
        "UPDATE audit_events SET pii = NULL",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
)
async def test_postgresql_refuses_changes_to_the_audit_table(
    runtime: Runtime, backend: str, statement: str
) -> None:
    if backend != "postgres":
        pytest.skip("the append-only trigger is PostgreSQL's")
    await write_rows(runtime, 3)

    async def change() -> None:
        async with runtime.db.engine.begin() as conn:
            await conn.execute(text(statement))

    with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
        await change()
    async with runtime.db.session(write=False) as session:
        assert len((await session.scalars(select(AuditEvent.id))).all()) == 3


async def test_maintenance_may_null_personal_data_but_not_rewrite_a_row(
    runtime: Runtime, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("the append-only trigger is PostgreSQL's")
    await write_rows(runtime, 3)

    async def rewrite() -> None:
        async with runtime.db.session() as session:
            await allow_maintenance(session)
            await session.execute(text("UPDATE audit_events SET pii = NULL, outcome = 'denied'"))

    with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
        await rewrite()
