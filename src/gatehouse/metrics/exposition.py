"""What a scrape returns: this process's metrics, or every process's in multiprocess mode.

`gatehouse serve --workers N` and `gatehouse worker --metrics-port N` give their
processes one directory (`PROMETHEUS_MULTIPROC_DIR`, emptied when the command starts);
each process writes its values to its own files there and a scrape of any of them sums
the files, so the totals are the same whichever process answers.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)
from prometheus_client.metrics import MetricWrapperBase

from gatehouse import __version__
from gatehouse.config import Settings
from gatehouse.kit import metrics

CONTENT_TYPE = CONTENT_TYPE_LATEST


def run_directory(settings: Settings, command: str, port: int) -> Path:
    """The per-run directory of one command on one port, under GATEHOUSE_METRICS_DIR (or
    `<data dir>/metrics`): `serve-8000`, `worker-9100`. Two commands on one host never
    share one, so neither empties the other's."""
    base = settings.observability.metrics_dir or settings.server.data_dir.resolve() / "metrics"
    return base / f"{command}-{port}"


def prepare_directory(path: Path) -> Path:
    """Empty (or create) the per-run directory: files of a previous run would add their
    counts to this one's."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, mode=0o700)
    return path


def share_between_processes(path: Path) -> Path:
    """From now on this process, and every process forked from it, writes its values to
    its own files in `path` (emptied first).

    For `gatehouse worker`: Celery's pool processes are forked from it, and inherit how
    values are kept. prometheus-client chooses that once, when it is imported (here
    long before the command line is read, in single-process mode); so the choice is made
    again, and the values made before it (the families without labels) are made again
    too. Nothing is counted before this runs, and no labelled child is kept across it.
    """
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prepare_directory(path))
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    for family in vars(metrics).values():
        if not isinstance(family, MetricWrapperBase):
            continue
        if family._labelnames:
            family.clear()
        else:
            family._metric_init()  # type: ignore[no-untyped-call]
    return path


def process_died(pid: int) -> None:
    """A worker process ended: its live gauges (in-flight requests, pool) stop counting."""
    if metrics.multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def record_build(database: str) -> None:
    metrics.BUILD_INFO.labels(
        version=__version__, python=platform.python_version(), database=database
    ).set(1)


def _registry() -> CollectorRegistry:
    if metrics.multiprocess_dir() is None:
        return metrics.REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def render() -> bytes:
    """The text exposition of every process sharing this run's directory (or this one)."""
    return generate_latest(_registry())


def serve_http(host: str, port: int) -> None:
    """Serve `render()`'s exposition on http://host:port/metrics from a thread of this
    process (`gatehouse worker` and `gatehouse beat`, which serve no HTTP otherwise)."""
    start_http_server(port, host, _registry())
