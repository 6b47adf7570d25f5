"""Jobs of this feature (thin wrappers around its service), its sweep, cleanup and
reactions, declared in `TASKS`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta

import structlog

from gatehouse.kit.tasks import FeatureTasks
from gatehouse.kit.time import utcnow
from gatehouse.runtime import Runtime
from gatehouse.webhooks import attempts, reactions
from gatehouse.webhooks.repository import WebhookRepository
from gatehouse.webhooks.service import DELIVER_JOB

log = structlog.get_logger("gatehouse.webhooks")

# Finished deliveries stay listed this long (GET /api/v1/webhooks/{id}/deliveries).
DELIVERY_RETENTION = timedelta(days=30)


async def deliver(runtime: Runtime, args: Mapping[str, str]) -> None:
    """Attempt one delivery if it is due (`delivery_id`)."""
    try:
        delivery_id = uuid.UUID(args["delivery_id"])
    except (KeyError, ValueError):
        log.error("webhooks.bad_job_arguments", job=DELIVER_JOB)
        return
    await attempts.deliver(runtime, delivery_id)


async def sweep(runtime: Runtime) -> None:
    """Enqueue the deliveries that are due (first attempts whose kick was lost, retries)."""
    async with runtime.db.session(write=False) as session:
        due = await WebhookRepository(session).due_ids(
            utcnow(), runtime.settings.worker.outbox_batch_size
        )
    for delivery_id in due:
        runtime.enqueue(DELIVER_JOB, delivery_id=str(delivery_id))


async def cleanup(runtime: Runtime) -> None:
    """Remove deliveries finished more than DELIVERY_RETENTION ago."""
    async with runtime.db.session() as session:
        removed = await WebhookRepository(session).purge(utcnow() - DELIVERY_RETENTION)
    if removed:
        log.info("webhooks.deliveries_purged", count=removed)


TASKS = FeatureTasks(
    jobs={DELIVER_JOB: deliver},
    sweep=sweep,
    cleanup=cleanup,
    reactions=(reactions.on_event,),
)
