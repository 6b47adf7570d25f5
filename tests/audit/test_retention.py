"""Retention (AUD-08): audit rows are removed exactly when they pass the retention
period, never earlier; the purge is itself audited and the chain verifies from the
first remaining row; the 365-day floor holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from gatehouse.audit import trail
from gatehouse.audit.models import AuditEvent
from gatehouse.audit.service import RETENTION_ACTION, purge_expired, verify_chain
from gatehouse.config import ConfigError, load_settings
from gatehouse.runtime import Runtime
from tests.audit.test_chain import behind_the_back
from tests.service_support import seal

# The real present: PostgreSQL's trigger lets maintenance delete only rows older than
# 364 days by the database's own clock, which time travel does not move.
NOW = datetime.now(UTC).replace(microsecond=0)
RETENTION = 365


async def audit_at(runtime: Runtime, moment: datetime, label: str, *, sealed: bool = True) -> None:
    """A row recorded at `moment`, sealed by the sweep seconds later unless `sealed`
    is false (a sealer that stopped)."""
    with time_machine.travel(moment, tick=False):
        async with runtime.unit_of_work() as uow:
            uow.audit.record(trail.Entry(action="user.update", details={"label": label}))
    if sealed:
        await seal(runtime)


async def labels(runtime: Runtime) -> list[str]:
    """What remains, in chain order once the sweep sealed it."""
    await seal(runtime)
    async with runtime.db.session(write=False) as session:
        rows = await session.execute(
            select(AuditEvent.action, AuditEvent.details).order_by(AuditEvent.seq)
        )
        return [d.get("label", a) for a, d in rows.all()]


@pytest.fixture
async def aged_rows(runtime: Runtime) -> None:
    """Rows 400, 366, 365 (exactly), 364 days and 1 hour old at NOW."""
    for days, label in ((400, "400d"), (366, "366d"), (365, "365d"), (364, "364d")):
        await audit_at(runtime, NOW - timedelta(days=days), label)
    await audit_at(runtime, NOW - timedelta(hours=1), "1h")


@pytest.mark.usefixtures("aged_rows")
async def test_rows_go_when_they_pass_the_retention_period_and_not_before(
    runtime: Runtime,
) -> None:
    assert await purge_expired(runtime, RETENTION, now=NOW - timedelta(days=2)) == 1
    assert await labels(runtime) == ["366d", "365d", "364d", "1h", RETENTION_ACTION]

    assert await purge_expired(runtime, RETENTION, now=NOW) == 1
    # Exactly 365 days old is still inside the period.
    assert await labels(runtime) == ["365d", "364d", "1h", RETENTION_ACTION, RETENTION_ACTION]

    assert await purge_expired(runtime, RETENTION, now=NOW) == 0
    later = NOW + timedelta(days=1, seconds=1)
    assert await purge_expired(runtime, RETENTION, now=later) == 2
    remaining = await labels(runtime)
    assert remaining[:1] == ["1h"]
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.ok, verdict.problem


@pytest.mark.usefixtures("aged_rows")
async def test_the_purge_records_what_it_cut(runtime: Runtime) -> None:
    with time_machine.travel(NOW, tick=False):
        removed = await purge_expired(runtime, RETENTION)
    assert removed == 2
    async with runtime.db.session(write=False) as session:
        row = await session.scalar(select(AuditEvent).where(AuditEvent.action == RETENTION_ACTION))
    assert row is not None
    assert row.occurred_at == NOW
    assert row.details["removed"] == 2
    assert row.details["retention_days"] == RETENTION
    assert row.details["through_seq"] == 2


@pytest.mark.usefixtures("aged_rows")
async def test_a_row_removed_after_the_purge_breaks_the_chain(runtime: Runtime) -> None:
    await purge_expired(runtime, RETENTION, now=NOW)
    await seal(runtime)
    async with runtime.db.session(write=False) as session:
        first = await session.scalar(select(AuditEvent.id).order_by(AuditEvent.seq).limit(1))
    await behind_the_back(runtime, "DELETE FROM audit_events WHERE id = :id", id=first)
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.problem is not None
    assert "missing" in verdict.problem.message


async def test_a_clock_that_stepped_back_never_makes_a_young_row_expire(
    runtime: Runtime,
) -> None:
    # seq order and time order disagree: the middle row was written by a slow clock.
    await audit_at(runtime, NOW - timedelta(days=400), "old")
    await audit_at(runtime, NOW - timedelta(days=10), "young")
    await audit_at(runtime, NOW - timedelta(days=399), "old, written after the young one")
    assert await purge_expired(runtime, RETENTION, now=NOW) == 1
    assert (await labels(runtime))[:2] == ["young", "old, written after the young one"]


def test_retention_below_a_year_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_AUDIT_RETENTION_DAYS", "364")
    with pytest.raises(ConfigError, match=r"GATEHOUSE_AUDIT_RETENTION_DAYS: .*at least 365"):
        load_settings()
    monkeypatch.setenv("GATEHOUSE_AUDIT_RETENTION_DAYS", "365")
    assert load_settings().audit.audit_retention_days == 365


async def test_a_purge_that_removes_every_row_keeps_the_chain_verifiable(
    runtime: Runtime,
) -> None:
    await audit_at(runtime, NOW - timedelta(days=500), "a")
    await audit_at(runtime, NOW - timedelta(days=400), "b")
    assert await purge_expired(runtime, RETENTION, now=NOW) == 2
    assert await labels(runtime) == [RETENTION_ACTION]
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.ok, verdict.problem
    await audit_at(runtime, NOW, "c")
    assert (await verify_chain(runtime.db, runtime.audit_key)).ok


async def test_the_purge_leaves_unsealed_rows_and_the_sealer_chains_them_after_its_cut(
    runtime: Runtime,
) -> None:
    """Only sealed rows expire: a row the sealer has not reached (here: a sealer stopped
    for a year) has no place in the chain to cut at, and stays."""
    await audit_at(runtime, NOW - timedelta(days=500), "sealed")
    await audit_at(runtime, NOW - timedelta(days=450), "never sealed", sealed=False)
    assert await purge_expired(runtime, RETENTION, now=NOW) == 1
    assert await labels(runtime) == ["never sealed", RETENTION_ACTION]
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.ok, verdict.problem
    assert verdict.checked == 2
