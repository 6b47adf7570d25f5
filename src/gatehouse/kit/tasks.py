"""What one feature declares about its background work, in one object.

A feature's `tasks.py` exports `TASKS = FeatureTasks(...)`: its jobs by name, its sweep
(find due work, enqueue it), its cleanup (drop what is past its retention) and its
reactions to Gatehouse's own events. `gatehouse.worker.registry` collects them; a
feature never imports the registry, so nothing here may import a feature either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    # Types only: the runtime imports the features, which import this module.
    from gatehouse.runtime import Runtime
    from gatehouse.uow import UnitOfWork

Job: TypeAlias = "Callable[[Runtime, Mapping[str, str]], Awaitable[None]]"
Step: TypeAlias = "Callable[[Runtime], Awaitable[None]]"
# The event is the events feature's OutboxEvent; kit names no feature, so a reaction is
# declared with Any there and the dispatcher passes the real row.
Reaction: TypeAlias = "Callable[[UnitOfWork, Runtime, Any], Awaitable[None]]"
# A job that runs every feature's reactions (the events dispatcher): the registry hands
# it the collected reactions when it builds the job list.
Dispatcher: TypeAlias = (
    "Callable[[Runtime, Mapping[str, str], Sequence[Reaction]], Awaitable[None]]"
)


@dataclass(frozen=True)
class FeatureTasks:
    """One feature's background work; every part is optional."""

    jobs: Mapping[str, Job] = field(default_factory=dict)
    dispatchers: Mapping[str, Dispatcher] = field(default_factory=dict)
    # Run by `maintenance.sweep` every few seconds: enqueue due work whose kick was lost.
    sweep: Step | None = None
    # Run by `maintenance.cleanup` hourly: delete what is past its retention.
    cleanup: Step | None = None
    # Run by the dispatcher for each event, in its transaction.
    reactions: Sequence[Reaction] = ()
