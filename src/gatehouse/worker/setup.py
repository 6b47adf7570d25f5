"""How a process runs background jobs: Celery when a broker is set, else in-process.

`start_jobs` serves the API; `run_worker` and `run_beat` are `gatehouse worker` and
`gatehouse beat`. Celery is imported only by a process that has a broker.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from gatehouse.config import Settings
from gatehouse.logging import configure_logging
from gatehouse.observability import errors
from gatehouse.runtime import Runtime
from gatehouse.worker.embedded import InProcessRunner

Stop = Callable[[], Awaitable[None]]
log = structlog.get_logger("gatehouse.worker")


async def start_jobs(runtime: Runtime) -> Stop:
    """Give `runtime` its job queue; returns what stops it at shutdown."""
    if runtime.settings.broker_url is None:
        runner = InProcessRunner(runtime)
        runtime.use_jobs(runner)
        await runner.start()
        return runner.stop
    from gatehouse.worker.celery_app import CeleryJobQueue  # lazy: Celery only with a broker

    queue = CeleryJobQueue(runtime.settings)
    runtime.use_jobs(queue)
    return queue.close


def _keep_our_logging(**_: Any) -> None:
    """A `setup_logging` receiver: with one, Celery leaves the logging set-up to us."""


def _failed_for_good(sender: Any, task_id: str, exception: BaseException, **_: Any) -> None:
    from gatehouse.worker.celery_app import REQUEST_ID_HEADER  # lazy: runs in a worker only

    # The message is rejected right after this, and the broker dead-letters it.
    log.error(
        "worker.task_dead_lettered",
        job=sender.name,
        task_id=task_id,
        request_id=getattr(sender.request, REQUEST_ID_HEADER, None),
        error=repr(exception),
        dead_letter_queue=sender.app.gatehouse_topology.dead,
    )


def run_worker(settings: Settings, *, concurrency: int, loglevel: str, queues: list[str]) -> int:
    """`gatehouse worker`: run jobs from the queues (`tasks`, `webhooks`) until stopped."""
    from celery import signals  # type: ignore[import-untyped]  # lazy: Celery, broker only

    from gatehouse.worker.celery_app import (  # lazy: loads Celery, only with a broker
        Topology,
        close_process_state,
        create_celery,
    )
    from gatehouse.worker.celery_app import (  # lazy: loads Celery, only with a broker
        process_state as start_process,
    )

    configure_logging(loglevel, settings.log_format)
    # Before the pool forks, so its processes report too; each pool process turns
    # tracing on for itself when it starts (celery_app.ProcessState).
    errors.setup(settings)
    app = create_celery(settings)
    topology: Topology = app.gatehouse_topology
    signals.setup_logging.connect(_keep_our_logging, weak=False)
    # One event loop and one Runtime per pool process, made after the fork.
    signals.worker_process_init.connect(lambda **_: start_process(app), weak=False)
    signals.worker_process_shutdown.connect(lambda **_: close_process_state(), weak=False)
    signals.task_failure.connect(_failed_for_good, weak=False)
    names = {"tasks": topology.tasks, "webhooks": topology.webhooks}
    worker = app.Worker(
        concurrency=concurrency,
        loglevel=loglevel,
        pool="prefork",
        queues=[names[queue] for queue in queues],
        hostname=f"gatehouse@{socket.gethostname()}.{os.getpid()}",
        quiet=True,  # no banner: stdout carries the JSON log lines
        without_mingle=True,
        without_gossip=True,
        without_heartbeat=True,
    )
    worker.start()
    return int(worker.exitcode or 0)


def run_beat(settings: Settings, *, loglevel: str) -> None:
    """`gatehouse beat`: publish the periodic jobs (sweep, cleanup) until stopped."""
    from celery import signals  # lazy: Celery, only with a broker

    from gatehouse.worker.celery_app import create_celery  # lazy: loads Celery, broker only

    configure_logging(loglevel, settings.log_format)
    # Errors only: beat publishes the schedule (the periodic tasks are not traced).
    errors.setup(settings)
    app = create_celery(settings)
    signals.setup_logging.connect(_keep_our_logging, weak=False)
    # The schedule lives in memory: after a restart the sweep comes again within
    # seconds, and an early cleanup is harmless.
    app.Beat(
        loglevel=loglevel,
        scheduler="celery.beat:Scheduler",
        max_interval=5,
        quiet=True,  # no banner: stdout carries the JSON log lines
        redirect_stdouts=False,
    ).run()
