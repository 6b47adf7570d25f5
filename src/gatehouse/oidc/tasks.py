"""Cleanup of the OpenID provider: grants, refresh tokens and browser sessions that can
no longer be used are deleted by the hourly cleanup."""

from __future__ import annotations

from datetime import timedelta

import structlog

from gatehouse.kit.tasks import FeatureTasks
from gatehouse.kit.time import utcnow
from gatehouse.oidc.repository import BrowserSessionRepository, GrantRepository
from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.oidc")

# A code never exchanged, or a revoked grant: kept a day for an operator asking about
# an authorization (the audit trail keeps the rest).
FINISHED_GRANT_RETENTION = timedelta(days=1)


async def cleanup(runtime: Runtime) -> None:
    """Delete grants whose code expired unused or that were revoked over a day ago,
    client_credentials grants whose access token has expired, grants past every token's
    lifetime, expired refresh tokens and expired browser sessions."""
    now = utcnow()
    auth = runtime.settings.auth
    # A token is accepted until its expiry plus the verification leeway.
    access = timedelta(seconds=auth.access_token_ttl_seconds + auth.jwt_leeway_seconds)
    async with runtime.db.session() as session:
        grants = GrantRepository(session)
        removed = await grants.delete_finished(
            unused_code_before=now - FINISHED_GRANT_RETENTION,
            revoked_before=now - FINISHED_GRANT_RETENTION,
            machine_before=now - access,
            created_before=now - timedelta(seconds=auth.refresh_token_max_seconds) - access,
        )
        tokens = await grants.delete_expired_refresh_tokens(now)
        browsers = await BrowserSessionRepository(session).delete_expired(now)
    if removed or tokens or browsers:
        log.info(
            "oidc.cleaned_up", grants=removed, refresh_tokens=tokens, browser_sessions=browsers
        )


TASKS = FeatureTasks(cleanup=cleanup)
