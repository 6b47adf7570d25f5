"""Sessions: where you are logged in, ending one or all of them; admins on others' sessions."""

from __future__ import annotations

import uuid
from typing import Any

import jwt

from tests.factories import Account, Api, assert_envelope

ME = "/api/v1/users/me"
MY_SESSIONS = "/api/v1/users/me/sessions"
REFRESH = "/api/v1/auth/refresh"


def _sid(account: Account) -> str:
    claims: dict[str, Any] = jwt.decode(account.access_token, options={"verify_signature": False})
    return str(claims["sid"])


async def _device(api: Api, account: Account, agent: str) -> Account:
    """A second login of the same account, as another device would make it."""
    other = Account(
        id=account.id, email=account.email, password=account.password, role=account.role
    )
    return await api.login(other, **{"User-Agent": agent})


async def _works(api: Api, account: Account) -> bool:
    """Does this login still work, by its access token and by its refresh token?"""
    access = (await api.client.get(ME, headers=account.headers)).status_code
    if access != 200:
        assert access == 401
        refresh = await api.client.post(REFRESH, json={"refresh_token": account.refresh_token})
        assert_envelope(refresh, 400, "INVALID_GRANT")
        return False
    return True


async def test_two_logins_are_two_sessions_and_one_is_current(api: Api) -> None:
    laptop = await api.login(await api.create_user(), **{"User-Agent": "Laptop/1.0"})
    phone = await _device(api, laptop, "Phone/2.0")
    response = await api.client.get(MY_SESSIONS, headers=laptop.headers)
    assert response.status_code == 200, response.text
    sessions = response.json()
    assert len(sessions) == 2
    by_id = {s["id"]: s for s in sessions}
    assert set(by_id) == {_sid(laptop), _sid(phone)}
    assert by_id[_sid(laptop)]["current"] is True
    assert by_id[_sid(phone)]["current"] is False
    assert by_id[_sid(laptop)]["user_agent"] == "Laptop/1.0"
    assert by_id[_sid(phone)]["user_agent"] == "Phone/2.0"
    for item in sessions:
        assert item["ip"] == "127.0.0.1"
        assert {"created_at", "last_used_at", "expires_at"} <= set(item)
        assert "token_hash" not in item
        assert "refresh_token" not in item
    # Seen from the phone, the phone is the current one.
    from_phone = (await api.client.get(MY_SESSIONS, headers=phone.headers)).json()
    assert [s["id"] for s in from_phone if s["current"]] == [_sid(phone)]


async def test_ending_another_of_your_sessions_logs_that_device_out(api: Api) -> None:
    laptop = await api.user("user")
    phone = await _device(api, laptop, "Phone/2.0")
    response = await api.client.delete(f"{MY_SESSIONS}/{_sid(phone)}", headers=laptop.headers)
    assert response.status_code == 204
    assert not await _works(api, phone)
    assert await _works(api, laptop)
    listed = (await api.client.get(MY_SESSIONS, headers=laptop.headers)).json()
    assert [s["id"] for s in listed] == [_sid(laptop)]


async def test_ending_all_other_sessions_keeps_only_this_one(api: Api) -> None:
    laptop = await api.user("readonly")
    others = [await _device(api, laptop, f"Device/{n}") for n in range(3)]
    response = await api.client.delete(MY_SESSIONS, headers=laptop.headers)
    assert response.status_code == 204
    for other in others:
        assert not await _works(api, other)
    assert await _works(api, laptop)
    listed = (await api.client.get(MY_SESSIONS, headers=laptop.headers)).json()
    assert [(s["id"], s["current"]) for s in listed] == [(_sid(laptop), True)]


async def test_ending_your_current_session_by_id_logs_you_out(api: Api) -> None:
    me = await api.user("user")
    response = await api.client.delete(f"{MY_SESSIONS}/{_sid(me)}", headers=me.headers)
    assert response.status_code == 204
    assert not await _works(api, me)


async def test_an_unknown_or_someone_elses_session_is_not_found(api: Api) -> None:
    me = await api.user("user")
    stranger = await api.user("user")
    unknown = uuid.uuid4()
    response = await api.client.delete(f"{MY_SESSIONS}/{unknown}", headers=me.headers)
    error = assert_envelope(response, 404, "SESSION_NOT_FOUND")
    assert str(unknown) in error["message"]

    theirs = await api.client.delete(f"{MY_SESSIONS}/{_sid(stranger)}", headers=me.headers)
    assert_envelope(theirs, 404, "SESSION_NOT_FOUND")
    assert await _works(api, stranger)


async def test_an_ended_session_cannot_be_ended_again(api: Api) -> None:
    me = await api.user("user")
    phone = await _device(api, me, "Phone/2.0")
    path = f"{MY_SESSIONS}/{_sid(phone)}"
    assert (await api.client.delete(path, headers=me.headers)).status_code == 204
    assert_envelope(await api.client.delete(path, headers=me.headers), 404, "SESSION_NOT_FOUND")


async def test_a_logged_out_session_is_no_longer_listed(api: Api) -> None:
    me = await api.user("user")
    phone = await _device(api, me, "Phone/2.0")
    assert (await api.client.post("/api/v1/auth/logout", headers=phone.headers)).status_code == 204
    listed = (await api.client.get(MY_SESSIONS, headers=me.headers)).json()
    assert [s["id"] for s in listed] == [_sid(me)]


# --- admins and readonly on other users' sessions ---------------------------------------------


async def test_admin_lists_a_users_sessions(api: Api) -> None:
    admin = await api.user("admin")
    target = await api.login(await api.create_user(), **{"User-Agent": "Laptop/1.0"})
    phone = await _device(api, target, "Phone/2.0")
    response = await api.client.get(f"/api/v1/users/{target.id}/sessions", headers=admin.headers)
    assert response.status_code == 200, response.text
    sessions = response.json()
    assert {s["id"] for s in sessions} == {_sid(target), _sid(phone)}
    assert {s["user_agent"] for s in sessions} == {"Laptop/1.0", "Phone/2.0"}
    assert all(s["current"] is False for s in sessions)  # none of them is the admin's


async def test_admin_ends_all_of_a_users_sessions(api: Api) -> None:
    admin = await api.user("admin")
    target = await api.user("user")
    phone = await _device(api, target, "Phone/2.0")
    bystander = await api.user("user")
    path = f"/api/v1/users/{target.id}/sessions"
    assert (await api.client.delete(path, headers=admin.headers)).status_code == 204
    assert not await _works(api, target)
    assert not await _works(api, phone)
    assert await _works(api, bystander)
    assert await _works(api, admin)
    assert (await api.client.get(path, headers=admin.headers)).json() == []
    # The account itself is fine: logging in again opens a new session.
    again = await api.login(target)
    assert await _works(api, again)


async def test_admin_ends_one_session_of_a_user(api: Api) -> None:
    admin = await api.user("admin")
    target = await api.user("user")
    phone = await _device(api, target, "Phone/2.0")
    path = f"/api/v1/users/{target.id}/sessions/{_sid(phone)}"
    assert (await api.client.delete(path, headers=admin.headers)).status_code == 204
    assert not await _works(api, phone)
    assert await _works(api, target)

    other = await api.user("user")
    mismatched = f"/api/v1/users/{target.id}/sessions/{_sid(other)}"
    assert_envelope(
        await api.client.delete(mismatched, headers=admin.headers), 404, "SESSION_NOT_FOUND"
    )
    assert await _works(api, other)


async def test_readonly_may_look_at_sessions_but_not_end_them(api: Api) -> None:
    reader = await api.user("readonly")
    target = await api.user("user")
    path = f"/api/v1/users/{target.id}/sessions"
    listed = await api.client.get(path, headers=reader.headers)
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()] == [_sid(target)]
    assert_envelope(await api.client.delete(path, headers=reader.headers), 403, "FORBIDDEN")
    one = f"{path}/{_sid(target)}"
    assert_envelope(await api.client.delete(one, headers=reader.headers), 403, "FORBIDDEN")
    assert await _works(api, target)


async def test_a_plain_user_cannot_see_or_end_another_users_sessions(api: Api) -> None:
    me = await api.user("user")
    target = await api.user("user")
    path = f"/api/v1/users/{target.id}/sessions"
    assert_envelope(await api.client.get(path, headers=me.headers), 403, "FORBIDDEN")
    assert_envelope(await api.client.delete(path, headers=me.headers), 403, "FORBIDDEN")
    assert await _works(api, target)


async def test_sessions_of_an_unknown_user_are_404(api: Api) -> None:
    admin = await api.user("admin")
    path = f"/api/v1/users/{uuid.uuid4()}/sessions"
    assert_envelope(await api.client.get(path, headers=admin.headers), 404, "USER_NOT_FOUND")
    assert_envelope(await api.client.delete(path, headers=admin.headers), 404, "USER_NOT_FOUND")
