"""The overview's tests travel to March 2026 and count what they did there."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from gatehouse.overview.models import AuditActivityHour, AuditActivityRollup
from gatehouse.runtime import Runtime


@pytest.fixture(autouse=True)
async def nothing_rolled_yet(runtime: Runtime) -> None:
    """Start with no hour rolled up. A `gatehouse serve` another test started on this
    worker's database sweeps on the real clock, and a roll it made (up to December)
    would put every travelled hour behind the rollup, where nothing is counted live."""
    async with runtime.db.session() as session:
        await session.execute(delete(AuditActivityRollup))
        await session.execute(delete(AuditActivityHour))
