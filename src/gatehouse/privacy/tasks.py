"""This feature's scheduled cleanup: erase users past the grace period, drop audit rows
past their retention, then checkpoint the audit chain's head and check the chain."""

from __future__ import annotations

import structlog

from gatehouse.audit.sealer import seal_pending
from gatehouse.audit.service import checkpoint, purge_expired, verify_recent
from gatehouse.kit.tasks import FeatureTasks
from gatehouse.privacy.service import purge_erased
from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.privacy")


async def cleanup(runtime: Runtime) -> None:
    """Erase soft-deleted users whose grace period is over; apply the audit retention."""
    # Half the job's soft time limit for erasures: a backlog waits for the next hourly
    # run rather than keep the retention below from running.
    budget = runtime.settings.worker.task_soft_time_limit_seconds / 2
    erased = await purge_erased(runtime, budget_seconds=budget)
    removed = await purge_expired(runtime, runtime.settings.audit.audit_retention_days)
    # After the purge, and everything sealed that waits: the head it anchors includes
    # the purge's own row.
    await seal_pending(runtime.db, runtime.audit_key)
    await checkpoint(runtime)
    # Up to the checkpoint just written (and on to the head): reported as metrics.
    await verify_recent(runtime)
    if erased or removed:
        log.info("privacy.cleanup", users_erased=erased, audit_rows_removed=removed)


TASKS = FeatureTasks(cleanup=cleanup)
