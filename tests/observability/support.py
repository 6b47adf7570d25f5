"""What the observability tests share: one in-memory tracer provider for the run, a
loopback stand-in for Sentry's ingest, and readers of what each of them got."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_trace_id

from tests.http_receiver import HttpReceiver, Received

# One provider for the whole run, handed to `tracing.activate` by the tests that trace:
# the SDK's global provider can be set only once per process, so no test sets it.
EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider(resource=Resource.create({"service.name": "gatehouse-test"}))
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


def trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format_trace_id(span.context.trace_id)


def trace_of(traceparent: str) -> str:
    """The trace id of a W3C traceparent (`00-<trace id>-<span id>-<flags>`)."""
    version, trace, span, flags = traceparent.split("-")
    assert (version, len(trace), len(span), len(flags)) == ("00", 32, 16, 2), traceparent
    return trace


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = named(spans, name)
    assert len(found) == 1, (name, sorted(span.name for span in spans))
    return found[0]


def attribute_text(spans: Sequence[ReadableSpan]) -> str:
    """Every span's name and attribute values, as one text to search."""
    return "\n".join(
        f"{span.name} {dict(span.attributes or {})} {span.status.description or ''}"
        for span in spans
    )


@dataclass(frozen=True)
class Envelope:
    """One envelope as Sentry's ingest receives it: its raw bytes and its items."""

    raw: bytes
    items: list[tuple[dict[str, Any], bytes]]

    def events(self) -> Iterator[dict[str, Any]]:
        for header, payload in self.items:
            if header.get("type") == "event":
                yield json.loads(payload)


def parse_envelope(raw: bytes) -> Envelope:
    """Sentry's envelope format: a header line, then per item a header line and its
    payload (`length` bytes, or up to the next newline)."""
    _, _, rest = raw.partition(b"\n")
    items = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        length = header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length + 1 :]
        items.append((header, payload))
    return Envelope(raw, items)


class SentryIngest:
    """A real HTTP server on loopback playing Sentry's ingest (POST /api/<project>/envelope/)."""

    def __init__(self) -> None:
        self._receiver = HttpReceiver(path="/api/1/envelope/")

    def __enter__(self) -> SentryIngest:
        self._receiver.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._receiver.stop()

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self._receiver.port}/1"

    def envelopes(self) -> list[Envelope]:
        found = []
        for request in self._receiver.requests:
            assert request.method == "POST", request
            assert request.path.startswith("/api/1/envelope/"), request.path
            found.append(parse_envelope(_body(request)))
        return found

    def events(self) -> list[dict[str, Any]]:
        return [event for envelope in self.envelopes() for event in envelope.events()]

    def raw(self) -> bytes:
        """Everything that reached the ingest, decompressed, to search for a secret."""
        return b"\n".join(
            _body(request) + str(request.headers).encode() for request in self._receiver.requests
        )


def _body(request: Received) -> bytes:
    if request.headers.get("content-encoding") == "gzip":
        return gzip.decompress(request.body)
    return request.body
