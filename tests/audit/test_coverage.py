"""Every audited route writes the row it should (AUD-02, AUD-03, AUD-09, AUD-11).

Each flow of `coverage_support` drives a group of routes over HTTP and names, request by
request, the audit rows it must have written: action, outcome, reason, actor and role,
target, the response's request id, the client's IP and user agent, a UTC time, and the
safe details. A request that writes a row too many or too few fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gatehouse.audit.service import verify_chain
from gatehouse.events.models import OutboxEvent
from gatehouse.runtime import Runtime
from tests.audit.coverage_support import (
    FLOWS,
    SETTINGS,
    Row,
    Scenario,
    audit_rows,
    on_user,
)
from tests.factories import PASSWORD, Api


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return SETTINGS


@pytest.mark.parametrize("flow", list(FLOWS))
async def test_each_request_audits_exactly_its_rows(api: Api, flow: str) -> None:
    scenario = Scenario(api)
    await FLOWS[flow](scenario)
    checked = await scenario.verify()
    assert checked > 0
    verdict = await verify_chain(api.runtime.db, api.runtime.audit_key)
    assert verdict.ok, verdict.problem


@pytest.mark.parametrize("settings_overrides", [{**SETTINGS, "registration_enabled": False}])
async def test_a_refused_sign_up_has_one_row(api: Api) -> None:
    """Sign-up switched off (403 REGISTRATION_DISABLED): one `auth.register` failure; an
    anonymous caller has no role to be denied for."""
    scenario = Scenario(api)
    body = {"email": "closed@example.com", "name": "Clo Sed", "password": PASSWORD}
    await scenario.send(
        "POST",
        "/api/v1/auth/register",
        Row(
            "auth.register",
            "failure",
            "registration_disabled",
            target_type="user",
            pii={"email": "closed@example.com"},
        ),
        status=403,
        json=body,
    )
    await scenario.verify()


@pytest.fixture
def local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's zone is New York, as a badly configured container's would be."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_zone")
async def test_times_are_utc_and_in_chain_order(api: Api) -> None:
    """AUD-09: in a non-UTC zone, every time is UTC with its offset, within the run, and
    chain order (seq), id order and time order agree."""
    started = datetime.now(UTC)
    scenario = Scenario(api)
    await FLOWS["login"](scenario)
    await FLOWS["admin"](scenario)
    finished = datetime.now(UTC)
    rows = await audit_rows(api.runtime)
    assert len(rows) > 20
    for row in rows:
        assert row.occurred_at.utcoffset() == timedelta(0)
        assert started <= row.occurred_at <= finished
    first = rows[0].seq
    assert first is not None
    assert [r.seq for r in rows] == list(range(first, first + len(rows)))
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    assert [r.occurred_at for r in rows] == sorted(r.occurred_at for r in rows)


async def _events(runtime: Runtime, event_type: str) -> list[OutboxEvent]:
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(
            select(OutboxEvent).where(OutboxEvent.event_type == event_type)
        )
        return list(rows.all())


async def test_every_deletion_path_audits_and_announces(api: Api) -> None:
    """AUD-11: admin delete, self delete and the erasure purge each write an audit row and
    publish a domain event."""
    from gatehouse.privacy.service import purge_erased

    runtime = api.runtime
    scenario = Scenario(api)
    admin = await scenario.logged_in("admin")
    by_admin = await scenario.user()
    by_self = await scenario.logged_in()
    await scenario.send(
        "DELETE",
        f"/api/v1/users/{by_admin.id}",
        on_user("user.delete", by_admin, actor=admin),
        status=204,
        account=admin,
    )
    await scenario.send(
        "DELETE",
        "/api/v1/users/me",
        on_user("user.delete", by_self, actor=by_self),
        status=204,
        account=by_self,
    )
    await scenario.verify()
    deleted = {event.payload["data"]["user_id"] for event in await _events(runtime, "user.deleted")}
    assert deleted == {str(by_admin.id), str(by_self.id)}

    grace = runtime.settings.audit.erasure_grace_days
    erased = await purge_erased(runtime, now=datetime.now(UTC) + timedelta(days=grace + 1))
    assert erased == 2
    rows = [r for r in await audit_rows(runtime) if r.action == "user.erase"]
    assert {r.target_id for r in rows} == {str(by_admin.id), str(by_self.id)}
    assert all(r.outcome == "success" and r.actor_id is None for r in rows)
    announced = {e.payload["data"]["user_id"] for e in await _events(runtime, "user.erased")}
    assert announced == {str(by_admin.id), str(by_self.id)}
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.ok, verdict.problem
