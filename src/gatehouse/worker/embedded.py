"""The in-process runner of the embedded default: no broker, the same job functions.

Jobs run as asyncio tasks inside the API process. Nothing is kept in memory that the
database does not also hold: the sweep at start-up and every few seconds finds pending
rows again, so a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping

import structlog

from gatehouse.kit.context import request_id_var, user_id_var
from gatehouse.kit.jobs import JobOrigin
from gatehouse.kit.tasks import Job
from gatehouse.observability import errors, tracing
from gatehouse.runtime import Runtime
from gatehouse.worker.maintenance import CLEANUP_JOB, SWEEP_JOB
from gatehouse.worker.registry import all_jobs

log = structlog.get_logger("gatehouse.worker")

CLEANUP_EVERY_SECONDS = 3600.0
_Key = tuple[str, tuple[tuple[str, str], ...]]


class InProcessRunner:
    """A JobQueue that runs jobs on this event loop, a few at a time."""

    # At shutdown, how long the jobs at hand may take (the API's unit allows for it).
    STOP_GRACE = 10.0

    def __init__(self, runtime: Runtime, *, concurrency: int | None = None) -> None:
        self.runtime = runtime
        self.jobs: dict[str, Job] = all_jobs()
        self.concurrency = concurrency or runtime.settings.worker.worker_concurrency
        self.sweep_seconds = runtime.settings.worker.outbox_sweep_seconds
        self._queue: asyncio.Queue[tuple[_Key, JobOrigin]] = asyncio.Queue()
        self._waiting: set[_Key] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._running = 0
        self._stopping = asyncio.Event()

    def enqueue(self, name: str, **kwargs: str) -> None:
        if name not in self.jobs:
            log.error("worker.unknown_job", job=name)
            return
        key: _Key = (name, tuple(sorted(kwargs.items())))
        # The same job already waiting will see this work too.
        if key in self._waiting:
            return
        self._waiting.add(key)
        self._queue.put_nowait((key, JobOrigin.here()))

    async def start(self) -> None:
        self._stopping.clear()
        self._tasks = [
            asyncio.create_task(self._consume(), name=f"gatehouse-job-{n}")
            for n in range(self.concurrency)
        ]
        self._tasks.append(asyncio.create_task(self._schedule(), name="gatehouse-sweep"))
        log.info("worker.embedded_started", concurrency=self.concurrency)

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop sweeping, let the work at hand finish (up to `grace` seconds), then stop.

        Nothing is cancelled while it may be inside a transaction unless the grace runs
        out: a job cut off mid-way loses nothing (its row is still pending for the next
        start), but on SQLite a transaction cancelled mid-statement leaves its connection
        holding the write lock until the connection is collected, and every later writer
        of the same file waits out the busy timeout.
        """
        if not self._tasks:
            return  # never started: nothing runs (its queued kicks are in the database too)
        self._stopping.set()
        scheduler, consumers = self._tasks[-1], self._tasks[:-1]
        try:
            async with asyncio.timeout(grace):
                # The sweep in progress finishes; the scheduler then leaves its loop.
                await asyncio.shield(scheduler)
                await self._queue.join()
        except TimeoutError:
            log.warning("worker.embedded_stop_timeout", pending=len(self._waiting))
        # Idle consumers wait on the queue and hold no connection; cancelling is safe now.
        for task in (scheduler, *consumers):
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def drain(self, within: float = 30.0) -> None:
        """Wait until no job is queued or running (tests, graceful shutdown)."""
        # A job that enqueues another adds to the count before it finishes itself.
        async with asyncio.timeout(within):
            await self._queue.join()

    async def run_now(self, name: str, kwargs: Mapping[str, str] | None = None) -> None:
        await self.jobs[name](self.runtime, dict(kwargs or {}))

    async def _consume(self) -> None:
        while True:
            key, origin = await self._queue.get()
            self._waiting.discard(key)
            self._running += 1
            try:
                await self._run(key, origin)
            finally:
                self._running -= 1
                self._queue.task_done()

    async def _run(self, key: _Key, origin: JobOrigin) -> None:
        name, args = key
        request_id = origin.request_id
        token = request_id_var.set(request_id)
        user_token = user_id_var.set(origin.user_id)
        try:
            with (
                tracing.job_span(name, traceparent=origin.traceparent, request_id=request_id),
                # A scope of its own: this consumer task runs job after job.
                errors.job_scope(name, request_id=request_id, user_id=origin.user_id, isolate=True),
            ):
                try:
                    with structlog.contextvars.bound_contextvars(job=name, request_id=request_id):
                        await self.jobs[name](self.runtime, dict(args))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # The row keeps its state; the next sweep tries again.
                    tracing.failed(exc)
                    log.exception("worker.job_failed", job=name)
        finally:
            user_id_var.reset(user_token)
            request_id_var.reset(token)

    async def _schedule(self) -> None:
        last_cleanup = 0.0
        while not self._stopping.is_set():
            try:
                # Untraced; the jobs a sweep finds start traces of their own.
                with tracing.untraced():
                    await self.jobs[SWEEP_JOB](self.runtime, {})
                    if time.monotonic() - last_cleanup > CLEANUP_EVERY_SECONDS:
                        await self.jobs[CLEANUP_JOB](self.runtime, {})
                        last_cleanup = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker.schedule_failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.sweep_seconds):
                    await self._stopping.wait()
