"""The periodic jobs: `gatehouse beat` (or the in-process runner) starts them."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.worker")

SWEEP_JOB = "maintenance.sweep"
CLEANUP_JOB = "maintenance.cleanup"


async def sweep(runtime: Runtime, _: Mapping[str, str] | None = None) -> None:
    from gatehouse.worker.registry import sweeps

    for step in sweeps():
        try:
            await step(runtime)
        except Exception:  # one feature's failure must not stop the others' sweep
            log.exception("worker.sweep_failed", step=step.__module__)


async def cleanup(runtime: Runtime, _: Mapping[str, str] | None = None) -> None:
    from gatehouse.worker.registry import cleanups

    for step in cleanups():
        try:
            await step(runtime)
        except Exception:
            log.exception("worker.cleanup_failed", step=step.__module__)


JOBS = {SWEEP_JOB: sweep, CLEANUP_JOB: cleanup}
