"""The clients admin API: register (the secret shown once), read, list, edit, disable,
enable, delete, rotate; roles; events; through the API on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy import select

from gatehouse.clients.models import OAuthClient
from gatehouse.events.schemas import all_schemas
from tests.clients.conftest import CALLBACK, CLIENTS, outbox_events, register, spa, web_app
from tests.factories import Account, Api, assert_envelope
from tests.logs import LogCapture

CLIENT_ID = re.compile(r"^gh_[A-Za-z0-9_-]{22}$")
SECRET = re.compile(r"^ghcs_[A-Za-z0-9_-]{43}$")


async def stored(api: Api, client_pk: str) -> dict[str, Any]:
    """The client's row as stored, every column."""
    table = OAuthClient.__table__
    async with api.runtime.db.session(write=False) as session:
        row = (await session.execute(select(table).where(table.c.id == uuid.UUID(client_pk)))).one()
    return dict(row._mapping)


async def test_register_shows_the_secret_once(
    api: Api, admin: Account, json_logs: LogCapture
) -> None:
    response = await api.client.post(CLIENTS, json=web_app(), headers=admin.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created.pop("client_secret")
    assert SECRET.match(secret)
    assert CLIENT_ID.match(created["client_id"])
    assert created | {"id": None, "client_id": None, "created_at": None, "updated_at": None} == {
        **web_app(),
        "id": None,
        "client_id": None,
        "trusted": False,
        "logo_url": None,
        "enabled": True,
        "secret_rotated_at": created["created_at"],
        "created_at": None,
        "updated_at": None,
        "created_by": str(admin.id),
    }
    assert response.headers["location"] == f"{CLIENTS}/{created['id']}"
    assert response.headers["etag"] == '"1"'

    read = await api.client.get(response.headers["location"], headers=admin.headers)
    assert read.status_code == 200
    assert read.json() == created
    listed = await api.client.get(CLIENTS, headers=admin.headers)
    assert listed.json()["data"] == [created]
    assert secret not in read.text + listed.text
    # Only the hash is stored; the secret is in no log line.
    row = await stored(api, created["id"])
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(row)
    assert secret not in json_logs.text()


async def test_a_public_client_has_no_secret_to_show_or_rotate(api: Api, admin: Account) -> None:
    created = await register(api, admin, spa())
    assert created["client_secret"] is None
    assert created["secret_rotated_at"] is None
    assert (await stored(api, created["id"]))["secret_hash"] is None
    rotated = await api.client.post(
        f"{CLIENTS}/{created['id']}/rotate-secret", headers=admin.headers
    )
    assert_envelope(rotated, 409, "CLIENT_IS_PUBLIC")


async def test_rotate_secret_shows_a_new_one_once(
    api: Api, admin: Account, json_logs: LogCapture
) -> None:
    created = await register(api, admin, web_app())
    path = f"{CLIENTS}/{created['id']}"
    rotated = await api.client.post(f"{path}/rotate-secret", headers=admin.headers)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert set(body) == {"client_id", "client_secret", "secret_rotated_at"}
    assert body["client_id"] == created["client_id"]
    assert SECRET.match(body["client_secret"])
    assert body["client_secret"] != created["client_secret"]
    assert rotated.headers["etag"] == '"2"'
    read = await api.client.get(path, headers=admin.headers)
    assert read.json()["secret_rotated_at"] == body["secret_rotated_at"]
    assert body["client_secret"] not in read.text
    assert body["client_secret"] not in json_logs.text()
    stale = await api.client.post(
        f"{path}/rotate-secret", headers={**admin.headers, "If-Match": '"1"'}
    )
    assert_envelope(stale, 409, "VERSION_CONFLICT")


async def test_list_pages_newest_first(api: Api, admin: Account) -> None:
    ids = [(await register(api, admin, spa(name=f"App {n}")))["id"] for n in range(3)]
    first = await api.client.get(f"{CLIENTS}?page_size=2", headers=admin.headers)
    assert first.json()["meta"] == {"page": 1, "page_size": 2, "total_count": 3, "total_pages": 2}
    second = await api.client.get(f"{CLIENTS}?page_size=2&page=2", headers=admin.headers)
    names = [c["name"] for c in first.json()["data"] + second.json()["data"]]
    assert names == ["App 2", "App 1", "App 0"]
    assert {c["id"] for c in first.json()["data"] + second.json()["data"]} == set(ids)
    too_big = await api.client.get(f"{CLIENTS}?page_size=101", headers=admin.headers)
    assert "page_size" in assert_envelope(too_big, 400, "VALIDATION_ERROR")["details"]


async def test_edit_disable_enable_delete_and_if_match(api: Api, admin: Account) -> None:
    created = await register(api, admin, web_app(logo_url="https://app.example.com/logo.png"))
    path = f"{CLIENTS}/{created['id']}"
    patched = await api.client.patch(
        path,
        json={"name": "Acme CRM 2", "trusted": True, "logo_url": None, "scopes": ["openid"]},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json() | {"updated_at": None} == {
        **{k: v for k, v in created.items() if k != "client_secret"},
        "name": "Acme CRM 2",
        "trusted": True,
        "logo_url": None,
        "scopes": ["openid"],
        "updated_at": None,
    }
    assert patched.headers["etag"] == '"2"'
    # The type is fixed for life.
    kind = await api.client.patch(path, json={"type": "public"}, headers=admin.headers)
    assert assert_envelope(kind, 400, "VALIDATION_ERROR")["details"] == {"type": ["Unknown field"]}
    stale = await api.client.patch(
        path, json={"name": "Late"}, headers={**admin.headers, "If-Match": '"1"'}
    )
    assert_envelope(stale, 409, "VERSION_CONFLICT")

    disabled = await api.client.post(f"{path}/disable", headers=admin.headers)
    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False
    again = await api.client.post(f"{path}/disable", headers=admin.headers)
    assert again.json()["enabled"] is False
    assert again.headers["etag"] == disabled.headers["etag"] == '"3"'
    enabled = await api.client.post(f"{path}/enable", headers=admin.headers)
    assert enabled.json()["enabled"] is True

    assert_envelope(
        await api.client.delete(path, headers={**admin.headers, "If-Match": '"1"'}),
        409,
        "VERSION_CONFLICT",
    )
    deleted = await api.client.delete(path, headers=admin.headers)
    assert deleted.status_code == 204
    for method, suffix in (
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/disable"),
        ("POST", "/enable"),
        ("POST", "/rotate-secret"),
    ):
        body = {"name": "X"} if method == "PATCH" else None
        gone = await api.client.request(method, f"{path}{suffix}", json=body, headers=admin.headers)
        assert_envelope(gone, 404, "CLIENT_NOT_FOUND")
    assert_envelope(await api.client.get(f"{CLIENTS}/not-a-uuid", headers=admin.headers), 400)

    events = await outbox_events(api.runtime)
    assert [(e["event_type"], e["data"].get("changed")) for e in events] == [
        ("client.created", None),
        ("client.updated", ["name", "scopes", "trusted", "logo_url"]),
        ("client.updated", ["enabled"]),
        ("client.updated", ["enabled"]),
        ("client.deleted", None),
    ]
    assert [e["data"]["version"] for e in events] == [1, 2, 3, 4, 4]
    assert {e["data"]["id"] for e in events} == {created["id"]}
    assert "logo_url" not in events[1]["data"]  # removed: left out, named in `changed`
    schemas = all_schemas()
    for event in events:
        validator = Draft202012Validator(
            schemas[event["event_type"]], format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        validator.validate(event)
        assert created["client_secret"] not in str(event)


async def test_roles(api: Api, admin: Account) -> None:
    created = await register(api, admin, web_app())
    path = f"{CLIENTS}/{created['id']}"
    readonly = await api.user("readonly")
    user = await api.user("user")
    reads = [("GET", CLIENTS, None), ("GET", path, None)]
    writes = [
        ("POST", CLIENTS, web_app()),
        ("PATCH", path, {"name": "Taken Over"}),
        ("POST", f"{path}/disable", None),
        ("POST", f"{path}/enable", None),
        ("POST", f"{path}/rotate-secret", None),
        ("DELETE", path, None),
    ]
    for method, url, body in reads:
        response = await api.client.request(method, url, json=body, headers=readonly.headers)
        assert response.status_code == 200, (method, url)
        assert created["client_secret"] not in response.text
    for method, url, body in writes:
        refused = await api.client.request(method, url, json=body, headers=readonly.headers)
        assert_envelope(refused, 403, "FORBIDDEN")
    for method, url, body in reads + writes:
        assert_envelope(
            await api.client.request(method, url, json=body, headers=user.headers), 403, "FORBIDDEN"
        )
        assert_envelope(await api.client.request(method, url, json=body), 401, "UNAUTHORIZED")
    # Nothing changed: the one event is the registration's.
    assert [e["event_type"] for e in await outbox_events(api.runtime)] == ["client.created"]
    assert (await api.client.get(path, headers=admin.headers)).headers["etag"] == '"1"'


async def test_loopback_redirect_uris_take_any_port(api: Api, admin: Account) -> None:
    """Loopback redirect URIs (RFC 8252) on every spelling and any port."""
    uris = [
        "http://127.0.0.1/cb",
        "http://127.0.0.1:49152/cb",
        "http://[::1]:8080/cb",
        "http://localhost:3000/cb?x=1",
        CALLBACK,
    ]
    created = await register(api, admin, spa(redirect_uris=uris))
    assert created["redirect_uris"] == uris
