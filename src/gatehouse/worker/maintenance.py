"""The periodic jobs: `gatehouse beat` (or the in-process runner) starts them.

They run every feature's sweep or cleanup; the registry hands them the steps it
collected, so this module needs no feature and no registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

from gatehouse.kit.tasks import Job, Step
from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.worker")

SWEEP_JOB = "maintenance.sweep"
CLEANUP_JOB = "maintenance.cleanup"


async def run_steps(runtime: Runtime, steps: Sequence[Step], failure: str) -> None:
    for step in steps:
        try:
            await step(runtime)
        except Exception:  # one feature's failure must not stop the others' steps
            log.exception(failure, step=step.__module__)


def jobs(sweeps: Sequence[Step], cleanups: Sequence[Step]) -> dict[str, Job]:
    """The sweep and cleanup jobs over the given steps."""

    async def sweep(runtime: Runtime, _: Mapping[str, str]) -> None:
        await run_steps(runtime, sweeps, "worker.sweep_failed")

    async def cleanup(runtime: Runtime, _: Mapping[str, str]) -> None:
        await run_steps(runtime, cleanups, "worker.cleanup_failed")

    return {SWEEP_JOB: sweep, CLEANUP_JOB: cleanup}
