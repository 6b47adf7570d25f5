"""Cleanup of this feature: ended sessions are kept a while (they answer "where was I
logged in?"), then forgotten with the IP and user agent they hold."""

from __future__ import annotations

from datetime import timedelta

import structlog

from gatehouse.auth.repository import SessionRepository
from gatehouse.kit.tasks import FeatureTasks
from gatehouse.kit.time import utcnow
from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.auth")

ENDED_SESSION_RETENTION = timedelta(days=90)


async def cleanup(runtime: Runtime) -> None:
    """Delete sessions that ended (logout, revocation or expiry) over 90 days ago."""
    async with runtime.db.session() as session:
        removed = await SessionRepository(session).delete_ended_before(
            utcnow() - ENDED_SESSION_RETENTION
        )
    if removed:
        log.info("auth.sessions_forgotten", removed=removed)


TASKS = FeatureTasks(cleanup=cleanup)
