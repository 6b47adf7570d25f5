"""/api/v1/users/me: your own profile, email, password and account."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from gatehouse.users.models import User
from tests.factories import Account, Api, assert_envelope

ME = "/api/v1/users/me"
TOKEN = "/api/v1/auth/token"
NEW_PASSWORD = "violet-Harbour-58-moth"


async def _row(api: Api, account: Account) -> User:
    async with api.runtime.db.session(write=False) as s:
        user = await s.scalar(select(User).where(User.id == account.id))
    assert user is not None
    return user


async def _login_status(api: Api, email: str, password: str) -> int:
    response = await api.client.post(TOKEN, json={"username": email, "password": password})
    return response.status_code


# --- read ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "user", "readonly"])
async def test_everyone_reads_their_own_profile(api: Api, role: str) -> None:
    me = await api.user(role, name="Pat Example")
    response = await api.client.get(ME, headers=me.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(me.id)
    assert (body["email"], body["name"], body["role"]) == (me.email, "Pat Example", role)
    assert "password_hash" not in body
    assert response.headers["etag"]


async def test_me_without_a_token_is_401(api: Api) -> None:
    response = await api.client.get(ME)
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"].startswith("Bearer")


# --- update name --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "user"])
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_admins_and_users_rename_themselves(api: Api, role: str, method: str) -> None:
    me = await api.user(role, name="Old Name")
    response = await api.client.request(method, ME, json={"name": "New Name"}, headers=me.headers)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "New Name"
    assert (await _row(api, me)).name == "New Name"


async def test_readonly_cannot_change_their_profile(api: Api) -> None:
    me = await api.user("readonly", name="Old Name")
    response = await api.client.patch(ME, json={"name": "New Name"}, headers=me.headers)
    assert_envelope(response, 403, "FORBIDDEN")
    assert (await _row(api, me)).name == "Old Name"


@pytest.mark.parametrize("field", ["role", "password_hash", "id", "deleted_at"])
async def test_me_update_refuses_fields_you_may_not_set(api: Api, field: str) -> None:
    me = await api.user("user", name="Old Name")
    response = await api.client.patch(
        ME, json={"name": "New Name", field: "admin"}, headers=me.headers
    )
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert field in error["details"]
    row = await _row(api, me)
    assert (row.name, row.role) == ("Old Name", "user")


async def test_me_update_with_a_stale_etag_is_409(api: Api) -> None:
    me = await api.user("user", name="Old Name")
    etag = (await api.client.get(ME, headers=me.headers)).headers["etag"]
    first = await api.client.patch(
        ME, json={"name": "First"}, headers={**me.headers, "If-Match": etag}
    )
    assert first.status_code == 200
    assert first.headers["etag"] != etag
    second = await api.client.patch(
        ME, json={"name": "Second"}, headers={**me.headers, "If-Match": etag}
    )
    assert_envelope(second, 409, "VERSION_CONFLICT")
    assert (await _row(api, me)).name == "First"


# --- change email -------------------------------------------------------------------------


async def test_changing_email_needs_the_current_password(api: Api) -> None:
    me = await api.user("user", email="before@example.com")
    missing = await api.client.patch(ME, json={"email": "after@example.com"}, headers=me.headers)
    assert_envelope(missing, 403, "REAUTHENTICATION_REQUIRED")
    wrong = await api.client.patch(
        ME,
        json={"email": "after@example.com", "current_password": "not-my-password-1"},
        headers=me.headers,
    )
    assert_envelope(wrong, 403, "INVALID_CURRENT_PASSWORD")
    assert (await _row(api, me)).email == "before@example.com"


async def test_after_an_email_change_the_new_email_logs_in_and_the_old_does_not(api: Api) -> None:
    me = await api.user("user", email="before@example.com")
    response = await api.client.patch(
        ME,
        json={"email": "After@Example.com", "current_password": me.password},
        headers=me.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "after@example.com"
    assert await _login_status(api, "after@example.com", me.password) == 200
    assert await _login_status(api, "before@example.com", me.password) == 401


async def test_changing_email_to_a_taken_one_is_refused(api: Api) -> None:
    await api.create_user(email="taken@example.com")
    me = await api.user("user", email="mine@example.com")
    response = await api.client.patch(
        ME,
        json={"email": "taken@example.com", "current_password": me.password},
        headers=me.headers,
    )
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert error["details"] == {"email": ["Email already exists"]}
    assert (await _row(api, me)).email == "mine@example.com"


# --- change password ------------------------------------------------------------------------


async def test_changing_password_swaps_which_password_works(api: Api) -> None:
    me = await api.user("readonly")
    response = await api.client.post(
        f"{ME}/password",
        json={"current_password": me.password, "new_password": NEW_PASSWORD},
        headers=me.headers,
    )
    assert response.status_code == 204, response.text
    assert await _login_status(api, me.email, me.password) == 401
    assert await _login_status(api, me.email, NEW_PASSWORD) == 200


async def test_changing_password_ends_other_sessions_and_keeps_this_one(api: Api) -> None:
    here = await api.user("user")
    elsewhere = await api.login(
        Account(id=here.id, email=here.email, password=here.password, role=here.role)
    )
    response = await api.client.post(
        f"{ME}/password",
        json={"current_password": here.password, "new_password": NEW_PASSWORD},
        headers=here.headers,
    )
    assert response.status_code == 204
    # The other session is over: its access token and its refresh token.
    assert_envelope(await api.client.get(ME, headers=elsewhere.headers), 401, "UNAUTHORIZED")
    refused = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": elsewhere.refresh_token}
    )
    assert_envelope(refused, 400, "INVALID_GRANT")
    # This session goes on: the access token works and so does its refresh token.
    assert (await api.client.get(ME, headers=here.headers)).status_code == 200
    refreshed = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": here.refresh_token}
    )
    assert refreshed.status_code == 200, refreshed.text


async def test_password_change_with_a_wrong_current_password_changes_nothing(api: Api) -> None:
    me = await api.user("user")
    before = (await _row(api, me)).password_hash
    response = await api.client.post(
        f"{ME}/password",
        json={"current_password": "not-my-password-1", "new_password": NEW_PASSWORD},
        headers=me.headers,
    )
    assert_envelope(response, 403, "INVALID_CURRENT_PASSWORD")
    assert (await _row(api, me)).password_hash == before
    assert await _login_status(api, me.email, me.password) == 200


@pytest.mark.parametrize("weak", ["short", "password1", "qwertyuiop", "x" * 73])
async def test_a_weak_new_password_is_refused(api: Api, weak: str) -> None:
    me = await api.user("user")
    response = await api.client.post(
        f"{ME}/password",
        json={"current_password": me.password, "new_password": weak},
        headers=me.headers,
    )
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert "new_password" in error["details"]
    assert await _login_status(api, me.email, me.password) == 200


# --- delete own account -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["user", "readonly"])
async def test_deleting_your_account_logs_you_out_and_frees_your_email(api: Api, role: str) -> None:
    me = await api.user(role)
    response = await api.client.delete(ME, headers=me.headers)
    assert response.status_code == 204
    assert (await _row(api, me)).deleted_at is not None
    assert_envelope(await api.client.get(ME, headers=me.headers), 401, "UNAUTHORIZED")
    assert await _login_status(api, me.email, me.password) == 401
    again = await api.create_user(email=me.email)
    assert again.id != me.id


async def test_the_last_admin_cannot_delete_their_account(api: Api) -> None:
    admin = await api.user("admin")
    response = await api.client.delete(ME, headers=admin.headers)
    assert_envelope(response, 409, "LAST_ADMIN")
    assert (await _row(api, admin)).deleted_at is None
    assert (await api.client.get(ME, headers=admin.headers)).status_code == 200


async def test_an_admin_who_is_not_the_last_may_delete_their_account(api: Api) -> None:
    first = await api.user("admin")
    second = await api.user("admin")
    assert (await api.client.delete(ME, headers=second.headers)).status_code == 204
    # Now `first` is the last one.
    assert_envelope(await api.client.delete(ME, headers=first.headers), 409, "LAST_ADMIN")


async def test_two_last_admins_deleting_themselves_at_once_leave_one_admin(api: Api) -> None:
    admins = [await api.user("admin") for _ in range(2)]
    responses = await asyncio.gather(
        *(api.client.delete(ME, headers=admin.headers) for admin in admins)
    )
    assert sorted(r.status_code for r in responses) == [204, 409], [r.text for r in responses]
    refused = next(r for r in responses if r.status_code == 409)
    assert_envelope(refused, 409, "LAST_ADMIN")
    live = [a for a in admins if (await _row(api, a)).deleted_at is None]
    assert len(live) == 1
