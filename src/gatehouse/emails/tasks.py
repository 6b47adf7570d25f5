"""Jobs of this feature (thin wrappers around its service), its sweep and cleanup."""

from __future__ import annotations

from gatehouse.runtime import Runtime
from gatehouse.worker.registry import Job

JOBS: dict[str, Job] = {}


async def sweep(runtime: Runtime) -> None:
    """Enqueue this feature's due work."""


async def cleanup(runtime: Runtime) -> None:
    """Remove this feature's expired rows."""
