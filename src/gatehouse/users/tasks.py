"""This feature's scheduled cleanup: recount the live users per role, repairing a count
that drifted from the rows (manual SQL, a restore of one table, a writer of an older
version during a deploy)."""

from __future__ import annotations

import structlog

from gatehouse.kit.tasks import FeatureTasks
from gatehouse.runtime import Runtime
from gatehouse.users import counts

log = structlog.get_logger("gatehouse.users")


async def recount(runtime: Runtime) -> dict[str, tuple[int, int]]:
    """Recount in a transaction of its own; the roles that had drifted."""
    async with runtime.db.session() as session:
        drift = await counts.recount(session)
    if drift:
        # The writes keep the counts exact: a drift means something wrote around them.
        log.warning(
            "users.count_repaired",
            roles={role: {"was": was, "now": now} for role, (was, now) in drift.items()},
        )
    return drift


async def cleanup(runtime: Runtime) -> None:
    await recount(runtime)


TASKS = FeatureTasks(cleanup=cleanup)
