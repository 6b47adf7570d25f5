"""Gauges read from the database at scrape time: the same answer whichever process (API
or worker) does the work, because the database is where the work waits.

Each is one indexed query (partial indexes on the pending rows: tests/metrics check the
plans on PostgreSQL), run only when `GET /metrics` is scraped, never per request.
"""

from __future__ import annotations

import structlog

from gatehouse.audit.repository import AuditRepository
from gatehouse.audit.service import unsealed_age
from gatehouse.events import service as outbox
from gatehouse.kit import metrics
from gatehouse.runtime import Runtime
from gatehouse.webhooks.repository import WebhookRepository

log = structlog.get_logger("gatehouse.metrics")


async def refresh_gauges(runtime: Runtime) -> None:
    """Set the outbox, webhook and audit sealing backlog gauges from the database.

    A database that cannot answer leaves the previous values: the scrape still returns
    everything else, which is when it matters most.
    """
    try:
        stats = await outbox.stats(runtime)
        async with runtime.db.session(write=False) as session:
            webhooks, _ = await WebhookRepository(session).pending()
            unsealed, oldest_unsealed = await AuditRepository(session).unsealed_backlog()
    except Exception as exc:
        log.warning("metrics.gauges_unavailable", error_type=type(exc).__name__)
        return
    # With a broker, the backlog is what it has not confirmed; without one, what the
    # dispatcher (webhooks, emails) has not taken yet.
    if stats.pending_publish is not None:
        pending, age = stats.pending_publish, stats.oldest_unpublished_seconds
    else:
        pending, age = stats.pending_dispatch, stats.oldest_undispatched_seconds
    metrics.OUTBOX_PENDING.set(pending)
    metrics.OUTBOX_OLDEST_AGE.set(age or 0.0)
    metrics.WEBHOOK_PENDING.set(webhooks)
    metrics.AUDIT_UNSEALED.set(unsealed)
    metrics.AUDIT_UNSEALED_OLDEST_AGE.set(unsealed_age(oldest_unsealed) or 0.0)
