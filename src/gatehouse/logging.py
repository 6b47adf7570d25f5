"""One format for every line: our own (structlog) and the libraries' (stdlib logging).

Our lines take structlog's own fast path: the processors build the event, orjson
renders it, and the line is written through the root handler (its stream and lock), so
they interleave cleanly with the libraries' lines and a capture of that handler sees
both. The stdlib round trip (a LogRecord, the handler, the formatter re-running the
chain) cost three times as much, and every request writes a line. When Sentry is on,
our lines go through the stdlib after all: its logging integration reads LogRecords.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog
from sqlalchemy.exc import StatementError

from gatehouse.kit.context import request_id_var
from gatehouse.observability.scrub import scrub_text
from gatehouse.observability.tracing import add_trace_ids

# Keys whose values never reach a log line, whoever passes them.
_SECRET_KEYS = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "password_hash",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "secret",
    }
)


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in event.keys() & _SECRET_KEYS:
        event[key] = "[redacted]"
    return event


def _request_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Every line has `request_id`: the request's or the job's (bound, or in the context
    variable), null outside both, so a search by it needs no "field exists"."""
    if "request_id" not in event:
        event["request_id"] = request_id_var.get()
    return event


def _statement_error_alone(
    _: Any, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A database error's traceback without the driver's exception it wraps.

    The engine hides the statement's parameters (`hide_parameters`), but asyncpg's own
    exception, chained below SQLAlchemy's, carries PostgreSQL's DETAIL, which quotes the
    failing row ("Failing row contains (…, jane@example.com, $2b$12$…)"). SQLAlchemy's
    message already names the driver's error; its frames reach the driver call.
    """
    exc_info = event.get("exc_info")
    if exc_info is True:
        exc_info = sys.exc_info()
    exc = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    if isinstance(exc, StatementError):
        del event["exc_info"]
        event["exception"] = "".join(traceback.format_exception(exc, chain=False)).rstrip()
    return event


class _Timestamp:
    """`timestamp` in ISO 8601, UTC, microseconds (`2026-01-15T10:30:00.123456Z`), as
    structlog's TimeStamper writes it, with the date and time formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        event["timestamp"] = f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
        return event


def _scrub_exception(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A traceback's messages without the emails, tokens and passwords they may quote.

    An exception's message is whatever its code put there: a validation error repeats
    the body it refused, a driver error the row. Only lines with an exception pay for it.
    """
    for key in ("exception", "error"):
        value = event.get(key)
        if isinstance(value, str):
            event[key] = scrub_text(value)
    return event


def _dumps(event: Any, **_: Any) -> str:
    # orjson writes UUIDs and datetimes as strings; anything else unknown as its repr.
    return orjson.dumps(event, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()


_JSON = structlog.processors.JSONRenderer(serializer=_dumps)
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
# Read at each line, not fixed in the cached loggers: a later configure_logging (a
# worker's, a test's) changes the level of loggers already in use.
_level = logging.INFO
# Our lines go through the stdlib (for Sentry's logging integration) when set.
_through_stdlib = False
_handler: logging.Handler | None = None


def _at_level(_: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if _LEVELS.get(method, logging.INFO) < _level:
        raise structlog.DropEvent
    return event


def _emit(logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
    """The last processor of our own lines: the rendered line, or the event for the
    stdlib's formatter (which renders it the same way)."""
    if _through_stdlib:
        args, wrapped = structlog.stdlib.ProcessorFormatter.wrap_for_formatter(
            logger, method, event
        )
        kwargs: dict[str, Any] = dict(wrapped)
        if "exception" in event:
            # The record carries the exception being handled: Sentry reports it from there.
            kwargs["exc_info"] = True
        return args, kwargs
    return _JSON(logger, method, event)


class LineLogger:
    """Writes a rendered line through the root handler; hands an unrendered event
    (Sentry on) to the stdlib logger of the same name."""

    def __init__(self, name: str = "") -> None:
        self.name = name

    def _write(self, level: int, line: Any = "", **kwargs: Any) -> None:
        handler = _handler
        if not isinstance(line, str) or handler is None:
            logging.getLogger(self.name).log(level, line, **kwargs)
            return
        stream = getattr(handler, "stream", None)
        if stream is None:
            logging.getLogger(self.name).log(level, line)
            return
        handler.acquire()
        try:
            stream.write(line + "\n")
            stream.flush()
        finally:
            handler.release()

    def debug(self, line: Any = "", **kwargs: Any) -> None:
        self._write(logging.DEBUG, line, **kwargs)

    def info(self, line: Any = "", **kwargs: Any) -> None:
        self._write(logging.INFO, line, **kwargs)

    def warning(self, line: Any = "", **kwargs: Any) -> None:
        self._write(logging.WARNING, line, **kwargs)

    def error(self, line: Any = "", **kwargs: Any) -> None:
        self._write(logging.ERROR, line, **kwargs)

    def critical(self, line: Any = "", **kwargs: Any) -> None:
        self._write(logging.CRITICAL, line, **kwargs)

    msg = info
    warn = warning
    fatal = critical
    exception = error


def _line_logger(*args: Any) -> LineLogger:
    return LineLogger(str(args[0]) if args and args[0] is not None else "")


def send_lines_through_stdlib() -> None:
    """Our lines from now on become LogRecords too (Sentry's logging integration)."""
    global _through_stdlib
    _through_stdlib = True


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    global _handler, _level
    _level = logging.getLevelNamesMapping()[level.upper()]
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        _request_id,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        _Timestamp(),
        _redact,
        _statement_error_alone,
    ]
    renderer: structlog.types.Processor
    if fmt == "json":
        renderer = _JSON
        shared.extend([structlog.processors.format_exc_info, _scrub_exception])
        structlog.configure(
            processors=[_at_level, *shared, _emit],
            logger_factory=_line_logger,
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
            cache_logger_on_first_use=True,
        )
    else:
        # No locals in tracebacks: a frame's locals can hold a password or a token.
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stdout.isatty(),
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False),
        )
        # The console is for people at a terminal: the stdlib's path is fast enough.
        structlog.configure(
            processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    _handler = handler
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log would repeat our own request line, without the request id.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # aiormq logs every failed connect at ERROR with a traceback; the relay reports an
    # outage itself, once (outbox.broker_unavailable).
    logging.getLogger("aiormq.connection").setLevel(logging.CRITICAL)
    # httpx logs every request's full URL at INFO: a webhook target's query string is
    # often its credential.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
