"""GET /api/v1/overview: what the admin portal's first screen shows, checked against the
requests the test made (sign-ups, logins, refusals at travelled times) and the tables.

Times are travelled (time_machine, not ticking), so every row lands in a known bucket
whatever the hour the suite runs at.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import func, select, text

from gatehouse.events.models import OutboxEvent
from gatehouse.overview.repository import OverviewRepository
from gatehouse.users.models import Role
from tests.factories import PASSWORD, Account, Api, assert_envelope

URL = "/api/v1/overview"
# A Tuesday afternoon; the hourly window starts at 15:00 the day before.
NOW = datetime(2026, 3, 10, 14, 20, tzinfo=UTC)
ZERO = {"signups": 0, "signups_failed": 0, "logins": 0, "logins_failed": 0}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The test webhook's receiver is on loopback (nothing is sent: no runner).
    return {"webhook_allow_private_targets": True}


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def counts(**given: int) -> dict[str, int]:
    return {**ZERO, **given}


def bucket(series: dict[str, Any], start: datetime) -> dict[str, int]:
    stamp = start.isoformat().replace("+00:00", "Z")
    found = [b for b in series["buckets"] if b["start"] == stamp]
    assert len(found) == 1, (stamp, [b["start"] for b in series["buckets"]])
    return {k: v for k, v in found[0].items() if k != "start"}


def signed_up(email: str) -> Account:
    """An account registered through the API, to log in with."""
    return Account(uuid.uuid4(), email, PASSWORD, Role.user)


async def sign_up(api: Api, email: str) -> None:
    body = {"email": email, "name": "Sam Signup", "password": PASSWORD}
    response = await api.client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 202, response.text


async def fail_login(api: Api, email: str) -> None:
    body = {"username": email, "password": "not the password at all"}
    response = await api.client.post("/api/v1/auth/token", json=body)
    assert_envelope(response, 401, "INVALID_CREDENTIALS")


async def overview(api: Api, admin: Account) -> dict[str, Any]:
    response = await api.client.get(URL, headers=admin.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_overview_counts_what_happened_in_each_hour_and_day(api: Api, clock: Any) -> None:
    clock.move_to(NOW - timedelta(days=40))  # before both windows
    await sign_up(api, "old@example.com")
    await api.login(signed_up("old@example.com"))

    clock.move_to(NOW - timedelta(days=3, hours=5))  # 2026-03-07 09:20: the daily series only
    await sign_up(api, "sat@example.com")
    await sign_up(api, "sun@example.com")
    await fail_login(api, "sat@example.com")

    clock.move_to(NOW - timedelta(hours=24))  # 14:20 yesterday: before the first hour
    await api.login(signed_up("sat@example.com"))
    clock.move_to(NOW - timedelta(hours=23))  # 15:20 yesterday: the first hour
    await api.login(signed_up("sun@example.com"))

    clock.move_to(NOW - timedelta(minutes=10))  # this hour
    await sign_up(api, "now@example.com")
    await sign_up(api, "now@example.com")  # taken: the same 202, a failed sign-up
    fresh = await api.login(signed_up("now@example.com"))
    await fail_login(api, "now@example.com")
    await fail_login(api, "nobody@example.com")

    clock.move_to(NOW)
    admin = await api.user(Role.admin)
    logout = await api.client.post("/api/v1/auth/logout", headers=fresh.headers)
    assert logout.status_code == 204
    body = await overview(api, admin)

    assert body["generated_at"] == "2026-03-10T14:20:00Z"
    hourly, daily = body["last_24_hours"], body["last_30_days"]
    assert hourly["since"] == "2026-03-09T15:00:00Z"
    assert hourly["until"] == daily["until"] == "2026-03-10T14:20:00Z"
    assert daily["since"] == "2026-02-09T00:00:00Z"
    assert [b["start"] for b in hourly["buckets"]] == [
        (datetime(2026, 3, 9, 15, tzinfo=UTC) + timedelta(hours=n)).isoformat()[:19] + "Z"
        for n in range(24)
    ]
    assert [b["start"] for b in daily["buckets"]] == [
        f"{(datetime(2026, 2, 9) + timedelta(days=n)).date()}T00:00:00Z" for n in range(30)
    ]

    this_hour = counts(signups=1, signups_failed=1, logins=2, logins_failed=2)  # + the admin's
    assert bucket(hourly, NOW.replace(minute=0)) == this_hour
    assert bucket(hourly, datetime(2026, 3, 9, 15, tzinfo=UTC)) == counts(logins=1)
    assert hourly["totals"] == counts(signups=1, signups_failed=1, logins=3, logins_failed=2)
    quiet = [b for b in hourly["buckets"] if b["start"][11:13] not in ("14", "15")]
    assert all(b == {"start": b["start"], **ZERO} for b in quiet)

    assert bucket(daily, datetime(2026, 3, 10, tzinfo=UTC)) == this_hour
    assert bucket(daily, datetime(2026, 3, 9, tzinfo=UTC)) == counts(logins=2)
    assert bucket(daily, datetime(2026, 3, 7, tzinfo=UTC)) == counts(signups=2, logins_failed=1)
    assert daily["totals"] == counts(signups=3, signups_failed=1, logins=4, logins_failed=3)
    assert sum(b["logins"] for b in daily["buckets"]) == daily["totals"]["logins"]

    # Sessions that still refresh: yesterday's two and the admin's; the 40-day-old one
    # expired, the one logged out ended.
    assert body["sessions"] == {"active": 3}
    assert body["users"] == {
        "total": 5,
        "by_role": {"admin": 1, "user": 4, "readonly": 0},
    }


async def test_users_by_role_leaves_deleted_accounts_out(api: Api) -> None:
    admin = await api.user(Role.admin)
    await api.create_user(Role.readonly)
    await api.create_user(Role.readonly)
    gone = await api.create_user(Role.user)
    response = await api.client.delete(f"/api/v1/users/{gone.id}", headers=admin.headers)
    assert response.status_code == 204
    users = (await overview(api, admin))["users"]
    assert users == {"total": 3, "by_role": {"admin": 1, "user": 0, "readonly": 2}}


async def test_the_backlog_of_the_outbox_and_of_webhook_deliveries(api: Api, clock: Any) -> None:
    clock.move_to(NOW - timedelta(minutes=5))
    admin = await api.user(Role.admin)  # its user.created waits: no runner dispatches it
    hook = await api.client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["*"]},
        headers=admin.headers,
    )
    assert hook.status_code == 201, hook.text
    clock.move_to(NOW - timedelta(minutes=2))
    sent = await api.client.post(
        f"/api/v1/webhooks/{hook.json()['id']}/test", headers=admin.headers
    )
    assert sent.status_code == 202, sent.text
    clock.move_to(NOW)
    await api.create_user(Role.user)

    body = await overview(api, admin)
    async with api.runtime.db.session(write=False) as session:
        waiting = await session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None))
        )
    assert (waiting or 0) >= 2  # the admin's user.created, at least
    assert body["outbox"] == {
        "pending_dispatch": waiting,
        "oldest_undispatched_seconds": 300.0,
        # Without a broker nothing is ever published: no such backlog.
        "pending_publish": None,
        "oldest_unpublished_seconds": None,
    }
    assert body["webhooks"] == {"pending_deliveries": 1, "oldest_pending_seconds": 120.0}


async def test_an_empty_gatehouse_answers_zeros_in_every_bucket(api: Api) -> None:
    admin = await api.create_user(Role.admin)
    # Nobody has signed up or logged in yet.
    async with api.runtime.unit_of_work() as uow:
        empty = await OverviewRepository(uow.session).activity_by_hour(NOW - timedelta(days=400))
    assert empty == []
    admin = await api.login(admin)
    body = await overview(api, admin)
    for series, size in ((body["last_24_hours"], 24), (body["last_30_days"], 30)):
        assert len(series["buckets"]) == size
        assert series["totals"] == counts(logins=1)
    assert body["sessions"] == {"active": 1}
    assert body["outbox"]["oldest_undispatched_seconds"] is not None
    assert body["webhooks"] == {"pending_deliveries": 0, "oldest_pending_seconds": None}


async def test_hours_are_utc_hours_whatever_the_connection_zone(api: Api, clock: Any) -> None:
    clock.move_to(NOW - timedelta(minutes=10))
    await fail_login(api, "nobody@example.com")
    async with api.runtime.db.session(write=False) as session:
        if session.get_bind().dialect.name == "postgresql":
            # Half an hour off UTC: a truncation in this zone would say 13:30.
            await session.execute(text("SET LOCAL TIME ZONE 'Asia/Kolkata'"))
        rows = await OverviewRepository(session).activity_by_hour(NOW - timedelta(days=1))
    assert [(r.hour, r.action, r.outcome, r.count) for r in rows] == [
        (NOW.replace(minute=0), "auth.login", "failure", 1)
    ]


@pytest.mark.parametrize("role", [Role.user, Role.readonly])
async def test_only_an_admin_may_see_it(api: Api, role: Role) -> None:
    account = await api.user(role)
    refused = await api.client.get(URL, headers=account.headers)
    assert_envelope(refused, 403, "FORBIDDEN")
    anonymous = await api.client.get(URL)
    assert_envelope(anonymous, 401, "UNAUTHORIZED")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
