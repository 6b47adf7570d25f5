"""Inactive users (docs/privacy.md: manual purge after 2 years of inactivity): listed
exactly when they pass the threshold, purged only on request, the last admin kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from gatehouse.audit.service import verify_chain
from gatehouse.privacy.service import list_inactive, purge_inactive
from gatehouse.users.models import Role
from tests.factories import Api
from tests.privacy.support import (
    audit_rows,
    outbox_types,
    person,
    scan,
    set_times,
    user_row,
)

DAYS = 730  # the default inactive_user_days
T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


async def test_listing_boundaries(api: Api, backend: str) -> None:
    runtime = api.runtime
    never = await person(api, login=False)  # judged by its creation
    seen = await person(api)  # judged by its last login
    admin = await person(api, Role.admin)
    recent = await person(api)
    await set_times(runtime, never.id, created_at=T0, last_login_at=None)
    await set_times(runtime, seen.id, created_at=T0 - timedelta(days=900), last_login_at=T0)
    await set_times(runtime, admin.id, created_at=T0 - timedelta(days=5), last_login_at=T0)
    await set_times(runtime, recent.id, last_login_at=T0 + timedelta(days=400))
    boundary = T0 + timedelta(days=DAYS)

    with time_machine.travel(boundary, tick=False):
        assert await list_inactive(runtime) == []
    with time_machine.travel(boundary + timedelta(seconds=1), tick=False):
        rows = await list_inactive(runtime)
        shorter = await list_inactive(runtime, days=300)

    assert {r.id for r in rows} == {never.id, seen.id, admin.id}
    by_id = {r.id: r for r in rows}
    assert by_id[never.id].last_login_at is None
    assert by_id[never.id].last_seen_at == T0
    assert by_id[seen.id].last_seen_at == T0
    assert [r.id for r in rows if r.is_admin] == [admin.id]
    assert {r.id for r in shorter} == {never.id, seen.id, admin.id, recent.id}
    # Listing changes nothing, and is audited.
    assert (await user_row(runtime, never.id)).deleted_at is None
    listed = await audit_rows(runtime, action="user.inactive_list")
    assert [r.details for r in listed] == [
        {"days": DAYS, "count": 0, "admins": 0},
        {"days": DAYS, "count": 3, "admins": 1},
        {"days": 300, "count": 4, "admins": 1},
    ]
    assert {r.actor_id for r in listed} == {None}


async def test_purge_erases_the_inactive_but_keeps_the_last_admin(api: Api, backend: str) -> None:
    runtime = api.runtime
    idle = await person(api)
    first_admin = await person(api, Role.admin)
    last_admin = await person(api, Role.admin)
    active = await person(api)
    await set_times(runtime, idle.id, last_login_at=T0)
    await set_times(runtime, first_admin.id, created_at=T0 - timedelta(days=2), last_login_at=T0)
    await set_times(runtime, last_admin.id, created_at=T0 - timedelta(days=1), last_login_at=T0)
    await set_times(runtime, active.id, last_login_at=T0 + timedelta(days=DAYS))

    with time_machine.travel(T0 + timedelta(days=DAYS, seconds=1), tick=False):
        result = await purge_inactive(runtime, DAYS)

    assert result.erased == 2
    assert [(s.id, s.email) for s in result.skipped] == [(last_admin.id, last_admin.email)]
    assert "last active admin" in result.skipped[0].reason
    for gone in (idle, first_admin):
        row = await user_row(runtime, gone.id)
        assert row.deleted_at is not None
        assert row.email == f"erased-{gone.id}@erased.invalid"
        assert (await outbox_types(runtime, gone.id))[-2:] == ["user.deleted", "user.erased"]
    assert await scan(runtime, [idle.email, idle.name, first_admin.email, first_admin.name]) == []
    for kept in (last_admin, active):
        row = await user_row(runtime, kept.id)
        assert (row.deleted_at, row.email) == (None, kept.email)

    deletes = await audit_rows(runtime, action="user.delete", actor_role="system")
    assert {(r.target_id, r.outcome, r.reason) for r in deletes} == {
        (str(idle.id), "success", "inactive"),
        (str(first_admin.id), "success", "inactive"),
        (str(last_admin.id), "failure", "last_admin"),
    }
    erases = await audit_rows(runtime, action="user.erase")
    assert {r.target_id for r in erases} == {str(idle.id), str(first_admin.id)}
    assert all(r.details == {"reason": "inactive", "inactive_days": DAYS} for r in erases)
    [summary] = await audit_rows(runtime, action="user.inactive_purge")
    assert summary.details == {"days": DAYS, "erased": 2, "skipped": 1}
    assert (await verify_chain(runtime.db, runtime.audit_key)).ok

    # Once more: nothing left to purge but the last admin, again kept.
    with time_machine.travel(T0 + timedelta(days=DAYS, seconds=2), tick=False):
        again = await purge_inactive(runtime, DAYS)
    assert (again.erased, [s.id for s in again.skipped]) == (0, [last_admin.id])
