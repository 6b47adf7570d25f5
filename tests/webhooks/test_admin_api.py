"""Webhook admin API: create (secret shown once), read, list, update, delete, rotate,
validation and roles; through the API on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from gatehouse.events.schemas import EVENT_TYPES
from tests.factories import Account, Api, assert_envelope
from tests.http_receiver import HttpReceiver
from tests.webhooks.conftest import WEBHOOKS, subscribe

URL = "https://hooks.example.com/gatehouse"


async def test_create_shows_the_secret_once(api: Api, admin: Account) -> None:
    response = await api.client.post(
        WEBHOOKS,
        json={"url": URL, "event_types": ["user.created"], "description": "CRM sync"},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["url"] == URL
    assert created["event_types"] == ["user.created"]
    assert created["description"] == "CRM sync"
    assert created["enabled"] is True
    assert created["disabled_reason"] is None
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) == 32
    assert response.headers["location"] == f"{WEBHOOKS}/{created['id']}"
    assert response.headers["etag"] == '"1"'

    read = await api.client.get(response.headers["location"], headers=admin.headers)
    assert read.status_code == 200
    assert "secret" not in read.json()
    assert read.json() == {k: v for k, v in created.items() if k != "secret"}
    listed = await api.client.get(WEBHOOKS, headers=admin.headers)
    assert listed.status_code == 200
    assert listed.json()["meta"] == {"page": 1, "page_size": 20, "total_count": 1, "total_pages": 1}
    assert ["secret" in item for item in listed.json()["data"]] == [False]
    assert created["secret"] not in listed.text + read.text


async def test_rotate_secret_shows_a_new_one_once(api: Api, admin: Account) -> None:
    created = await subscribe(api, admin, URL)
    rotated = await api.client.post(
        f"{WEBHOOKS}/{created['id']}/rotate-secret", headers=admin.headers
    )
    assert rotated.status_code == 200, rotated.text
    secret = rotated.json()["secret"]
    assert secret.startswith("whsec_")
    assert secret != created["secret"]
    read = await api.client.get(f"{WEBHOOKS}/{created['id']}", headers=admin.headers)
    assert "secret" not in read.json()
    assert read.headers["etag"] == rotated.headers["etag"] == '"2"'


async def test_update_delete_and_if_match(api: Api, admin: Account, receiver: HttpReceiver) -> None:
    created = await subscribe(api, admin, URL, "user.created")
    path = f"{WEBHOOKS}/{created['id']}"
    patched = await api.client.patch(
        path,
        json={"url": receiver.url, "event_types": ["*"], "description": "all"},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["url"] == receiver.url
    assert patched.json()["event_types"] == ["*"]
    assert patched.json()["description"] == "all"
    assert patched.headers["etag"] == '"2"'

    stale = await api.client.patch(
        path, json={"enabled": False}, headers={**admin.headers, "If-Match": '"1"'}
    )
    assert_envelope(stale, 409, "VERSION_CONFLICT")
    disabled = await api.client.patch(path, json={"enabled": False}, headers=admin.headers)
    assert disabled.json()["enabled"] is False
    assert disabled.json()["disabled_reason"] == "Disabled by an admin"
    test = await api.client.post(f"{path}/test", headers=admin.headers)
    assert_envelope(test, 409, "WEBHOOK_DISABLED")
    enabled = await api.client.patch(path, json={"enabled": True}, headers=admin.headers)
    assert enabled.json()["enabled"] is True
    assert enabled.json()["disabled_reason"] is None

    assert_envelope(
        await api.client.delete(path, headers={**admin.headers, "If-Match": '"1"'}),
        409,
        "VERSION_CONFLICT",
    )
    deleted = await api.client.delete(path, headers=admin.headers)
    assert deleted.status_code == 204
    for method, suffix in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/deliveries")):
        gone = await api.client.request(
            method, f"{path}{suffix}", json={"enabled": True}, headers=admin.headers
        )
        assert_envelope(gone, 404, "WEBHOOK_NOT_FOUND")


async def test_invalid_input_answers_400_naming_the_field(api: Api, admin: Account) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"url": URL, "event_types": ["user.created", "user.exploded"]}, "event_types.1"),
        ({"url": URL, "event_types": []}, "event_types"),
        ({"url": URL, "event_types": ["*", "user.created"]}, "event_types"),
        ({"url": URL, "event_types": "user.created"}, "event_types"),
        ({"url": "ftp://hooks.example.com/", "event_types": ["*"]}, "url"),
        ({"url": "hooks.example.com/x", "event_types": ["*"]}, "url"),
        ({"url": "https://user:pw@hooks.example.com/", "event_types": ["*"]}, "url"),
        ({"url": "https://hooks.example.com/a b", "event_types": ["*"]}, "url"),
        ({"url": "https://" + "a" * 2050 + ".com/", "event_types": ["*"]}, "url"),
        ({"url": 42, "event_types": ["*"]}, "url"),
        ({"event_types": ["*"]}, "url"),
        ({"url": URL, "event_types": ["*"], "description": "x" * 256}, "description"),
        ({"url": URL, "event_types": ["*"], "secret": "whsec_mine"}, "secret"),
    ]
    for body, field in cases:
        response = await api.client.post(WEBHOOKS, json=body, headers=admin.headers)
        error = assert_envelope(response, 400, "VALIDATION_ERROR")
        assert field in error["details"], (body, error)
    unknown = await api.client.post(
        WEBHOOKS, json={"url": URL, "event_types": ["user.exploded"]}, headers=admin.headers
    )
    message = assert_envelope(unknown, 400)["details"]["event_types.0"][0]
    assert all(name in message for name in EVENT_TYPES)

    created = await subscribe(api, admin, URL)
    path = f"{WEBHOOKS}/{created['id']}"
    patches: list[tuple[dict[str, Any], str]] = [
        ({}, "body"),
        ({"enabled": None}, "body"),
        ({"event_types": ["nope"]}, "event_types.0"),
        ({"url": "gopher://x/"}, "url"),
    ]
    for body, field in patches:
        error = assert_envelope(await api.client.patch(path, json=body, headers=admin.headers), 400)
        assert field in error["details"], (body, error)
    bad_page = await api.client.get(f"{path}/deliveries?status=lost", headers=admin.headers)
    assert "status" in assert_envelope(bad_page, 400)["details"]
    assert_envelope(await api.client.get(f"{WEBHOOKS}/not-a-uuid", headers=admin.headers), 400)


async def test_roles(api: Api, admin: Account) -> None:
    # Not subscribed to user.created: the accounts made below owe it nothing.
    created = await subscribe(api, admin, URL, "user.deleted")
    path = f"{WEBHOOKS}/{created['id']}"
    readonly = await api.user("readonly")
    user = await api.user("user")
    reads = [("GET", WEBHOOKS), ("GET", path), ("GET", f"{path}/deliveries")]
    writes = [
        ("POST", WEBHOOKS),
        ("PATCH", path),
        ("POST", f"{path}/rotate-secret"),
        ("POST", f"{path}/test"),
        ("DELETE", path),
    ]
    body = {"url": URL, "event_types": ["*"]}
    for method, url in reads + writes:
        anonymous = await api.client.request(method, url, json=body)
        assert_envelope(anonymous, 401, "UNAUTHORIZED")
        plain = await api.client.request(method, url, json=body, headers=user.headers)
        assert_envelope(plain, 403, "FORBIDDEN")
    for method, url in reads:
        response = await api.client.request(method, url, headers=readonly.headers)
        assert response.status_code == 200, (method, url, response.text)
        assert "secret" not in response.text
    for method, url in writes:
        refused = await api.client.request(method, url, json=body, headers=readonly.headers)
        assert_envelope(refused, 403, "FORBIDDEN")
    still = await api.client.get(path, headers=admin.headers)
    assert still.json()["enabled"] is True
    assert still.headers["etag"] == '"1"'


async def test_list_is_paginated_newest_first(api: Api, admin: Account) -> None:
    ids = [(await subscribe(api, admin, f"{URL}/{n}"))["id"] for n in range(3)]
    first = await api.client.get(f"{WEBHOOKS}?page_size=2", headers=admin.headers)
    second = await api.client.get(f"{WEBHOOKS}?page_size=2&page=2", headers=admin.headers)
    assert first.json()["meta"] == {"page": 1, "page_size": 2, "total_count": 3, "total_pages": 2}
    listed = [item["id"] for item in first.json()["data"] + second.json()["data"]]
    assert listed == ids[::-1]
    assert uuid.UUID(listed[0])
