"""Fixtures of the observability suite: tracing on for one test, with the in-memory
exporter; Sentry reporting to a loopback ingest for one test; both off afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gatehouse.observability import errors, tracing
from tests.observability.support import EXPORTER, PROVIDER, SentryIngest


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test (request it before anything that builds a runtime or an
    app: they are instrumented when made); what was traced is in the exporter."""
    tracing.activate(PROVIDER)
    EXPORTER.clear()
    try:
        yield EXPORTER
    finally:
        tracing.deactivate()
        EXPORTER.clear()


@pytest.fixture
def sentry_ingest() -> Iterator[SentryIngest]:
    """A loopback ingest; the test's settings point GATEHOUSE_SENTRY_DSN at it. Sentry is
    shut down afterwards, whatever turned it on."""
    with SentryIngest() as ingest:
        try:
            yield ingest
        finally:
            errors.shutdown()
