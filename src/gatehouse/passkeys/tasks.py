"""Cleanup of this feature: ceremony challenges are good for minutes; the expired ones
(used or not) are deleted by the hourly cleanup."""

from __future__ import annotations

import structlog

from gatehouse.kit.tasks import FeatureTasks
from gatehouse.kit.time import utcnow
from gatehouse.passkeys.repository import ChallengeRepository
from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.passkeys")


async def cleanup(runtime: Runtime) -> None:
    """Delete WebAuthn challenges past their expiry."""
    async with runtime.db.session() as session:
        removed = await ChallengeRepository(session).delete_expired(utcnow())
    if removed:
        log.info("passkeys.challenges_deleted", removed=removed)


TASKS = FeatureTasks(cleanup=cleanup)
