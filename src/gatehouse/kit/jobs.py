"""Background jobs as seen by the code that asks for them.

A job is named after its dotted use case (`webhooks.deliver`) and takes string
arguments. The database row it works on is the truth; a job message only says "work on
it now", so a lost message merely waits for the next sweep. The process decides how
jobs run: Celery on RabbitMQ, the in-process runner of the embedded default, or (the
CLI) nowhere: the running service's sweep picks the work up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Self

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.db.engine import after_commit
from gatehouse.kit.context import current_request_id, current_user_id
from gatehouse.observability import tracing

log = structlog.get_logger("gatehouse.jobs")


class JobQueue(Protocol):
    def enqueue(self, name: str, **kwargs: str) -> None:
        """Ask for `name` to run soon; never blocks and never raises (best effort)."""


@dataclass(frozen=True, slots=True)
class JobOrigin:
    """Where a job comes from, taken when it is enqueued and restored while it runs:
    the request (its id and caller, for logs and error reports) and the trace."""

    request_id: str | None = None
    user_id: str | None = None
    traceparent: str | None = None

    @classmethod
    def here(cls) -> Self:
        return cls(current_request_id(), current_user_id(), tracing.current_traceparent())


class LeftForSweep:
    """The queue of a process that runs no jobs (the CLI): it keeps the names of the jobs
    it was asked for, so the process can say what the service's sweep will pick up."""

    def __init__(self) -> None:
        self.left: list[str] = []

    def enqueue(self, name: str, **kwargs: str) -> None:
        if name not in self.left:
            self.left.append(name)


class NoJobQueueError(RuntimeError):
    """A job was asked for in a process that was given no job queue."""


def no_queue(name: str, *, strict: bool) -> None:
    """A job asked for in a process given no queue: the row stays and the next sweep runs
    it, so say so; in tests (`strict`) fail, a forgotten queue must not pass unseen."""
    if strict:
        raise NoJobQueueError(f"job {name!r} asked for, but this process has no queue")
    log.warning("jobs.no_queue", job=name, message="left for the next sweep")


class Jobs:
    """A unit of work's view of the process's job queue: jobs kicked once it commits."""

    def __init__(self, session: AsyncSession, queue: JobQueue | None, *, strict: bool) -> None:
        self._session = session
        self._queue = queue
        # True in tests: a forgotten queue fails the test instead of losing the kick.
        self._strict = strict
        self._kicked: set[tuple[str, tuple[tuple[str, str], ...]]] = set()

    def after_commit(self, name: str, **kwargs: str) -> None:
        """Kick `name` once this unit of work has committed (once per name and arguments)."""
        queue = self._queue
        if queue is None:
            no_queue(name, strict=self._strict)
            return
        key = (name, tuple(sorted(kwargs.items())))
        if key in self._kicked:
            return
        self._kicked.add(key)
        # The trace of what asks for the job now (the dispatcher's span of one event),
        # not of whatever is current when the commit is over.
        traceparent = tracing.current_traceparent()

        async def kick() -> None:
            self._kicked.discard(key)
            with tracing.continued(traceparent):
                queue.enqueue(name, **kwargs)

        after_commit(self._session, kick)
