"""The registry: one declaration per feature, collected once."""

from __future__ import annotations

import pytest

from gatehouse.audit import tasks as audit
from gatehouse.emails import reactions as email_reactions
from gatehouse.emails import tasks as emails
from gatehouse.events import tasks as events
from gatehouse.kit.tasks import FeatureTasks
from gatehouse.webhooks import reactions as webhook_reactions
from gatehouse.worker import registry


def test_every_job_by_name() -> None:
    assert set(registry.all_jobs()) == {
        "events.relay",
        "events.dispatch",
        "emails.send",
        "webhooks.deliver",
        "maintenance.sweep",
        "maintenance.cleanup",
    }


def test_steps_and_reactions_run_in_the_order_of_features() -> None:
    # Sealing first: its delay is how long a new audit row is not yet tamper-evident.
    assert registry.sweeps()[:3] == [audit.seal, events.sweep, emails.sweep]
    assert [step.__module__ for step in registry.cleanups()] == [
        "gatehouse.events.tasks",
        "gatehouse.emails.tasks",
        "gatehouse.webhooks.tasks",
        "gatehouse.auth.tasks",
        "gatehouse.passkeys.tasks",
        "gatehouse.oidc.tasks",
        "gatehouse.privacy.tasks",
        "gatehouse.users.tasks",
    ]
    assert registry.reactions() == [email_reactions.on_event, webhook_reactions.on_event]


def test_a_job_name_declared_twice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    again = FeatureTasks(jobs={"emails.send": emails.send})
    monkeypatch.setattr(registry, "FEATURES", (*registry.FEATURES, again))
    with pytest.raises(RuntimeError, match=r"job emails\.send defined twice"):
        registry.all_jobs()
