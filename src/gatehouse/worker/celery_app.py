"""Celery on RabbitMQ: the queues, one task per job, the worker and beat, the API's client.

Topology (`<p>` = GATEHOUSE_TASK_QUEUE_PREFIX): the topic exchange `<p>.jobs` routes to
two quorum queues, `<p>.tasks` and `<p>.webhooks` (slow calls to other people's
servers get a queue of their own). Both dead-letter to the fanout exchange `<p>.dlx`,
bound to the queue `<p>.dead`: a message delivered more than
GATEHOUSE_TASK_DELIVERY_LIMIT times (a worker that dies on it every time) and a task
that failed for good (retries used up) both end there. RabbitMQ 3.x has no default
delivery limit, so it is set explicitly. docs/operations.md, "Background work", tells
how to inspect and replay what is there.

Each task is a thin wrapper: it runs its job's coroutine on this worker process's one
event loop and Runtime, created after fork: an event loop, a database pool or a Redis
connection made before the fork would be shared by every pool process, and each task
opening its own loop would build and drop the pools on every task.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from celery import Celery, Task, bootsteps  # type: ignore[import-untyped]
from celery.app.amqp import AMQP  # type: ignore[import-untyped]
from kombu.entity import Exchange, Queue

from gatehouse import observability
from gatehouse.config import Settings, WorkerSettings
from gatehouse.kit.context import request_id_var, user_id_var
from gatehouse.kit.jobs import JobOrigin
from gatehouse.kit.tasks import Job
from gatehouse.observability import errors, tracing
from gatehouse.runtime import Runtime
from gatehouse.worker.maintenance import CLEANUP_JOB, SWEEP_JOB
from gatehouse.worker.registry import all_jobs

log = structlog.get_logger("gatehouse.worker")

# RabbitMQ closes the channel of a delivery left unacknowledged past its consumer_timeout
# (30 min by default) and the worker then crash-loops (celery#6760), so a task must end
# well within it. A countdown waits in the broker's delay queues, not in a worker; the
# cap keeps even a countdown held by a worker (no delayed delivery) under it (EVT-08).
CONSUMER_TIMEOUT_SECONDS = 1800
MAX_TIME_LIMIT_SECONDS = CONSUMER_TIMEOUT_SECONDS * 2 // 3
MAX_COUNTDOWN_SECONDS = 900
REQUEST_ID_HEADER = "gatehouse_request_id"
USER_ID_HEADER = "gatehouse_user_id"
# W3C trace context, the name OpenTelemetry's Celery instrumentation reads on the task side.
TRACEPARENT_HEADER = "traceparent"
CLEANUP_EVERY_SECONDS = 3600.0
PERIODIC_JOBS = frozenset({SWEEP_JOB, CLEANUP_JOB})


@dataclass(frozen=True)
class Topology:
    """The exchanges and queues of one deployment (one GATEHOUSE_TASK_QUEUE_PREFIX)."""

    prefix: str

    @property
    def exchange(self) -> str:
        return f"{self.prefix}.jobs"

    @property
    def tasks(self) -> str:
        return f"{self.prefix}.tasks"

    @property
    def webhooks(self) -> str:
        return f"{self.prefix}.webhooks"

    @property
    def dlx(self) -> str:
        return f"{self.prefix}.dlx"

    @property
    def dead(self) -> str:
        return f"{self.prefix}.dead"

    def work_queues(self, delivery_limit: int) -> list[Queue]:
        exchange = Exchange(self.exchange, type="topic", durable=True)  # type: ignore[no-untyped-call]
        arguments = {
            "x-queue-type": "quorum",
            "x-delivery-limit": delivery_limit,
            "x-dead-letter-exchange": self.dlx,
            # A dead letter leaves this queue only once the dead-letter queue has it.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
        # The routing key carries the prefix: delayed delivery (retries) routes through
        # one exchange per vhost, shared by every deployment in it.
        return [
            Queue(name, exchange, routing_key=name, durable=True, queue_arguments=arguments)  # type: ignore[no-untyped-call]
            for name in (self.tasks, self.webhooks)
        ]

    def dead_letter_queue(self) -> Queue:
        return Queue(  # type: ignore[no-untyped-call]
            self.dead,
            Exchange(self.dlx, type="fanout", durable=True),  # type: ignore[no-untyped-call]
            routing_key="",
            durable=True,
            queue_arguments={"x-queue-type": "quorum"},
        )


def check_limits(worker: WorkerSettings) -> None:
    """Refuse time limits or a retry backoff that could outlast the consumer timeout."""
    if worker.task_time_limit_seconds > MAX_TIME_LIMIT_SECONDS:
        raise ValueError(
            f"GATEHOUSE_TASK_TIME_LIMIT_SECONDS must be at most {MAX_TIME_LIMIT_SECONDS} "
            f"(RabbitMQ's consumer_timeout is {CONSUMER_TIMEOUT_SECONDS}s)"
        )
    if worker.task_soft_time_limit_seconds >= worker.task_time_limit_seconds:
        raise ValueError("the soft time limit must be below the hard one")
    if worker.task_retry_backoff_max_seconds > MAX_COUNTDOWN_SECONDS:
        raise ValueError(
            f"GATEHOUSE_TASK_RETRY_BACKOFF_MAX_SECONDS must be at most {MAX_COUNTDOWN_SECONDS}"
        )


def check_countdown(countdown: float | None, eta: datetime | str | None) -> None:
    """Refuse a task message that would wait more than MAX_COUNTDOWN_SECONDS."""
    if countdown is not None and countdown > MAX_COUNTDOWN_SECONDS:
        raise ValueError(f"countdown {countdown}s is above {MAX_COUNTDOWN_SECONDS}s")
    if eta is not None:
        when = datetime.fromisoformat(eta) if isinstance(eta, str) else eta
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if when - datetime.now(UTC) > timedelta(seconds=MAX_COUNTDOWN_SECONDS + 1):
            raise ValueError(f"eta {when.isoformat()} is more than {MAX_COUNTDOWN_SECONDS}s away")


class GuardedAMQP(AMQP):  # type: ignore[misc]
    """Every task message is built and sent here: the countdown cap, no broker TTL."""

    def as_task_v2(
        self,
        task_id: str,
        name: str,
        args: Any = None,
        kwargs: Any = None,
        countdown: float | None = None,
        eta: datetime | str | None = None,
        *rest: Any,
        **options: Any,
    ) -> Any:
        check_countdown(countdown, eta)
        return super().as_task_v2(task_id, name, args, kwargs, countdown, eta, *rest, **options)

    def _create_task_sender(self) -> Callable[..., Any]:
        send: Callable[..., Any] = super()._create_task_sender()

        def send_task_message(producer: Any, name: str, message: Any, **kwargs: Any) -> Any:
            # Celery also turns `expires` into a per-message TTL, and on our queues an
            # expired message would be dead-lettered; the worker's own check acks it.
            kwargs.pop("expiration", None)
            return send(producer, name, message, **kwargs)

        return send_task_message


def create_celery(settings: Settings) -> Celery:
    """The Celery app of this deployment: queues, limits, retries, one task per job."""
    worker = settings.worker
    if settings.broker_url is None:
        raise ValueError("GATEHOUSE_BROKER_URL is not set")
    check_limits(worker)
    topology = Topology(worker.task_queue_prefix)
    redis = settings.redis
    app = Celery("gatehouse", amqp=GuardedAMQP, set_as_current=False)
    app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_timeout=3.0,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"confirm_publish": True},
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        # The database row is the truth and nobody waits for a result: Redis keeps
        # only the error of a task that failed for good, for a day.
        result_backend=redis.redis_url.get_secret_value() if redis.redis_url else None,
        result_backend_transport_options={"global_keyprefix": redis.redis_prefix},
        result_expires=timedelta(days=1),
        task_ignore_result=True,
        task_store_errors_even_if_ignored=True,
        redis_socket_timeout=2.0,
        redis_socket_connect_timeout=2.0,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        enable_utc=True,
        task_queues=topology.work_queues(worker.task_delivery_limit),
        task_default_queue=topology.tasks,
        task_default_exchange=topology.exchange,
        task_default_exchange_type="topic",
        task_default_routing_key=topology.tasks,
        task_routes={"webhooks.*": {"queue": topology.webhooks}},
        task_create_missing_queues=False,
        # A message is acknowledged once its task has run; a worker that dies mid-task
        # leaves it to be delivered again (EVT-06: jobs are idempotent).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A task that failed for good is rejected, so the broker dead-letters it.
        task_acks_on_failure_or_timeout=False,
        task_soft_time_limit=worker.task_soft_time_limit_seconds,
        task_time_limit=worker.task_time_limit_seconds,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_enable_remote_control=False,
        beat_schedule={
            SWEEP_JOB: {
                "task": SWEEP_JOB,
                "schedule": worker.outbox_sweep_seconds,
                # A sweep that waited longer than the next one is worth nothing.
                "options": {"expires": worker.outbox_sweep_seconds},
            },
            CLEANUP_JOB: {
                "task": CLEANUP_JOB,
                "schedule": CLEANUP_EVERY_SECONDS,
                "options": {"expires": CLEANUP_EVERY_SECONDS},
            },
        },
    )
    app.gatehouse_settings = settings
    app.gatehouse_topology = topology
    for name, job in all_jobs().items():
        _register(app, name, job)
    app.steps["consumer"].add(DeclareDeadLetters)
    return app


def _register(app: Celery, name: str, job: Job) -> None:
    worker: WorkerSettings = app.gatehouse_settings.worker

    @app.task(  # type: ignore[untyped-decorator]
        name=name,
        bind=True,
        shared=False,  # this app's own: another app (tests, a second config) has its own
        autoretry_for=(Exception,),
        retry_backoff=True,
        retry_backoff_max=worker.task_retry_backoff_max_seconds,
        retry_jitter=True,
        max_retries=worker.task_max_retries,
    )
    def run(task: Task, **kwargs: str) -> None:
        origin = JobOrigin(
            getattr(task.request, REQUEST_ID_HEADER, None),
            getattr(task.request, USER_ID_HEADER, None),
            getattr(task.request, TRACEPARENT_HEADER, None),
        )
        state = process_state(app)
        state.run(_call(job, state.runtime, kwargs, name, origin, task.request))


async def _call(
    job: Job,
    runtime: Runtime,
    kwargs: Mapping[str, str],
    name: str,
    origin: JobOrigin,
    request: Any,
) -> None:
    # This coroutine runs as an asyncio task of its own: what it binds stays in there.
    request_id = origin.request_id
    request_id_var.set(request_id)
    user_id_var.set(origin.user_id)
    structlog.contextvars.bind_contextvars(
        job=name, task_id=request.id, request_id=request_id, retries=request.retries
    )
    with (
        # The periodic sweep and cleanup are left out (see `tracing.untraced`).
        tracing.untraced()
        if name in PERIODIC_JOBS
        else tracing.job_span(name, traceparent=origin.traceparent, request_id=request_id),
        # Celery's integration gives each task a scope, and reports from it.
        errors.job_scope(name, request_id=request_id, user_id=origin.user_id, isolate=False),
    ):
        # How often the broker delivered this message before (quorum queues count
        # them): a task that keeps killing its worker is dead-lettered after the limit.
        delivered = int(getattr(request, "x-delivery-count", None) or 0)
        log.info("worker.job_started", delivery_count=delivered, pid=os.getpid())
        if delivered and delivered >= runtime.settings.worker.task_delivery_limit:
            log.warning("worker.job_last_delivery", delivery_count=delivered)
        await job(runtime, kwargs)
        log.info("worker.job_done")


class ProcessState:
    """This worker process's event loop and Runtime (made after fork, closed at exit)."""

    def __init__(self, app: Celery) -> None:
        self.pid = os.getpid()
        # Before the Runtime: its engine and clients are instrumented as they are made.
        observability.setup(app.gatehouse_settings, worker=True)
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.runtime = Runtime.create(app.gatehouse_settings)
        self.jobs = CeleryJobQueue(app.gatehouse_settings, app=app)
        self.runtime.use_jobs(self.jobs)

    def run(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        try:
            self.loop.run_until_complete(task)
        except BaseException:
            # The soft time limit raises from a signal handler, outside the coroutine:
            # the task must not stay pending and run on behind the next one.
            if not task.done():
                task.cancel()
                self.loop.run_until_complete(asyncio.wait([task], timeout=5))
            raise

    def close(self) -> None:
        self.loop.run_until_complete(self.jobs.close())
        closed = self.loop.run_until_complete(self.runtime.close())
        log.info("runtime.closed", closed=closed)
        self.loop.close()
        tracing.flush()  # a pool process may leave without running exit handlers


_state: ProcessState | None = None


def process_state(app: Celery) -> ProcessState:
    """Created on a process's first task if `worker_process_init` did not (solo pool)."""
    global _state
    if _state is None or _state.pid != os.getpid():
        _state = ProcessState(app)
    return _state


def close_process_state() -> None:
    global _state
    if _state is not None and _state.pid == os.getpid():
        _state.close()
    _state = None


class DeclareDeadLetters(bootsteps.StartStopStep):  # type: ignore[misc]
    """On each (re)connection of a worker: the dead-letter exchange and queue exist
    before any message of ours can be dead-lettered."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def start(self, consumer: Any) -> None:
        topology: Topology = consumer.app.gatehouse_topology
        channel = consumer.connection.default_channel
        topology.dead_letter_queue().bind(channel).declare()  # type: ignore[no-untyped-call]


class CeleryJobQueue:
    """The JobQueue of a process with a broker: sends from a small thread pool, so
    `enqueue` never blocks the event loop nor raises; a lost kick waits for the sweep."""

    MAX_PENDING = 1000

    def __init__(self, settings: Settings, *, app: Celery | None = None) -> None:
        self._owned = app is None
        self.app = app if app is not None else create_celery(settings)
        self._names = set(all_jobs())
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gatehouse-enqueue")
        self._pending: set[Future[None]] = set()
        self._timeout = settings.worker.publish_timeout_seconds

    def enqueue(self, name: str, **kwargs: str) -> None:
        origin = JobOrigin.here()
        request_id = origin.request_id
        try:
            if name not in self._names:
                log.error("worker.unknown_job", job=name)
                return
            if len(self._pending) >= self.MAX_PENDING:
                # The broker is slow or gone: the sweep finds this work later.
                log.warning("worker.enqueue_failed", job=name, error="too many pending")
                return
            future = self._executor.submit(self._send, name, dict(kwargs), origin)
            self._pending.add(future)
            future.add_done_callback(self._pending.discard)
        except Exception as exc:
            log.warning("worker.enqueue_failed", job=name, request_id=request_id, error=repr(exc))

    def _send(self, name: str, kwargs: dict[str, str], origin: JobOrigin) -> None:
        headers = {
            header: value
            for header, value in (
                (REQUEST_ID_HEADER, origin.request_id),
                (USER_ID_HEADER, origin.user_id),
                (TRACEPARENT_HEADER, origin.traceparent),
            )
            if value
        }
        try:
            self.app.send_task(
                name, kwargs=kwargs, headers=headers or None, confirm_timeout=self._timeout
            )
        except Exception as exc:
            log.warning(
                "worker.enqueue_failed", job=name, request_id=origin.request_id, error=repr(exc)
            )

    async def drain(self, within: float) -> bool:
        """Wait until every enqueued job is sent (or failed); False on timeout."""
        pending = [asyncio.wrap_future(future) for future in list(self._pending)]
        if pending:
            await asyncio.wait(pending, timeout=within)
        return not self._pending

    async def close(self) -> None:
        if not await self.drain(self._timeout):
            log.warning("worker.enqueue_abandoned", pending=len(self._pending))
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._owned:
            await asyncio.to_thread(self.app.close)
