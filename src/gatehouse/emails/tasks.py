"""Jobs of this feature (thin wrappers around its service), its sweep, cleanup and
reactions, declared in `TASKS`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import structlog

from gatehouse.emails import reactions, service
from gatehouse.kit.tasks import FeatureTasks
from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.emails")


async def send(runtime: Runtime, args: Mapping[str, str]) -> None:
    """emails.send(email_id): send one pending mail (idempotent)."""
    try:
        email_id = uuid.UUID(args["email_id"])
    except (KeyError, ValueError):
        log.error("email.bad_job_arguments", args=dict(args))
        return
    await service.send(runtime, email_id)


async def sweep(runtime: Runtime) -> None:
    """Enqueue this feature's due work."""
    await service.sweep(runtime)


async def cleanup(runtime: Runtime) -> None:
    """Remove this feature's expired rows."""
    await service.cleanup(runtime)


TASKS = FeatureTasks(
    jobs={service.SEND_JOB: send},
    sweep=sweep,
    cleanup=cleanup,
    reactions=(reactions.on_event,),
)
