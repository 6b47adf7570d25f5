"""Every background job by name, and the periodic sweeps that find work left behind.

Each feature lists its jobs in its own `tasks.py`; Celery and the in-process runner
both run them from here, so the two modes execute the same functions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from gatehouse.events.models import OutboxEvent
from gatehouse.runtime import Runtime
from gatehouse.uow import UnitOfWork

Job = Callable[[Runtime, Mapping[str, str]], Awaitable[None]]
Sweep = Callable[[Runtime], Awaitable[None]]


def all_jobs() -> dict[str, Job]:
    from gatehouse.emails import tasks as emails
    from gatehouse.events import tasks as events
    from gatehouse.webhooks import tasks as webhooks
    from gatehouse.worker import maintenance

    jobs: dict[str, Job] = {}
    for module in (events, emails, webhooks, maintenance):
        for name, job in module.JOBS.items():
            if name in jobs:
                raise RuntimeError(f"job {name} defined twice")
            jobs[name] = job
    return jobs


def sweeps() -> list[Sweep]:
    """Find due work (pending rows) and enqueue it: a lost job message only waits."""
    from gatehouse.emails import tasks as emails
    from gatehouse.events import tasks as events
    from gatehouse.webhooks import tasks as webhooks

    return [events.sweep, emails.sweep, webhooks.sweep]


def cleanups() -> list[Sweep]:
    """Remove what is past its retention (published events, used tokens, erased users'
    data, expired audit rows...)."""
    from gatehouse.auth import tasks as auth
    from gatehouse.emails import tasks as emails
    from gatehouse.events import tasks as events
    from gatehouse.privacy import tasks as privacy
    from gatehouse.webhooks import tasks as webhooks

    return [events.cleanup, emails.cleanup, webhooks.cleanup, auth.cleanup, privacy.cleanup]


Reaction = Callable[[UnitOfWork, Runtime, OutboxEvent], Awaitable[None]]


def reactions() -> list[Reaction]:
    """Gatehouse's own reactions to its events, run by `events.dispatch` in its
    transaction (welcome and verification emails, webhook deliveries)."""
    from gatehouse.emails import reactions as emails
    from gatehouse.webhooks import reactions as webhooks

    return [emails.on_event, webhooks.on_event]
