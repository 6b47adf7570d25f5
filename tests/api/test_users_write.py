"""Users API, write side (docs/api.md): create, PUT, PATCH, soft delete, ETag / If-Match."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.types import Message, Receive, Scope, Send

from gatehouse.app import create_app
from gatehouse.users.models import User
from tests.factories import PASSWORD, Api, assert_envelope

USERS = "/api/v1/users"
NEW = {"email": "newuser@example.com", "name": "Jane Doe", "password": "plum-Kettle-42-river"}


async def _rows(api: Api, email: str) -> list[User]:
    async with api.runtime.db.session(write=False) as s:
        return list((await s.scalars(select(User).where(User.email == email))).all())


# --- create ------------------------------------------------------------------------------


async def test_create_answers_201_with_location_and_the_new_user(api: Api) -> None:
    admin = await api.user("admin")
    response = await api.client.post(USERS, json=NEW, headers=admin.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert {"id", "email", "name", "role", "created_at"} <= set(body)
    assert "password" not in body
    assert "password_hash" not in body
    assert body["email"] == "newuser@example.com"
    assert body["name"] == "Jane Doe"
    assert body["role"] == "user"  # the default
    assert response.headers["location"] == f"{USERS}/{body['id']}"
    fetched = await api.client.get(response.headers["location"], headers=admin.headers)
    assert fetched.status_code == 200
    assert fetched.json()["email"] == "newuser@example.com"
    (row,) = await _rows(api, "newuser@example.com")
    assert row.password_hash.startswith("$2")
    assert NEW["password"] not in row.password_hash


async def test_created_user_can_log_in(api: Api) -> None:
    admin = await api.user("admin")
    await api.client.post(USERS, json={**NEW, "role": "readonly"}, headers=admin.headers)
    login = await api.client.post(
        "/api/v1/auth/token", json={"username": NEW["email"], "password": NEW["password"]}
    )
    assert login.status_code == 200, login.text


@pytest.mark.parametrize(
    "spelling", ["newuser@example.com", "NewUser@Example.COM", " newuser@example.com "]
)
async def test_duplicate_email_is_refused_in_any_spelling(api: Api, spelling: str) -> None:
    admin = await api.user("admin")
    assert (await api.client.post(USERS, json=NEW, headers=admin.headers)).status_code == 201
    again = await api.client.post(USERS, json={**NEW, "email": spelling}, headers=admin.headers)
    error = assert_envelope(again, 400, "VALIDATION_ERROR")
    assert error["message"] == "Invalid input"
    assert error["details"] == {"email": ["Email already exists"]}
    assert len(await _rows(api, "newuser@example.com")) == 1


async def test_concurrent_creates_of_one_email_make_exactly_one_user(api: Api) -> None:
    admin = await api.user("admin")
    responses = await asyncio.gather(
        *(
            api.client.post(USERS, json={**NEW, "name": f"Racer {n}"}, headers=admin.headers)
            for n in range(10)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [400] * 9, [r.text for r in responses]
    for response in responses:
        if response.status_code == 400:
            error = assert_envelope(response, 400, "VALIDATION_ERROR")
            assert error["details"] == {"email": ["Email already exists"]}
    assert len(await _rows(api, "newuser@example.com")) == 1


async def test_a_201_is_sent_only_once_the_user_is_committed(api: Api) -> None:
    """A client that got 201 can rely on the user existing for every other client."""
    admin = await api.user("admin")
    app = create_app(runtime=api.runtime)
    stored_when_answered: list[int] = []

    async def watched(scope: Scope, receive: Receive, send: Send) -> None:
        async def spy(message: Message) -> None:
            if message["type"] == "http.response.start" and scope["method"] == "POST":
                async with api.runtime.db.session(write=False) as s:
                    count = await s.scalar(
                        select(func.count()).select_from(User).where(User.email == NEW["email"])
                    )
                stored_when_answered.append(int(count or 0))
            await send(message)

        await app(scope, receive, spy)

    transport = httpx.ASGITransport(app=watched, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(USERS, json=NEW, headers=admin.headers)
    assert response.status_code == 201, response.text
    assert stored_when_answered == [1]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"password": "short"}, "password"),
        ({"password": "password123"}, "password"),
        ({"password": "newuser-secret-9"}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"name": ""}, "name"),
        ({"role": "superuser"}, "role"),
        ({"is_superuser": True}, "is_superuser"),
        ({"password_hash": "$2b$04$x"}, "password_hash"),
    ],
)
async def test_create_refuses_invalid_input(api: Api, change: dict[str, Any], field: str) -> None:
    admin = await api.user("admin")
    response = await api.client.post(USERS, json={**NEW, **change}, headers=admin.headers)
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert field in error["details"], error
    assert await _rows(api, "newuser@example.com") == []


@pytest.mark.parametrize("role", ["user", "readonly"])
async def test_only_admins_create_users(api: Api, role: str) -> None:
    caller = await api.user(role)
    response = await api.client.post(USERS, json=NEW, headers=caller.headers)
    assert_envelope(response, 403, "FORBIDDEN")
    assert await _rows(api, "newuser@example.com") == []


# --- PUT / PATCH ---------------------------------------------------------------------------


async def test_put_replaces_name_and_role_and_optionally_email(api: Api) -> None:
    admin = await api.user("admin")
    target = await api.create_user(name="Jane Doe")
    before = (await api.client.get(f"{USERS}/{target.id}", headers=admin.headers)).json()
    response = await api.client.put(
        f"{USERS}/{target.id}",
        json={"name": "Jane Smith", "role": "admin", "email": "Jane.Smith@Example.com"},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(target.id)
    assert body["name"] == "Jane Smith"
    assert body["role"] == "admin"
    assert body["email"] == "jane.smith@example.com"
    assert datetime.fromisoformat(body["updated_at"]) > datetime.fromisoformat(before["updated_at"])
    (row,) = await _rows(api, "jane.smith@example.com")
    assert (row.name, row.role) == ("Jane Smith", "admin")


@pytest.mark.parametrize(
    ("body", "field"),
    [({"role": "user"}, "name"), ({"name": "Jane"}, "role"), ({"name": "J", "role": "x"}, "role")],
)
async def test_put_requires_name_and_role(api: Api, body: dict[str, Any], field: str) -> None:
    admin = await api.user("admin")
    target = await api.create_user(name="Jane Doe")
    response = await api.client.put(f"{USERS}/{target.id}", json=body, headers=admin.headers)
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert field in error["details"], error


async def test_patch_changes_only_what_it_names(api: Api) -> None:
    admin = await api.user("admin")
    target = await api.create_user("readonly", name="Jane Doe")
    response = await api.client.patch(
        f"{USERS}/{target.id}", json={"name": "Jane Patched"}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["role"], body["email"]) == ("Jane Patched", "readonly", target.email)


@pytest.mark.parametrize(
    ("body", "word"),
    [({"name": None}, "name"), ({"role": None}, "role"), ({"email": None}, "email"), ({}, "")],
)
async def test_patch_refuses_nulls_and_empty_bodies(
    api: Api, body: dict[str, Any], word: str
) -> None:
    admin = await api.user("admin")
    target = await api.create_user(name="Jane Doe")
    response = await api.client.patch(f"{USERS}/{target.id}", json=body, headers=admin.headers)
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert word in repr(error["details"])
    (row,) = await _rows(api, target.email)
    assert (row.name, row.role, row.version) == ("Jane Doe", "user", 1)


async def test_changing_email_to_a_taken_one_is_refused(api: Api) -> None:
    admin = await api.user("admin")
    taken = await api.create_user(email="taken@example.com")
    target = await api.create_user()
    response = await api.client.patch(
        f"{USERS}/{target.id}", json={"email": "TAKEN@example.com"}, headers=admin.headers
    )
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert error["details"] == {"email": ["Email already exists"]}
    assert [r.id for r in await _rows(api, "taken@example.com")] == [taken.id]


async def test_writes_by_non_admins_are_forbidden_and_change_nothing(api: Api) -> None:
    target = await api.create_user(name="Jane Doe")
    for role in ("user", "readonly"):
        caller = await api.user(role)
        path = f"{USERS}/{target.id}"
        put = await api.client.put(
            path, json={"name": "X", "role": "admin"}, headers=caller.headers
        )
        assert_envelope(put, 403, "FORBIDDEN")
        patch = await api.client.patch(path, json={"role": "admin"}, headers=caller.headers)
        assert_envelope(patch, 403, "FORBIDDEN")
        assert_envelope(await api.client.delete(path, headers=caller.headers), 403, "FORBIDDEN")
    (row,) = await _rows(api, target.email)
    assert (row.name, row.role, row.deleted_at) == ("Jane Doe", "user", None)


async def test_writes_on_an_unknown_user_are_404(api: Api) -> None:
    admin = await api.user("admin")
    path = f"{USERS}/00000000-0000-4000-8000-000000000000"
    put = await api.client.put(path, json={"name": "X", "role": "user"}, headers=admin.headers)
    assert_envelope(put, 404, "USER_NOT_FOUND")
    patch = await api.client.patch(path, json={"name": "X"}, headers=admin.headers)
    assert_envelope(patch, 404, "USER_NOT_FOUND")
    assert_envelope(await api.client.delete(path, headers=admin.headers), 404, "USER_NOT_FOUND")


async def test_an_admin_cannot_change_their_own_role(api: Api) -> None:
    admin = await api.user("admin")
    await api.user("admin")  # not the last admin: the refusal is about "own role"
    response = await api.client.patch(
        f"{USERS}/{admin.id}", json={"role": "user"}, headers=admin.headers
    )
    assert_envelope(response, 403, "FORBIDDEN")
    (row,) = await _rows(api, admin.email)
    assert row.role == "admin"


# --- delete ------------------------------------------------------------------------------


async def test_delete_is_soft_and_ends_everything_for_that_user(api: Api) -> None:
    admin = await api.user("admin")
    target = await api.user("user", email="leaving@example.com")
    response = await api.client.delete(f"{USERS}/{target.id}", headers=admin.headers)
    assert response.status_code == 204
    assert response.content == b""

    (row,) = await _rows(api, "leaving@example.com")
    assert row.deleted_at is not None  # the row stays; it is marked deleted

    assert_envelope(
        await api.client.get(f"{USERS}/{target.id}", headers=admin.headers), 404, "USER_NOT_FOUND"
    )
    listed = (await api.client.get(USERS, headers=admin.headers)).json()
    assert str(target.id) not in {item["id"] for item in listed["data"]}

    login = await api.client.post(
        "/api/v1/auth/token", json={"username": target.email, "password": target.password}
    )
    assert_envelope(login, 401, "INVALID_CREDENTIALS")
    me = await api.client.get("/api/v1/users/me", headers=target.headers)
    assert_envelope(me, 401, "UNAUTHORIZED")
    refresh = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": target.refresh_token}
    )
    assert_envelope(refresh, 400, "INVALID_GRANT")

    again = await api.client.delete(f"{USERS}/{target.id}", headers=admin.headers)
    assert_envelope(again, 404, "USER_NOT_FOUND")


async def test_a_deleted_users_email_is_free_for_a_new_user(api: Api) -> None:
    admin = await api.user("admin")
    old = await api.create_user(email="reuse@example.com")
    await api.client.delete(f"{USERS}/{old.id}", headers=admin.headers)
    new_password = "orchid-Lantern-77-bay"
    created = await api.client.post(
        USERS,
        json={"email": "Reuse@Example.com", "name": "Second Owner", "password": new_password},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["id"] != str(old.id)
    assert len(await _rows(api, "reuse@example.com")) == 2  # one deleted, one live
    token = "/api/v1/auth/token"
    ok = await api.client.post(token, json={"username": old.email, "password": new_password})
    assert ok.status_code == 200
    stale = await api.client.post(token, json={"username": old.email, "password": PASSWORD})
    assert_envelope(stale, 401, "INVALID_CREDENTIALS")


async def test_the_last_admin_cannot_delete_themself(api: Api) -> None:
    admin = await api.user("admin")
    response = await api.client.delete(f"{USERS}/{admin.id}", headers=admin.headers)
    assert_envelope(response, 409, "LAST_ADMIN")
    (row,) = await _rows(api, admin.email)
    assert row.deleted_at is None


# --- ETag / If-Match -----------------------------------------------------------------------


async def _etag(api: Api, path: str, headers: dict[str, str]) -> str:
    response = await api.client.get(path, headers=headers)
    assert response.status_code == 200
    return response.headers["etag"]


@pytest.mark.parametrize("method", ["put", "patch"])
async def test_writes_with_the_current_etag_succeed_and_return_a_new_one(
    api: Api, method: str
) -> None:
    admin = await api.user("admin")
    target = await api.create_user(name="Jane Doe")
    path = f"{USERS}/{target.id}"
    first = await _etag(api, path, admin.headers)
    response = await api.client.request(
        method.upper(),
        path,
        json={"name": "Jane Two", "role": "user"},
        headers={**admin.headers, "If-Match": first},
    )
    assert response.status_code == 200, response.text
    second = response.headers["etag"]
    assert second != first
    assert await _etag(api, path, admin.headers) == second


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_a_stale_etag_is_409_and_changes_nothing(api: Api, method: str) -> None:
    admin = await api.user("admin")
    target = await api.create_user(name="Jane Doe")
    path = f"{USERS}/{target.id}"
    stale = await _etag(api, path, admin.headers)
    moved = await api.client.patch(path, json={"name": "Jane Moved"}, headers=admin.headers)
    assert moved.status_code == 200
    current = moved.headers["etag"]

    body = None if method == "DELETE" else {"name": "Jane Overwrite", "role": "readonly"}
    response = await api.client.request(
        method, path, json=body, headers={**admin.headers, "If-Match": stale}
    )
    assert_envelope(response, 409, "VERSION_CONFLICT")
    (row,) = await _rows(api, target.email)
    assert (row.name, row.role, row.deleted_at) == ("Jane Moved", "user", None)
    assert await _etag(api, path, admin.headers) == current


async def test_if_match_star_and_no_if_match_both_write(api: Api) -> None:
    admin = await api.user("admin")
    target = await api.create_user(name="Jane Doe")
    path = f"{USERS}/{target.id}"
    star = await api.client.patch(
        path, json={"name": "Star"}, headers={**admin.headers, "If-Match": "*"}
    )
    assert star.status_code == 200
    bare = await api.client.patch(path, json={"name": "Bare"}, headers=admin.headers)
    assert bare.status_code == 200  # last write wins when the client sends no If-Match
    assert bare.json()["name"] == "Bare"
    delete = await api.client.delete(path, headers={**admin.headers, "If-Match": "*"})
    assert delete.status_code == 204


async def test_delete_with_the_current_etag_succeeds(api: Api) -> None:
    admin = await api.user("admin")
    target = await api.create_user()
    path = f"{USERS}/{target.id}"
    current = await _etag(api, path, admin.headers)
    response = await api.client.delete(path, headers={**admin.headers, "If-Match": current})
    assert response.status_code == 204


async def test_racing_writers_with_one_etag_only_one_wins(api: Api) -> None:
    admin = await api.user("admin")
    target = await api.create_user(name="Jane Doe")
    path = f"{USERS}/{target.id}"
    etag = await _etag(api, path, admin.headers)
    responses = await asyncio.gather(
        *(
            api.client.patch(
                path, json={"name": f"Writer {n}"}, headers={**admin.headers, "If-Match": etag}
            )
            for n in range(5)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409, 409, 409, 409], [r.text for r in responses]
    (winner,) = [r for r in responses if r.status_code == 200]
    (row,) = await _rows(api, target.email)
    assert row.name == winner.json()["name"]
    assert row.version == 2
