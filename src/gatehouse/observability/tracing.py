"""OpenTelemetry tracing, on with GATEHOUSE_TRACING_ENABLED=true (docs/tracing.md).

Off (the default) nothing is set up: no tracer provider, no instrumentation, no
middleware, and every hook below returns at its first line. On, one tracer provider
per process exports over OTLP/HTTP (configured by the standard OTEL_* variables) and
these are traced: the API's requests (not /metrics and /health*), SQL, Redis, the
webhook sender's HTTP calls, Celery tasks, and spans of our own for publishing to
RabbitMQ, each job and each event's dispatch.

One trace follows a change from the request that made it: its W3C `traceparent` is
stored with the outbox row (`current_traceparent`), sent as the RabbitMQ message's
header and carried with every job the change asks for; a webhook delivery sends it on.

Instrumentations are attached per object where they can be (the app, each engine, the
Redis and webhook clients), so an object made while tracing was off stays untraced;
Celery's is process-wide (worker processes only). The SDK's provider, exporter and
the instrumentations are imported only when tracing is turned on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import event

from gatehouse import __version__
from gatehouse.config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from httpx import AsyncClient
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine

SERVICE_NAME = "gatehouse"
REQUEST_ID_ATTRIBUTE = "gatehouse.request_id"
TRACEPARENT = "traceparent"
# Requests that are not worth a trace (the scraper's and the load balancer's polls),
# nor is what they do (a readiness check's query): these paths and those under them.
UNTRACED_PATHS = ("/metrics", "/health")
EXCLUDED_URLS = ",".join(rf"^[^?]*?://[^/]*{path}(/[^?]*)?(\?.*)?$" for path in UNTRACED_PATHS)
# Span attributes that may carry a URL's query string, which can hold a credential (a
# webhook target's token, a verification link's token).
_URL_ATTRIBUTES = ("http.url", "url.full", "http.target")
_QUERY_ATTRIBUTES = ("url.query",)

# Only W3C trace context, whatever OTEL_PROPAGATORS says: the stored and sent value is
# a `traceparent`, and baggage must not leave for other people's servers (webhooks).
_W3C = TraceContextTextMapPropagator()


@dataclass
class _Active:
    provider: trace.TracerProvider
    tracer: trace.Tracer
    # Process-wide instrumentations, undone by `deactivate`.
    instrumentors: list[Any] = field(default_factory=list)


_active: _Active | None = None


def enabled() -> bool:
    return _active is not None


def setup(settings: Settings, *, worker: bool = False) -> bool:
    """Turn tracing on for this process if the settings ask for it (once; later calls
    change nothing). `worker`: a Celery worker process, whose tasks are traced too."""
    if not settings.observability.tracing_enabled or _sdk_disabled():
        return False
    if _active is not None:
        return True
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # lazy: tracing on
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.trace import TracerProvider  # lazy: only with tracing on
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # lazy: only with tracing on

    # The exporter and the batch processor read OTEL_EXPORTER_OTLP_* and OTEL_BSP_*,
    # the provider OTEL_TRACES_SAMPLER(_ARG); the provider flushes at exit.
    provider = TracerProvider(resource=resource(settings))
    provider.sampler = without_periodic_tasks(provider.sampler)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    activate(provider, celery=worker)
    return True


# Celery's span of each periodic task (the sweep every few seconds, the hourly
# cleanup), which opens before our code runs: alone in a trace, it would only be noise.
PERIODIC_TASK_SPANS = frozenset({"run/maintenance.sweep", "run/maintenance.cleanup"})


def without_periodic_tasks(sampler: Any) -> Any:
    """`sampler` (OTEL_TRACES_SAMPLER's), except that a periodic task's span is dropped."""
    from opentelemetry.sdk.trace.sampling import (  # lazy: only with tracing on
        Decision,
        Sampler,
        SamplingResult,
    )

    class WithoutPeriodicTasks(Sampler):
        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: Any = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> SamplingResult:
            if name in PERIODIC_TASK_SPANS:
                return SamplingResult(Decision.DROP)
            return sampler.should_sample(  # type: ignore[no-any-return]
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return f"WithoutPeriodicTasks{{{sampler.get_description()}}}"

    return WithoutPeriodicTasks()


def _sdk_disabled() -> bool:
    # The switch every OpenTelemetry SDK honours, for a deployment that sets it globally.
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def resource(settings: Settings) -> Any:
    """service.name from OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES), else "gatehouse"."""
    from opentelemetry.sdk.resources import Resource  # lazy: only with tracing on

    detected = Resource.create(
        {"service.version": __version__, "deployment.environment": settings.server.env.value}
    )
    if str(detected.attributes.get("service.name", "")).startswith("unknown_service"):
        detected = detected.merge(Resource({"service.name": SERVICE_NAME}))
    return detected


def activate(provider: trace.TracerProvider, *, celery: bool = False) -> None:
    """Trace with `provider` from now on: the seam tests use, with a provider of their
    own (the global one can be set only once per process)."""
    global _active
    if _active is not None:
        raise RuntimeError("tracing is already active")
    # No aio-pika instrumentation: the released one refuses aio-pika 10 (and, forced,
    # fails every publish); the publisher makes its own producer span instead.
    state = _Active(provider, provider.get_tracer("gatehouse", __version__))
    if celery:
        state.instrumentors.append(_instrument_celery(provider))
    _active = state


def deactivate() -> None:
    """Stop tracing in this process (tests); objects instrumented meanwhile keep it."""
    global _active
    state, _active = _active, None
    if state is None:
        return
    for instrumentor in state.instrumentors:
        instrumentor.uninstrument()


def _instrument_celery(provider: trace.TracerProvider) -> Any:
    from celery import signals  # type: ignore[import-untyped]  # lazy: worker processes only
    from opentelemetry.instrumentation.celery import (  # lazy: worker processes only
        CeleryInstrumentor,
    )

    instrumentor = CeleryInstrumentor()  # type: ignore[no-untyped-call]
    instrumentor.instrument(tracer_provider=provider)
    # Its publishing side finds a task by name in Celery's default app, and ours are
    # not there (an app of its own, tasks not shared): it would open a span per sent
    # task and never end it, leaving its context attached to the sending thread. Our
    # job queue sends the `traceparent` header itself; the task side (a span per run,
    # continuing that header) stays.
    signals.before_task_publish.disconnect(instrumentor._trace_before_publish)
    signals.after_task_publish.disconnect(instrumentor._trace_after_publish)
    return instrumentor


# --- what the rest of the code calls: no-ops while tracing is off ------------------------


def instrument_app(app: FastAPI) -> None:
    """The server span of each request (its route as the name), outside every middleware."""
    if _active is None:
        return
    from opentelemetry.instrumentation.fastapi import (  # lazy: only with tracing on
        FastAPIInstrumentor,
    )

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_active.provider,
        excluded_urls=EXCLUDED_URLS,
        server_request_hook=_without_query,
        # A span per ASGI message adds nothing an operator reads.
        exclude_spans=["receive", "send"],
    )


def instrument_engine(engine: AsyncEngine) -> None:
    """A span per SQL statement (its text, never its parameters)."""
    if _active is None:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import (  # lazy: only with tracing on
        EngineTracer,
    )
    from opentelemetry.metrics import NoOpMeterProvider  # lazy: only with tracing on

    # Per engine: the instrumentor's own `instrument(engine=...)` works once per process.
    # No metrics: Gatehouse's figures are Prometheus's (docs/metrics.md).
    meter = NoOpMeterProvider().get_meter("gatehouse")
    # Ahead of the instrumentation's own error handler (listened to first), which would
    # describe a failed statement's span with the driver's message: PostgreSQL's can
    # quote the row's values ("Key (email)=(jane@example.com) already exists").
    event.listen(engine.sync_engine, "handle_error", _end_failed_statement)
    EngineTracer(  # type: ignore[no-untyped-call]
        _active.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy"),
        engine.sync_engine,
        meter.create_up_down_counter("db.client.connections.usage"),
    )


def _end_failed_statement(context: Any) -> None:
    execution = context.execution_context
    # Where the instrumentation keeps the statement's span (this version's name).
    current = getattr(execution, "_otel_span", None) if execution is not None else None
    if current is None:
        return
    _failed(current, context.original_exception)
    current.end()
    # Ended here: the instrumentation's handler finds no span and does nothing.
    execution._otel_span = None


def instrument_redis(client: Redis) -> None:
    """A span per Redis command (its name; the instrumentation replaces arguments by ?)."""
    if _active is None:
        return
    from opentelemetry.instrumentation.redis import (  # lazy: only with tracing on
        RedisInstrumentor,
    )

    RedisInstrumentor.instrument_client(client, tracer_provider=_active.provider)


def instrument_httpx(client: AsyncClient) -> None:
    """A client span per request the client sends, which carries its `traceparent`."""
    if _active is None:
        return
    from opentelemetry.instrumentation.httpx import (  # lazy: only with tracing on
        HTTPXClientInstrumentor,
    )

    async def request_hook(span: trace.Span, request: Any) -> None:
        _without_query(span, None)

    HTTPXClientInstrumentor.instrument_client(
        client, tracer_provider=_active.provider, request_hook=request_hook
    )


def _without_query(span: trace.Span, _: Any) -> None:
    """Drop query strings from a span's URL attributes (a token may be one)."""
    attributes = getattr(span, "attributes", None)
    if not attributes or not span.is_recording():
        return
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, strip_query(value))
    for key in _QUERY_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, "")


def untraced_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in UNTRACED_PATHS)


@contextmanager
def untraced() -> Iterator[None]:
    """Nothing in the block is traced, not even as a trace of its own: polls (health
    checks, the scrape) and the periodic sweeps, which would otherwise each leave a
    trace of a few queries every few seconds."""
    if _active is None:
        yield
        return
    from opentelemetry.instrumentation.utils import (  # lazy: only with tracing on
        suppress_instrumentation,
    )

    with suppress_instrumentation():
        yield


def _suppressed() -> bool:
    from opentelemetry.instrumentation.utils import (  # lazy: only with tracing on
        is_instrumentation_enabled,
    )

    return not is_instrumentation_enabled()


def strip_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def current_traceparent() -> str | None:
    """The current span's W3C `traceparent`, to store or send on; None when tracing is
    off or no span is current."""
    if _active is None:
        return None
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get(TRACEPARENT)


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current span's `traceparent` to outgoing headers (tracing on)."""
    traceparent = current_traceparent()
    if traceparent is not None:
        headers[TRACEPARENT] = traceparent


def _context_of(traceparent: str | None) -> otel_context.Context | None:
    if not traceparent:
        return None
    extracted = _W3C.extract({TRACEPARENT: traceparent})
    if not trace.get_current_span(extracted).get_span_context().is_valid:
        return None  # not a traceparent (a row written by something else): a new trace
    return extracted


@contextmanager
def continued(traceparent: str | None) -> Iterator[None]:
    """Run the block as part of the trace `traceparent` names (tracing on, and a valid one)."""
    parent = _context_of(traceparent) if _active is not None else None
    if parent is None:
        yield
        return
    token = otel_context.attach(parent)
    try:
        yield
    finally:
        otel_context.detach(token)


@contextmanager
def span(
    name: str,
    *,
    traceparent: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict[str, str | None] | None = None,
) -> Iterator[None]:
    """A span of our own, current for the block; a child of `traceparent` when given
    (and linked to the span current here, the job that took it up), else of the current
    span. Tracing off (or `untraced`): nothing.

    A failure marks the span as failed with the exception's type only: a message can
    quote a row (an address in a unique violation) and a traceback chains the driver's.
    """
    if _active is None or _suppressed():
        yield
        return
    parent = _context_of(traceparent)
    links = None
    if parent is not None:
        here = trace.get_current_span().get_span_context()
        links = [Link(here)] if here.is_valid else None
    with _active.tracer.start_as_current_span(
        name,
        context=parent,
        kind=kind,
        attributes={k: v for k, v in (attributes or {}).items() if v is not None},
        links=links,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield
        except BaseException as exc:
            _failed(current, exc)
            raise


def job_span(name: str, *, traceparent: str | None, request_id: str | None) -> Any:
    """The span of one run of a job: in the trace of whoever asked for it.

    Under Celery the task's span is already current (the instrumentation continued the
    message's `traceparent`), and this one nests in it; the in-process runner hands the
    `traceparent` it kept with the job.
    """
    if _active is not None and trace.get_current_span().get_span_context().is_valid:
        traceparent = None
    return span(
        f"job {name}",
        traceparent=traceparent,
        kind=SpanKind.CONSUMER,
        attributes={"gatehouse.job": name, REQUEST_ID_ATTRIBUTE: request_id},
    )


def failed(exc: BaseException) -> None:
    """Mark the current span as failed (an error caught and logged, not raised)."""
    if _active is not None:
        _failed(trace.get_current_span(), exc)


def _failed(current: trace.Span, exc: BaseException) -> None:
    if current.is_recording():
        current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        current.set_attribute("error.type", type(exc).__qualname__)


def set_request_id(request_id: str) -> None:
    """Name the request id on the current (server) span."""
    if _active is None:
        return
    current = trace.get_current_span()
    if current.is_recording():
        current.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)


def flush() -> None:
    """Export the spans still batched (a process about to end)."""
    if _active is not None:
        flush_spans = getattr(_active.provider, "force_flush", None)
        if flush_spans is not None:
            flush_spans()


def add_trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: the trace and span ids of the current span, so a log line
    leads to its trace (tracing on, and the trace sampled: one the backend will have).

    Sampled rather than still recording: the request's own line (`http.request`) is
    written just after its server span ended, with the response.
    """
    if _active is None:
        return event
    context = trace.get_current_span().get_span_context()
    if context.is_valid and context.trace_flags.sampled:
        event["trace_id"] = trace.format_trace_id(context.trace_id)
        event["span_id"] = trace.format_span_id(context.span_id)
    return event
