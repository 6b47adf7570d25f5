"""AC-07 (a role change counts on the next request) and AC-08 (escalation paths)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from gatehouse.users.models import User
from tests.factories import Account, Api, assert_envelope
from tests.security.access_support import (
    NEW_PASSWORD,
    new_email,
    set_role_in_db,
    snapshot,
    user_row,
)


def new_user_body(role: str = "user") -> dict[str, str]:
    return {"email": new_email(), "name": "Some Person", "password": NEW_PASSWORD, "role": role}


async def create_as(api: Api, account: Account) -> int:
    """Try the admin-only create; the status it gets."""
    response = await api.client.post("/api/v1/users", json=new_user_body(), headers=account.headers)
    return response.status_code


async def refreshed(api: Api, account: Account) -> Account:
    response = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert response.status_code == 200, response.text
    account.access_token = response.json()["access_token"]
    account.refresh_token = response.json()["refresh_token"]
    return account


async def live_admins(api: Api) -> int:
    async with api.runtime.db.session(write=False) as s:
        count = await s.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == "admin", User.deleted_at.is_(None))
        )
    return int(count or 0)


async def test_a_demoted_admin_loses_admin_rights_on_the_very_next_request(api: Api) -> None:
    admin = await api.user("admin")
    demoted = await api.user("admin")
    assert await create_as(api, demoted) == 201

    response = await api.client.patch(
        f"/api/v1/users/{demoted.id}", json={"role": "user"}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    # A role change ends the outstanding access tokens (auth_version): 401, never 201.
    stale = await api.client.post("/api/v1/users", json=new_user_body(), headers=demoted.headers)
    assert_envelope(stale, 401, "UNAUTHORIZED")
    # The session itself goes on; the next token carries the new role and gets 403.
    await refreshed(api, demoted)
    assert await create_as(api, demoted) == 403
    assert await create_as(api, await api.login(demoted)) == 403


async def test_a_promoted_user_gets_admin_rights_from_the_next_token(api: Api) -> None:
    admin = await api.user("admin")
    promoted = await api.user("user")
    assert await create_as(api, promoted) == 403
    response = await api.client.put(
        f"/api/v1/users/{promoted.id}",
        json={"name": "Promoted Person", "role": "admin"},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert_envelope(await api.client.get("/api/v1/users/me", headers=promoted.headers), 401)
    await refreshed(api, promoted)
    assert await create_as(api, promoted) == 201


async def test_the_role_comes_from_the_database_not_from_the_token(api: Api) -> None:
    await api.create_user("admin")
    admin = await api.user("admin")
    user = await api.user("user")
    # Behind the API's back, so the tokens stay valid and still claim the old role.
    await set_role_in_db(api, admin.id, "user")
    await set_role_in_db(api, user.id, "admin")
    assert await create_as(api, admin) == 403
    assert await create_as(api, user) == 201


async def test_non_admins_cannot_create_admins(api: Api) -> None:
    before = await snapshot(api)
    register = await api.client.post(
        "/api/v1/auth/register",
        json={"email": new_email(), "name": "Climber", "password": NEW_PASSWORD, "role": "admin"},
    )
    error = assert_envelope(register, 400, "VALIDATION_ERROR")
    assert error["details"] == {"role": ["Unknown field"]}
    assert await snapshot(api) == before

    for role in ("user", "readonly"):
        climber = await api.user(role)
        before = await snapshot(api)
        body = new_user_body("admin")
        response = await api.client.post("/api/v1/users", json=body, headers=climber.headers)
        assert_envelope(response, 403, "FORBIDDEN")
        assert await snapshot(api) == before


@pytest.mark.parametrize("role", ["superadmin", "ADMIN", "Admin", " admin", "", "root", None])
async def test_an_admin_cannot_assign_an_unknown_role(api: Api, role: str | None) -> None:
    admin = await api.user("admin")
    target = await api.user("user")
    before = await snapshot(api)
    attempts = [
        ("POST", "/api/v1/users", new_user_body()),
        ("PUT", f"/api/v1/users/{target.id}", {"name": "Some Person"}),
        ("PATCH", f"/api/v1/users/{target.id}", {}),
    ]
    for method, url, body in attempts:
        response = await api.client.request(
            method, url, json={**body, "role": role}, headers=admin.headers
        )
        error = assert_envelope(response, 400, "VALIDATION_ERROR")
        # The field, or for PATCH's null the body rule that names it.
        assert "role" in str(error["details"]), error
    assert await snapshot(api) == before


async def test_no_one_changes_their_own_role(api: Api) -> None:
    await api.create_user("admin")
    admin = await api.user("admin")
    row = await user_row(api, admin.id)
    for method, body in (
        ("PATCH", {"role": "user"}),
        ("PUT", {"name": "Admin Person", "role": "readonly"}),
    ):
        response = await api.client.request(
            method, f"/api/v1/users/{admin.id}", json=body, headers=admin.headers
        )
        assert_envelope(response, 403, "FORBIDDEN")
    assert await user_row(api, admin.id) == row


async def test_the_last_admin_cannot_delete_themself(api: Api) -> None:
    admin = await api.user("admin")
    await api.user("user")
    row = await user_row(api, admin.id)
    for url in ("/api/v1/users/me", f"/api/v1/users/{admin.id}"):
        response = await api.client.delete(url, headers=admin.headers)
        assert_envelope(response, 409, "LAST_ADMIN")
    assert await user_row(api, admin.id) == row
    assert (await api.client.get("/api/v1/users", headers=admin.headers)).status_code == 200


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(api: Api) -> None:
    outcomes = set()
    for _ in range(5):
        first = await api.user("admin")
        second = await api.user("admin")
        responses = await asyncio.gather(
            api.client.patch(
                f"/api/v1/users/{second.id}", json={"role": "user"}, headers=first.headers
            ),
            api.client.patch(
                f"/api/v1/users/{first.id}", json={"role": "user"}, headers=second.headers
            ),
        )
        statuses = sorted(r.status_code for r in responses)
        # One wins; the loser finds its token ended (401) or is the last admin (409).
        assert statuses in ([200, 401], [200, 409]), [r.text for r in responses]
        assert await live_admins(api) == 1
        outcomes.add(tuple(statuses))
        # Back to no admins for the next round.
        async with api.runtime.db.session() as s:
            for admin in (first, second):
                user = await s.get(User, admin.id)
                assert user is not None
                user.deleted_at = user.created_at
    print(f"\nAC-08: 5 races of mutual demotion, outcomes {sorted(outcomes)}, 1 admin left each")
