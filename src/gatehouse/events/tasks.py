"""Jobs of this feature (thin wrappers around its service), its sweep and cleanup,
declared in `TASKS`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

import structlog

from gatehouse.events import service
from gatehouse.events.outbox import DISPATCH_JOB, RELAY_JOB
from gatehouse.events.publisher import EventPublisher
from gatehouse.kit.tasks import FeatureTasks, Reaction
from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.events")

# Batches one job runs before it hands over to a fresh one, so that a large backlog
# never makes one task outlive its time limit or starve the other jobs.
MAX_BATCHES = 20
# The relay and the dispatcher lock the same rows, and each skips what another holds
# (as relays skip each other's): a batch that took nothing while rows still wait is
# tried again a moment later, instead of leaving those rows to the next sweep. The
# other unit of work holds them for milliseconds.
HELD_RETRIES = 5
HELD_PAUSE_SECONDS = 0.05


async def _drain(
    runtime: Runtime,
    name: str,
    batch: Callable[[Runtime], Awaitable[int]],
    waiting: Callable[[Runtime], Awaitable[bool]],
) -> None:
    idle = 0
    for _ in range(MAX_BATCHES):
        if await batch(runtime):
            idle = 0
            continue
        if idle == HELD_RETRIES or not await waiting(runtime):
            return
        idle += 1
        await asyncio.sleep(HELD_PAUSE_SECONDS * idle)
    runtime.enqueue(name)


async def _relay_waiting(runtime: Runtime) -> bool:
    # With the broker unreachable, waiting rows are no reason to try again at once.
    if runtime.settings.broker_url is None or not runtime.part(EventPublisher).connected:
        return False
    return (await service.due_work(runtime)).relay


async def _dispatch_waiting(runtime: Runtime) -> bool:
    return (await service.due_work(runtime)).dispatch


async def relay(runtime: Runtime, args: Mapping[str, str]) -> None:
    """Publish due outbox rows to RabbitMQ until none is left."""
    await _drain(runtime, RELAY_JOB, service.relay_batch, _relay_waiting)


async def dispatch(
    runtime: Runtime, args: Mapping[str, str], reactions: Sequence[Reaction]
) -> None:
    """Run Gatehouse's own reactions (every feature's, handed in by the registry) for
    undispatched outbox rows until none is left."""

    async def batch(runtime: Runtime) -> int:
        return await service.dispatch_batch(runtime, reactions)

    await _drain(runtime, DISPATCH_JOB, batch, _dispatch_waiting)


async def sweep(runtime: Runtime) -> None:
    """Enqueue the relay and the dispatcher when rows wait for them (a lost kick only
    delays an event until here)."""
    due = await service.due_work(runtime)
    if due.relay:
        runtime.enqueue(RELAY_JOB)
    if due.dispatch:
        runtime.enqueue(DISPATCH_JOB)


async def cleanup(runtime: Runtime) -> None:
    """Delete outbox rows past their retention that need nothing more."""
    deleted = await service.delete_expired(runtime)
    if deleted:
        log.info("outbox.cleaned", deleted=deleted)


TASKS = FeatureTasks(
    jobs={RELAY_JOB: relay},
    dispatchers={DISPATCH_JOB: dispatch},
    sweep=sweep,
    cleanup=cleanup,
)
