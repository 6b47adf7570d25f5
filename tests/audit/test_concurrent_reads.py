"""Audited reads under concurrency: each admin read writes its audit row without
starving the connection pool (on SQLite the row is written once the read has given its
connection back), and every read gets its row."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from gatehouse.audit.models import AuditEvent
from gatehouse.audit.service import verify_chain
from tests.factories import Api

READS = 40  # more than the pool's connections (5 + 10 overflow)


async def test_many_concurrent_admin_reads_are_all_answered_and_audited(api: Api) -> None:
    admin = await api.user("admin")

    async def read() -> int:
        response = await api.client.get(
            "/api/v1/users", params={"page_size": 5}, headers=admin.headers
        )
        return response.status_code

    statuses = await asyncio.wait_for(asyncio.gather(*(read() for _ in range(READS))), 60)
    assert statuses == [200] * READS
    async with api.runtime.db.session(write=False) as session:
        listed = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "user.list")
        )
    assert listed == READS
    assert (await verify_chain(api.runtime.db, api.runtime.audit_key)).ok
