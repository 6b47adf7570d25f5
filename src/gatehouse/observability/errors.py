"""Error tracking with Sentry, on when GATEHOUSE_SENTRY_DSN is set (docs/tracing.md).

What reaches Sentry: unhandled errors of requests (caught by the request middleware's
last-resort handler, so reported from `SentryRequestMiddleware` just inside it), jobs
that fail (the in-process runner logs them, Celery's integration reports them) and
every log line at error level; info lines ride along as breadcrumbs. Each carries the
request id as a tag and the user's id, and nothing else about the user: `scrub`
filters every event and breadcrumb before it leaves the process.

Off, sentry_sdk is not even imported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gatehouse import __version__
from gatehouse.config import Settings
from gatehouse.observability import scrub

_enabled = False


def enabled() -> bool:
    return _enabled


def setup(settings: Settings) -> bool:
    """Initialise Sentry if a DSN is configured (once; later calls change nothing)."""
    global _enabled
    dsn = settings.observability.sentry_dsn
    if dsn is None or not dsn.get_secret_value().strip():
        return False
    if _enabled:
        return True
    import sentry_sdk  # lazy: only with GATEHOUSE_SENTRY_DSN
    from sentry_sdk.integrations import Integration  # lazy: as above
    from sentry_sdk.integrations.argv import ArgvIntegration  # lazy: as above
    from sentry_sdk.integrations.fastapi import FastApiIntegration  # lazy: as above
    from sentry_sdk.integrations.logging import LoggingIntegration  # lazy: as above
    from sentry_sdk.integrations.starlette import StarletteIntegration  # lazy: as above

    integrations: list[Integration] = [
        StarletteIntegration(),
        FastApiIntegration(),
        # Error lines become events, info lines the breadcrumbs that lead to them.
        LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
    ]
    if settings.broker_url is not None:
        # Celery is loaded only by a process that has a broker.
        from sentry_sdk.integrations.celery import (  # lazy: Celery, only with a broker
            CeleryIntegration,
        )

        integrations.append(CeleryIntegration())
    from gatehouse.logging import (  # lazy: gatehouse.logging imports this package first
        send_lines_through_stdlib,
    )

    # Sentry's logging integration reads LogRecords: our lines must become some.
    send_lines_through_stdlib()
    sentry_sdk.init(
        dsn=dsn.get_secret_value(),
        environment=settings.server.env.value,
        release=__version__,
        traces_sample_rate=settings.observability.sentry_traces_sample_rate,
        send_default_pii=False,
        # Frame locals can hold a password or a token; bodies hold both.
        include_local_variables=False,
        max_request_body_size="never",
        # No sentry-trace or baggage header on our outgoing calls: they go to other
        # people's servers (webhooks). OpenTelemetry is the tracing that crosses them.
        trace_propagation_targets=[],
        # Only the integrations above: an auto-enabled one would report what no one
        # checked for personal data (and would load Celery without a broker).
        auto_enabling_integrations=False,
        # The command line can carry a password (`create-admin --password`).
        disabled_integrations=[ArgvIntegration()],
        integrations=integrations,
        before_send=scrub.before_send,
        before_send_transaction=scrub.before_send,
        before_breadcrumb=scrub.before_breadcrumb,
    )
    _enabled = True
    return True


def shutdown() -> None:
    """Send what is queued and stop reporting (tests; a process exit does it by itself)."""
    global _enabled
    if not _enabled:
        return
    import sentry_sdk  # lazy: only with GATEHOUSE_SENTRY_DSN

    _enabled = False
    client = sentry_sdk.get_client()
    client.flush(timeout=5)
    client.close()
    sentry_sdk.get_global_scope().set_client(None)


@contextmanager
def job_scope(
    name: str, *, request_id: str | None, user_id: str | None, isolate: bool
) -> Iterator[None]:
    """What a job's error report says: the job, the request that asked for it and its
    user. `isolate`: a scope of its own (the in-process runner, whose consumer tasks run
    job after job); Celery's integration already gives each task one, and reports the
    task's failure from it, outside the job's coroutine."""
    if not _enabled:
        yield
        return
    import sentry_sdk  # lazy: only with GATEHOUSE_SENTRY_DSN

    with sentry_sdk.isolation_scope() if isolate else _current_isolation_scope() as scope:
        scope.set_tag("job", name)
        if request_id is not None:
            scope.set_tag(scrub.REQUEST_ID_TAG, request_id)
        if user_id is not None:
            scope.set_user({"id": user_id})
        yield


@contextmanager
def _current_isolation_scope() -> Iterator[Any]:
    import sentry_sdk  # lazy: only with GATEHOUSE_SENTRY_DSN

    yield sentry_sdk.get_isolation_scope()
