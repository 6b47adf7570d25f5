"""How a process runs background jobs: Celery when a broker is set, else in-process.

`start_jobs` serves the API; `run_worker` and `run_beat` are `gatehouse worker` and
`gatehouse beat`. Celery is imported only by a process that has a broker.

Given a metrics port, the worker and beat serve their metrics on it (docs/metrics.md):
the worker's pool processes share a per-run directory of metric files, which the
worker's own process sums for each scrape.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from gatehouse.config import Settings
from gatehouse.kit import metrics
from gatehouse.logging import configure_logging
from gatehouse.metrics import exposition
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


def _beat_sent(sender: str | None = None, **_: Any) -> None:
    """An `after_task_publish` receiver in beat: the job's message is with the broker."""
    metrics.BEAT_LAST_RUN.labels(task=str(sender)).set_to_current_time()


def _process_ended(**_: Any) -> None:
    """A `worker_process_shutdown` receiver: close this pool process's Runtime; its live
    gauges (the database pool's) leave the worker's sums."""
    from gatehouse.worker.celery_app import close_process_state  # lazy: Celery, broker only

    close_process_state()
    exposition.process_died(os.getpid())


def _database(settings: Settings) -> str:
    return "sqlite" if settings.is_sqlite else "postgresql"


def _serve_metrics(command: str, host: str, port: int) -> bool:
    """Serve this process's metrics on host:port; False (logged) if it cannot listen."""
    try:
        exposition.serve_http(host, port)
    except OSError as exc:
        log.error(
            f"{command}.metrics_port_unavailable",
            address=f"{host}:{port}",
            error=exc.strerror or str(exc),
        )
        return False
    log.info(f"{command}.metrics_served", url=f"http://{host}:{port}/metrics")
    return True


def run_worker(
    settings: Settings,
    *,
    concurrency: int,
    loglevel: str,
    queues: list[str],
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> int:
    """`gatehouse worker`: run jobs from the queues (`tasks`, `webhooks`) until stopped."""
    from celery import signals  # type: ignore[import-untyped]  # lazy: Celery, broker only

    from gatehouse.worker.celery_app import (  # lazy: loads Celery, only with a broker
        Topology,
        create_celery,
    )
    from gatehouse.worker.celery_app import (  # lazy: loads Celery, only with a broker
        process_state as start_process,
    )

    configure_logging(loglevel, settings.log_format)
    if metrics_port is not None:
        # Before the pool processes fork: they inherit the multiprocess mode.
        exposition.share_between_processes(
            exposition.run_directory(settings, "worker", metrics_port)
        )
        if not _serve_metrics("worker", metrics_host, metrics_port):
            return 1
    exposition.record_build(_database(settings))
    # Before the pool forks, so its processes report too; each pool process turns
    # tracing on for itself when it starts (celery_app.ProcessState).
    errors.setup(settings)
    app = create_celery(settings)
    topology: Topology = app.gatehouse_topology
    signals.setup_logging.connect(_keep_our_logging, weak=False)
    # One event loop and one Runtime per pool process, made after the fork.
    signals.worker_process_init.connect(lambda **_: start_process(app), weak=False)
    signals.worker_process_shutdown.connect(_process_ended, weak=False)
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


def run_beat(
    settings: Settings,
    *,
    loglevel: str,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> int:
    """`gatehouse beat`: publish the periodic jobs (sweep, cleanup) until stopped."""
    from celery import signals  # lazy: Celery, only with a broker

    from gatehouse.worker.beat import StopBetweenPublishes  # lazy: loads Celery, broker only
    from gatehouse.worker.celery_app import create_celery  # lazy: loads Celery, broker only

    configure_logging(loglevel, settings.log_format)
    # Beat is one process: its metrics need no shared directory.
    if metrics_port is not None and not _serve_metrics("beat", metrics_host, metrics_port):
        return 1
    # Errors only: beat publishes the schedule (the periodic tasks are not traced).
    errors.setup(settings)
    app = create_celery(settings)
    signals.setup_logging.connect(_keep_our_logging, weak=False)
    signals.after_task_publish.connect(_beat_sent, weak=False)
    exposition.record_build(_database(settings))
    # The schedule lives in memory: after a restart the sweep comes again within
    # seconds, and an early cleanup is harmless.
    StopBetweenPublishes(
        app=app,
        loglevel=loglevel,
        scheduler="celery.beat:Scheduler",
        max_interval=5,
        quiet=True,  # no banner: stdout carries the JSON log lines
        redirect_stdouts=False,
    ).run()
    return 0
