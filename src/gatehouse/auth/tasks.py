"""Cleanup of this feature: ended sessions are kept a while (they answer "where was I
logged in?"), then forgotten with the IP and user agent they hold; logins that waited
for a second factor are forgotten a day after their mfa_token expired."""

from __future__ import annotations

from datetime import timedelta

import structlog

from gatehouse.auth.repository import SessionRepository
from gatehouse.kit.tasks import FeatureTasks
from gatehouse.kit.time import utcnow
from gatehouse.mfa.repository import MfaRepository
from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.auth")

ENDED_SESSION_RETENTION = timedelta(days=90)
# A used or expired mfa_token's row: kept a day for an operator asking about a login.
MFA_CHALLENGE_RETENTION = timedelta(days=1)


async def cleanup(runtime: Runtime) -> None:
    """Delete sessions that ended (logout, revocation or expiry) over 90 days ago, and
    mfa_token rows that expired over a day ago."""
    now = utcnow()
    async with runtime.db.session() as session:
        removed = await SessionRepository(session).delete_ended_before(
            now - ENDED_SESSION_RETENTION
        )
        challenges = await MfaRepository(session).delete_challenges_ended_before(
            now - MFA_CHALLENGE_RETENTION
        )
    if removed:
        log.info("auth.sessions_forgotten", removed=removed)
    if challenges:
        log.info("auth.mfa_challenges_forgotten", removed=challenges)


TASKS = FeatureTasks(cleanup=cleanup)
