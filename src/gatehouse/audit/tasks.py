"""This feature's sweep step: seal the audit rows requests inserted since the last
sweep (gatehouse.audit.sealer), every few seconds."""

from __future__ import annotations

from gatehouse.audit.sealer import seal_pending
from gatehouse.kit.tasks import FeatureTasks
from gatehouse.runtime import Runtime


async def seal(runtime: Runtime) -> None:
    await seal_pending(runtime.db, runtime.audit_key)


TASKS = FeatureTasks(sweep=seal)
