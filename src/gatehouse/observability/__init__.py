"""Tracing (OpenTelemetry) and error tracking (Sentry): both off unless configured.

`setup(settings)` turns on, once per process, what the settings ask for; the API, the
worker's pool processes and the CLI call it (beat only reports errors: it traces
nothing). Off, no SDK is set up (sentry_sdk is not even imported), nothing is
instrumented, and the hooks the rest of the code calls return at their first line.
docs/tracing.md is the operator's side.
"""

from __future__ import annotations

from gatehouse.config import Settings
from gatehouse.observability import errors, tracing


def setup(settings: Settings, *, worker: bool = False) -> None:
    """Error tracking and tracing as configured; a second call changes nothing.
    `worker`: a Celery worker process (its tasks are traced too)."""
    errors.setup(settings)
    tracing.setup(settings, worker=worker)
