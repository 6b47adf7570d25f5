"""How a process runs background jobs: Celery when a broker is set, else in-process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gatehouse.runtime import Runtime

Stop = Callable[[], Awaitable[None]]


async def start_jobs(runtime: Runtime) -> Stop:
    """Give `runtime` its job queue; returns what stops it at shutdown."""
    if runtime.settings.broker_url is None:
        from gatehouse.worker.embedded import InProcessRunner

        runner = InProcessRunner(runtime)
        runtime.use_jobs(runner)
        await runner.start()
        return runner.stop
    from gatehouse.worker.celery_app import CeleryJobQueue

    queue = CeleryJobQueue(runtime.settings)
    runtime.use_jobs(queue)
    return queue.close
