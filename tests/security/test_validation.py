"""VAL-01 (unknown fields), VAL-02 (media types), VAL-03 (type confusion),
VAL-04 (NUL bytes) and VAL-05 (oversized input).

VAL-10 (schemathesis negative/positive data on every operation) lives in the
schemathesis suite, tests/api/test_schemathesis.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from gatehouse.auth.models import Session
from tests.factories import Account, Api, assert_envelope
from tests.security.access_support import (
    NEW_PASSWORD,
    OTHER,
    World,
    body_operations,
    build_app,
    fill_path,
    new_email,
    session_id,
    snapshot,
    valid_body,
)

TOKEN = ("POST", "/api/v1/auth/token")


async def admin_world(api: Api) -> World:
    """An admin (allowed everything) aiming at another user; a spare admin exists."""
    await api.create_user("admin")
    return World(actor=await api.user("admin"), other=await api.user("user"))


def register_body(**changes: Any) -> dict[str, Any]:
    return {"email": new_email(), "name": "Val Person", "password": NEW_PASSWORD, **changes}


async def test_unknown_json_properties_are_refused_on_every_write_endpoint(api: Api) -> None:
    operations = sorted(body_operations(build_app(api)))
    world = await admin_world(api)
    assert world.actor is not None
    before = await snapshot(api)
    for method, path in operations:
        body = valid_body(method, path, world, OTHER)
        assert body is not None
        response = await api.client.request(
            method,
            fill_path(path, world, OTHER),
            json={**body, "unexpected_field": "x"},
            headers=world.actor.headers,
        )
        error = assert_envelope(response, 400, "VALIDATION_ERROR")
        assert error["details"] == {"unexpected_field": ["Unknown field"]}, (method, path)
    assert await snapshot(api) == before
    assert len(operations) >= 10
    print(f"\nVAL-01: {len(operations)} write endpoints, {len(operations)} refused the extra field")


NOT_JSON = [
    "text/plain",
    None,
    "multipart/form-data; boundary=xyz",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/jsonp",
]


async def test_bodies_that_are_not_json_get_415_never_500(api: Api) -> None:
    operations = sorted(body_operations(build_app(api)))
    world = await admin_world(api)
    assert world.actor is not None
    before = await snapshot(api)
    sent = 0
    for method, path in operations:
        raw = json.dumps(valid_body(method, path, world, OTHER)).encode()
        for media in NOT_JSON:
            if (method, path) == TOKEN and media == "application/x-www-form-urlencoded":
                continue  # the token endpoint takes the OAuth2 form too (below)
            headers = dict(world.actor.headers)
            if media is not None:
                headers["Content-Type"] = media
            response = await api.client.request(
                method, fill_path(path, world, OTHER), content=raw, headers=headers
            )
            assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")
            sent += 1
    assert await snapshot(api) == before
    form = await api.client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": world.other.email, "password": "wrong-one"},
    )
    assert_envelope(form, 401, "INVALID_CREDENTIALS")
    print(f"\nVAL-02: {sent} non-JSON bodies on {len(operations)} endpoints, {sent} answered 415")


CONFUSED = [["admin"], 1, {"$ne": None}, True, 2**64, -(2**63) - 1, 1.5]


async def test_type_confusion_in_bodies_is_refused(api: Api) -> None:
    world = await admin_world(api)
    admin, other = world.actor, world.other
    assert admin is not None
    before = await snapshot(api)
    cases: list[tuple[str, str, dict[str, Any], Account | None]] = []
    for value in CONFUSED:  # where a string belongs
        cases += [
            ("POST", "/api/v1/auth/register", register_body(name=value), None),
            ("POST", "/api/v1/auth/register", register_body(email=value), None),
            ("POST", "/api/v1/auth/register", register_body(password=value), None),
            ("POST", "/api/v1/auth/token", {"username": value, "password": "x"}, None),
            ("POST", "/api/v1/auth/token", {"username": admin.email, "password": value}, None),
            ("POST", "/api/v1/auth/refresh", {"refresh_token": value}, None),
            ("PATCH", "/api/v1/users/me", {"name": value}, admin),
        ]
    for value in [*CONFUSED, "true", None]:  # where a role belongs
        cases += [
            ("PATCH", f"/api/v1/users/{other.id}", {"role": value}, admin),
            ("PUT", f"/api/v1/users/{other.id}", {"name": "Val Person", "role": value}, admin),
            ("POST", "/api/v1/users", register_body(role=value), admin),
        ]
    for value in ["true", "false", 1, 0, None, ["true"], {"$ne": None}]:  # a boolean
        cases.append(("POST", "/api/v1/auth/logout", {"all": value}, admin))
    for method, url, body, account in cases:
        headers = account.headers if account else {}
        response = await api.client.request(method, url, json=body, headers=headers)
        assert_envelope(response, 400, "VALIDATION_ERROR")
    assert await snapshot(api) == before
    print(f"\nVAL-03: {len(cases)} type-confused bodies, {len(cases)} answered 400")


@pytest.mark.parametrize(
    "params",
    [
        {"page": str(2**64)},
        {"page_size": str(2**63)},
        {"page": "-1"},
        {"page_size": "0"},
        {"page": "1e3"},
        {"page": "true"},
        {"page_size": "1.5"},
        {"page": "0x10"},
        {"include_deleted": "maybe"},
        {"role": "1"},
        {"role": '{"$ne": null}'},
        {"order": "1"},
    ],
)
async def test_type_confusion_in_list_parameters_is_refused(
    api: Api, params: dict[str, str]
) -> None:
    admin = await api.user("admin")
    response = await api.client.get("/api/v1/users", params=params, headers=admin.headers)
    assert_envelope(response, 400, "VALIDATION_ERROR")


async def test_a_nul_byte_anywhere_is_refused_or_dropped_never_a_500(api: Api) -> None:
    world = await admin_world(api)
    admin, other = world.actor, world.other
    assert admin is not None
    nul = "a\x00b"
    before = await snapshot(api)
    refused = [
        ("POST", "/api/v1/auth/register", register_body(name=nul), None),
        ("POST", "/api/v1/auth/register", register_body(email=f"{nul}@example.com"), None),
        ("POST", "/api/v1/auth/register", register_body(password=f"Glacier{nul}-7731"), None),
        ("POST", "/api/v1/auth/token", {"username": f"{nul}@example.com", "password": "x"}, None),
        ("POST", "/api/v1/auth/token", {"username": admin.email, "password": nul}, None),
        ("POST", "/api/v1/auth/refresh", {"refresh_token": nul}, None),
        ("PUT", "/api/v1/users/me", {"name": nul}, admin),
        ("PATCH", "/api/v1/users/me", {"email": f"{nul}@example.com"}, admin),
        (
            "POST",
            "/api/v1/users/me/password",
            {"current_password": nul, "new_password": nul},
            admin,
        ),
        ("POST", "/api/v1/users", register_body(name=nul), admin),
        ("PATCH", f"/api/v1/users/{other.id}", {"name": nul}, admin),
        ("GET", "/api/v1/users?search=a%00b", None, admin),
        ("GET", "/api/v1/users?sort_by=%00", None, admin),
        ("GET", "/api/v1/users/%00", None, admin),
    ]
    for method, url, body, account in refused:
        headers = account.headers if account else {}
        response = await api.client.request(method, url, json=body, headers=headers)
        assert_envelope(response, 400, "VALIDATION_ERROR")
    form = await api.client.post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": nul, "password": nul}
    )
    assert_envelope(form, 400, "VALIDATION_ERROR")
    assert await snapshot(api) == before

    # In headers: a bad credential is a 401, a bad version a 409, a bad request id replaced.
    bearer = await api.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {nul}"})
    assert_envelope(bearer, 401, "UNAUTHORIZED")
    stale = await api.client.patch(
        "/api/v1/users/me", json={"name": "Z Person"}, headers={**admin.headers, "If-Match": nul}
    )
    assert_envelope(stale, 409, "VERSION_CONFLICT")
    request_id = await api.client.get("/health", headers={"X-Request-ID": nul})
    assert "\x00" not in request_id.headers["x-request-id"]
    # The user agent is stored for the session list: the NUL is dropped, the login works.
    await api.login(other, **{"User-Agent": f"Agent/{nul}"})
    sid = session_id(other)
    async with api.runtime.db.session(write=False) as s:
        agent = await s.scalar(select(Session.user_agent).where(Session.id == sid))
    assert agent == "Agent/ab"
    print(f"\nVAL-04: {len(refused) + 1} NUL inputs refused 400, 4 NUL headers handled, 0 x 500")


async def ten_megabytes() -> AsyncIterator[bytes]:
    chunk = b"x" * (1024 * 1024)
    yield b'{"name": "'
    for _ in range(10):
        yield chunk
    yield b'"}'


async def test_oversized_bodies_get_413(api: Api) -> None:
    user = await api.user("user")
    big = json.dumps(register_body(name="x" * (10 * 1024 * 1024))).encode()
    declared = await api.client.post(
        "/api/v1/auth/register", content=big, headers={"Content-Type": "application/json"}
    )
    assert_envelope(declared, 413, "PAYLOAD_TOO_LARGE")
    streamed = await api.client.patch(
        "/api/v1/users/me",
        content=ten_megabytes(),
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert_envelope(streamed, 413, "PAYLOAD_TOO_LARGE")
    token = await api.client.post(
        "/api/v1/auth/token", content=big, headers={"Content-Type": "application/json"}
    )
    assert_envelope(token, 413, "PAYLOAD_TOO_LARGE")


async def test_oversized_fields_and_pages_are_refused_not_served(api: Api) -> None:
    admin = await api.user("admin")
    long = "x" * 10_000
    for body in (
        register_body(name=long),
        register_body(email=f"{long}@example.com"),
        register_body(password=long),
    ):
        response = await api.client.post("/api/v1/auth/register", json=body)
        assert_envelope(response, 400, "VALIDATION_ERROR")
    response = await api.client.patch(
        "/api/v1/users/me", json={"name": long}, headers=admin.headers
    )
    assert_envelope(response, 400, "VALIDATION_ERROR")
    for params in (
        {"page_size": "1000000"},
        {"page_size": "101"},
        {"page": str(10**9)},
        {"search": long},
    ):
        response = await api.client.get("/api/v1/users", params=params, headers=admin.headers)
        assert_envelope(response, 400, "VALIDATION_ERROR")
    widest = await api.client.get(
        "/api/v1/users", params={"page_size": "100"}, headers=admin.headers
    )
    assert widest.json()["meta"]["page_size"] == 100
    deepest = await api.client.get(
        "/api/v1/users", params={"page": "100000"}, headers=admin.headers
    )
    assert deepest.status_code == 200
    assert deepest.json()["data"] == []
