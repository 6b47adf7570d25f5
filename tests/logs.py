"""Capture what Gatehouse logs, through the production pipeline (JSON lines)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from gatehouse.logging import configure_logging


class LogCapture:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        """Every line parsed: a line that is not one JSON object fails the test here."""
        return [json.loads(line) for line in self.text().splitlines() if line.strip()]

    def take(self) -> list[dict[str, Any]]:
        """The records so far, and forget them: the next call sees only newer lines."""
        records = self.records()
        self.clear()
        return records

    def clear(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()


@contextmanager
def capture_json_logs(level: str = "INFO") -> Iterator[LogCapture]:
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    configure_logging(level, "json")
    # Cached loggers would keep this configuration after the block.
    structlog.configure(cache_logger_on_first_use=False)
    stream = io.StringIO()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(stream)
    try:
        yield LogCapture(stream)
    finally:
        root.handlers[:] = handlers
        root.setLevel(root_level)
        structlog.configure(**saved)
