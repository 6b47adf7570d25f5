"""Background jobs as seen by the code that asks for them.

A job is named after its dotted use case (`webhooks.deliver`) and takes string
arguments. The database row it works on is the truth; a job message only says "work on
it now", so a lost message merely waits for the next sweep. The process decides how
jobs run: Celery on RabbitMQ, or the in-process runner of the embedded default.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.db.engine import after_commit

JOBS_INFO_KEY = "gatehouse.jobs"
_KICKED = "gatehouse.jobs.kicked"


class JobQueue(Protocol):
    def enqueue(self, name: str, **kwargs: str) -> None:
        """Ask for `name` to run soon; never blocks and never raises (best effort)."""


class NoJobQueue:
    """For a process that runs no jobs (the CLI): the next sweep picks the work up."""

    def enqueue(self, name: str, **kwargs: str) -> None:
        return None


def enqueue_after_commit(session: AsyncSession, name: str, **kwargs: str) -> None:
    """Kick `name` once this unit of work has committed (once per name and arguments)."""
    queue: JobQueue | None = session.info.get(JOBS_INFO_KEY)
    if queue is None:
        return
    kicked: set[tuple[str, tuple[tuple[str, str], ...]]] = session.info.setdefault(_KICKED, set())
    key = (name, tuple(sorted(kwargs.items())))
    if key in kicked:
        return
    kicked.add(key)

    async def kick() -> None:
        kicked.discard(key)
        queue.enqueue(name, **kwargs)

    after_commit(session, kick)
