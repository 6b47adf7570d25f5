"""Every background job by name, the periodic sweeps and cleanups, and the reactions
to Gatehouse's own events: collected here from each feature's declaration.

Each feature declares its background work once, in its `tasks.py`:

    TASKS = FeatureTasks(
        jobs={"things.do": do},          # name -> job(runtime, args)
        sweep=sweep,                     # enqueue due work whose kick was lost
        cleanup=cleanup,                 # delete what is past its retention
        reactions=(reactions.on_event,), # run by the dispatcher for each event
    )

and this module lists it in `FEATURES`. A new feature's jobs take those two edits:
its `TASKS`, and one line here. Features never import this module (nor anything in
`gatehouse.worker`): a job that needs what was collected, such as the events dispatcher
that runs every feature's reactions, is declared in `dispatchers` and given them here.
Celery and the in-process runner both run the jobs from `all_jobs()`, so the two modes
execute the same functions, and count them the same way (`measured`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from gatehouse.audit import tasks as audit
from gatehouse.auth import tasks as auth
from gatehouse.emails import tasks as emails
from gatehouse.events import tasks as events
from gatehouse.kit import metrics
from gatehouse.kit.tasks import Dispatcher, FeatureTasks, Job, Reaction, Step
from gatehouse.oidc import tasks as oidc
from gatehouse.overview import tasks as overview
from gatehouse.passkeys import tasks as passkeys
from gatehouse.privacy import tasks as privacy
from gatehouse.runtime import Runtime
from gatehouse.users import tasks as users
from gatehouse.webhooks import tasks as webhooks
from gatehouse.worker import maintenance

# In this order the sweeps, cleanups and reactions run.
FEATURES: tuple[FeatureTasks, ...] = (
    # First: the sweep is what seals audit rows, and the seconds it takes are the
    # window in which a row is not yet tamper-evident (docs/audit.md).
    audit.TASKS,
    events.TASKS,
    emails.TASKS,
    webhooks.TASKS,
    auth.TASKS,
    passkeys.TASKS,
    oidc.TASKS,
    privacy.TASKS,
    overview.TASKS,
    users.TASKS,
)


def sweeps() -> list[Step]:
    """Find due work (pending rows) and enqueue it: a lost job message only waits."""
    return [feature.sweep for feature in FEATURES if feature.sweep is not None]


def cleanups() -> list[Step]:
    """Remove what is past its retention (published events, used tokens, erased users'
    data, expired audit rows...)."""
    return [feature.cleanup for feature in FEATURES if feature.cleanup is not None]


def reactions() -> list[Reaction]:
    """Gatehouse's own reactions to its events, run by the events dispatcher in its
    transaction (welcome and verification emails, webhook deliveries)."""
    return [reaction for feature in FEATURES for reaction in feature.reactions]


def all_jobs() -> dict[str, Job]:
    """Every job by name; a name declared twice is a mistake caught at start-up."""
    jobs: dict[str, Job] = {}

    def add(name: str, job: Job) -> None:
        if name in jobs:
            raise RuntimeError(f"job {name} defined twice")
        jobs[name] = measured(name, job)

    collected = reactions()
    for feature in FEATURES:
        for name, job in feature.jobs.items():
            add(name, job)
        for name, dispatcher in feature.dispatchers.items():
            add(name, _with_reactions(dispatcher, collected))
    for name, job in maintenance.jobs(sweeps(), cleanups()).items():
        add(name, job)
    return jobs


def measured(name: str, job: Job) -> Job:
    """`job`, counted in gatehouse_tasks_total and timed in gatehouse_task_duration_seconds.

    Anything that ends it early is a failure: an exception, and a cancellation too (the
    Celery time limit, or the in-process runner's stop after its grace).
    """

    async def run(runtime: Runtime, args: Mapping[str, str]) -> None:
        started = time.perf_counter()
        outcome = "failure"
        try:
            await job(runtime, args)
            outcome = "success"
        finally:
            metrics.TASKS.labels(name, outcome).inc()
            metrics.TASK_DURATION.labels(name).observe(time.perf_counter() - started)

    return run


def _with_reactions(dispatcher: Dispatcher, collected: list[Reaction]) -> Job:
    async def job(runtime: Runtime, args: Mapping[str, str]) -> None:
        await dispatcher(runtime, args, collected)

    return job
