"""What a scrape returns: this process's metrics, or every process's in multiprocess mode.

`gatehouse serve --workers N` and `gatehouse worker` give their processes one directory
(`PROMETHEUS_MULTIPROC_DIR`, emptied when the command starts); each process writes its
values to its own files there and a scrape of any of them sums the files, so the totals
are the same whichever process answers.
"""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from gatehouse import __version__
from gatehouse.kit import metrics

CONTENT_TYPE = CONTENT_TYPE_LATEST


def prepare_directory(path: Path) -> Path:
    """Empty (or create) the per-run directory: files of a previous run would add their
    counts to this one's."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, mode=0o700)
    return path


def process_died(pid: int) -> None:
    """A worker process ended: its live gauges (in-flight requests, pool) stop counting."""
    if metrics.multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def record_build(database: str) -> None:
    metrics.BUILD_INFO.labels(
        version=__version__, python=platform.python_version(), database=database
    ).set(1)


def render() -> bytes:
    """The text exposition of every process sharing this run's directory (or this one)."""
    if metrics.multiprocess_dir() is None:
        return generate_latest(metrics.REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)
