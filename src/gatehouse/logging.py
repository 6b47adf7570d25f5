"""structlog on top of the stdlib, so uvicorn, SQLAlchemy and our own lines share one format."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import MutableMapping
from typing import Any

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


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        _request_id,
        add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
        _statement_error_alone,
    ]
    renderer: structlog.types.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        shared.extend([structlog.processors.format_exc_info, _scrub_exception])
    else:
        # No locals in tracebacks: a frame's locals can hold a password or a token.
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stdout.isatty(),
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False),
        )

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


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
