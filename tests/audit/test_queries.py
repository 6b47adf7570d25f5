"""AuditQueries without HTTP: the export reads its batches after, and apart from, the
unit of work that audited it; the page checks its limit before its cursor."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from gatehouse.audit import queries as audit_queries
from gatehouse.audit import trail
from gatehouse.audit.models import AuditEvent
from gatehouse.audit.queries import AuditQueries
from gatehouse.audit.schemas import AuditFilters, AuditPageParams
from gatehouse.auth.principal import Principal
from gatehouse.errors import ValidationFailed
from gatehouse.runtime import Runtime
from gatehouse.uow import UnitOfWork
from gatehouse.users.models import Role

ADMIN = Principal(user_id=uuid.uuid4(), role=Role.admin, session_id=uuid.uuid4(), auth_version=1)


def queries_in(uow: UnitOfWork, runtime: Runtime) -> AuditQueries:
    return AuditQueries(
        uow,
        database=runtime.db,
        key=runtime.audit_key,
        page_max=runtime.settings.audit.audit_page_max,
    )


async def write(runtime: Runtime, count: int, action: str = "user.update") -> None:
    async with runtime.db.session() as session:
        await trail.append(session, runtime.audit_key, [trail.Entry(action=action)] * count)


async def rows(runtime: Runtime) -> list[AuditEvent]:
    async with runtime.db.session(write=False) as session:
        return list((await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all())


async def test_the_export_is_read_after_its_unit_of_work_and_as_of_its_start(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_queries, "EXPORT_BATCH", 2)
    await write(runtime, 5)
    # As a GET request: a read-only unit of work, done before the first batch is read.
    async with runtime.unit_of_work(write=False) as uow:
        export = await queries_in(uow, runtime).export(ADMIN, AuditFilters(action="user."))
    # Recorded meanwhile: past the export's `through`, so not in it.
    await write(runtime, 1)
    batches = [batch async for batch in export.batches]

    assert [len(batch) for batch in batches] == [2, 2, 1]
    table = await rows(runtime)
    assert [item.id for batch in batches for item in batch] == [r.id for r in table[:5]]
    audited = [r for r in table if r.action == "audit.export"]
    assert len(audited) == 1
    assert export.through is not None
    assert audited[0].details == {"filters": {"action": "user."}, "through_id": export.through}
    assert audited[0].actor_id == ADMIN.user_id
    assert audited[0].id > export.through


async def test_an_export_of_an_empty_trail_reads_nothing(runtime: Runtime) -> None:
    async with runtime.unit_of_work(write=False) as uow:
        export = await queries_in(uow, runtime).export(ADMIN, AuditFilters())
    assert export.through is None
    assert [batch async for batch in export.batches] == []


async def test_the_limit_is_checked_before_the_cursor(runtime: Runtime) -> None:
    params = AuditPageParams(limit=runtime.settings.audit.audit_page_max + 1, cursor="abc")
    async with runtime.unit_of_work(write=False) as uow:
        with pytest.raises(ValidationFailed) as caught:
            await queries_in(uow, runtime).page(ADMIN, params)
    assert set(caught.value.details) == {"limit"}
    # A refused read is not a read: nothing audited.
    assert [r.action for r in await rows(runtime)] == []
