"""The HTTP error contract: every bad input gets the envelope and leaves no trace,
the request id is honoured or replaced, and the logs say one line per request and
never a secret."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from gatehouse.users.models import User
from tests.factories import Account, Api, assert_envelope
from tests.logs import LogCapture

USERS = "/api/v1/users"
# A fixed id, not a random one: parallel workers (pytest-xdist) must collect the same ids.
SOME_USER = f"{USERS}/3f1c2b9e-8d7a-4c1e-9a51-2b0d5e6f7a80"
MAX_BODY = 4096


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"max_body_bytes": MAX_BODY}


async def user_count(api: Api) -> int:
    async with api.runtime.db.session(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


def new_user(**changes: Any) -> dict[str, Any]:
    body = {"email": f"new-{uuid.uuid4().hex[:8]}@example.com", "name": "New Person"}
    return {**body, "password": "a-Sturdy-passphrase", **changes}


@pytest.fixture
async def admin(api: Api) -> Account:
    return await api.user("admin")


# --- bad bodies: the envelope, and no user row -------------------------------------------

BAD_BODIES = {
    "malformed JSON": (b'{"email": "x@example.com", "name": ', "body"),
    "a JSON array": (b"[]", "body"),
    "email as a number": (json.dumps(new_user(email=12345)).encode(), "email"),
    "name as a list": (json.dumps(new_user(name=["New"])).encode(), "name"),
    "password as true": (json.dumps(new_user(password=True)).encode(), "password"),
    "role not a role": (json.dumps(new_user(role="superuser")).encode(), "role"),
    "unknown field": (json.dumps(new_user(is_admin=True)).encode(), "is_admin"),
    "password_hash smuggled": (
        json.dumps(new_user(password_hash="$2b$04$x")).encode(),
        "password_hash",
    ),
    "email without @": (json.dumps(new_user(email="not-an-email")).encode(), "email"),
    "email with CRLF": (json.dumps(new_user(email="a@example.com\r\nBcc: b")).encode(), "email"),
    "short password": (json.dumps(new_user(password="Ab1-x")).encode(), "password"),
    "73-byte password": (json.dumps(new_user(password="p" * 73)).encode(), "password"),
    "73 bytes in 25 characters": (
        json.dumps(new_user(password="€" * 24 + "x")).encode(),
        "password",
    ),
    "empty name": (json.dumps(new_user(name="   ")).encode(), "name"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES), ids=list(BAD_BODIES))
async def test_bad_create_body_is_enveloped_and_creates_no_user(
    api: Api, admin: Account, case: str
) -> None:
    body, field = BAD_BODIES[case]
    before = await user_count(api)
    response = await api.client.post(
        USERS, content=body, headers={**admin.headers, "Content-Type": "application/json"}
    )
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    if field is not None:
        assert field in error["details"], error
    assert await user_count(api) == before


@pytest.mark.parametrize("case", ["malformed JSON", "unknown field", "short password"])
async def test_bad_registration_creates_no_user(api: Api, case: str) -> None:
    body, _ = BAD_BODIES[case]
    response = await api.client.post(
        "/api/v1/auth/register", content=body, headers={"Content-Type": "application/json"}
    )
    assert_envelope(response, 400, "VALIDATION_ERROR")
    assert await user_count(api) == 0


async def test_validation_details_never_echo_the_input(api: Api, admin: Account) -> None:
    secret = "Sup3r-secret-but-in-the-wrong-place"
    response = await api.client.post(
        USERS, json=new_user(password=[secret], email=secret), headers=admin.headers
    )
    assert_envelope(response, 400, "VALIDATION_ERROR")
    assert secret not in response.text


# --- oversized bodies ----------------------------------------------------------------------


async def test_body_over_the_limit_with_content_length_is_413(api: Api, admin: Account) -> None:
    body = json.dumps(new_user(name="n" * MAX_BODY)).encode()
    response = await api.client.post(
        USERS, content=body, headers={**admin.headers, "Content-Type": "application/json"}
    )
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
    assert await user_count(api) == 1


async def test_streamed_body_over_the_limit_is_413(api: Api, admin: Account) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "big@example.com", "name": "'
        for _ in range(8):
            yield b"n" * 1024
        yield b'", "password": "a-Sturdy-passphrase"}'

    response = await api.client.post(
        USERS, content=chunks(), headers={**admin.headers, "Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
    assert await user_count(api) == 1


async def test_body_just_under_the_limit_is_read(api: Api, admin: Account) -> None:
    body = json.dumps(new_user(name="n" * 255, pad="x" * (MAX_BODY - 400))).encode()
    assert len(body) <= MAX_BODY
    response = await api.client.post(
        USERS, content=body, headers={**admin.headers, "Content-Type": "application/json"}
    )
    # Read and judged on its content (the unknown field), not refused for its size.
    assert assert_envelope(response, 400, "VALIDATION_ERROR")["details"] == {
        "pad": ["Unknown field"]
    }


# --- query and path ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": 0}, "page"),
        ({"page_size": 101}, "page_size"),
        ({"sort_by": "password_hash"}, "sort_by"),
        ({"page": "9" * 40}, "page"),
    ],
)
async def test_bad_list_parameters_are_400(
    api: Api, admin: Account, params: dict[str, Any], field: str
) -> None:
    response = await api.client.get(USERS, params=params, headers=admin.headers)
    assert field in assert_envelope(response, 400, "VALIDATION_ERROR")["details"]


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1", "' OR 1=1 --", "%00"])
async def test_malformed_uuid_in_the_path_is_400(api: Api, admin: Account, bad_id: str) -> None:
    response = await api.client.get(f"{USERS}/{bad_id}", headers=admin.headers)
    assert "user_id" in assert_envelope(response, 400, "VALIDATION_ERROR")["details"]


async def test_unknown_route_is_404(api: Api, admin: Account) -> None:
    assert_envelope(await api.client.get("/api/v1/nothing-here"), 404, "NOT_FOUND")
    response = await api.client.get("/api/v2/users", headers=admin.headers)
    assert_envelope(response, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", USERS, {"GET", "POST"}),
        ("DELETE", USERS, {"GET", "POST"}),
        ("TRACE", USERS, {"GET", "POST"}),
        ("GET", "/api/v1/auth/token", {"POST"}),
        ("POST", SOME_USER, {"GET", "PUT", "PATCH", "DELETE"}),
    ],
)
async def test_wrong_method_is_405_with_allow(
    api: Api, admin: Account, method: str, path: str, allow: set[str]
) -> None:
    response = await api.client.request(method, path, headers=admin.headers)
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert allow <= allowed <= allow | {"HEAD"}, allowed


# --- request id --------------------------------------------------------------------------------


async def test_sane_request_id_is_echoed(api: Api) -> None:
    response = await api.client.get("/api/v1/nothing-here", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert assert_envelope(response, 404)["request_id"] == "abc-123"


@pytest.mark.parametrize("bad", ["bad id\r\n", "x" * 300, "a;b", "", "<script>"])
async def test_insane_request_id_is_replaced(api: Api, bad: str) -> None:
    response = await api.client.get("/api/v1/nothing-here", headers={"X-Request-ID": bad})
    echoed = response.headers["x-request-id"]
    assert echoed != bad
    uuid.UUID(echoed)
    assert assert_envelope(response, 404)["request_id"] == echoed


async def test_every_response_gets_a_fresh_request_id(api: Api) -> None:
    ids = {(await api.client.get("/health")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


# --- logs -----------------------------------------------------------------------------------


async def test_one_request_line_per_request_with_its_fields(
    api: Api, json_logs: LogCapture
) -> None:
    admin = await api.user("admin")
    json_logs.clear()
    calls = [
        ("GET", "/health", None, 200, "/health"),
        ("GET", f"{USERS}/{admin.id}", admin.headers, 200, "/api/v1/users/{user_id}"),
        ("GET", f"{USERS}/not-a-uuid", admin.headers, 400, "/api/v1/users/{user_id}"),
        ("GET", USERS, None, 401, "/api/v1/users"),
        ("GET", "/nowhere", None, 404, "unmatched"),
    ]
    for method, path, headers, status, route in calls:
        request_id = f"req-{uuid.uuid4().hex[:12]}"
        response = await api.client.request(
            method, path, headers={**(headers or {}), "X-Request-ID": request_id}
        )
        assert response.status_code == status
        lines = [line for line in json_logs.take() if line["event"] == "http.request"]
        assert len(lines) == 1, lines
        line = lines[0]
        assert line["request_id"] == request_id
        assert line["method"] == method
        assert line["route"] == route
        assert line["status"] == status
        assert isinstance(line["duration_ms"], int | float)
        assert line["duration_ms"] >= 0
        assert line["user_id"] == (str(admin.id) if headers else None)
        assert line["timestamp"].endswith("Z")


async def test_no_secret_reaches_the_logs(api: Api, json_logs: LogCapture) -> None:
    account = await api.create_user("user", password="Old-pass-phrase-42")
    await api.login(account)
    refreshed = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert refreshed.status_code == 200
    pair = refreshed.json()
    new_headers = {"Authorization": f"Bearer {pair['access_token']}"}
    changed = await api.client.post(
        f"{USERS}/me/password",
        json={"current_password": account.password, "new_password": "New-pass-phrase-43"},
        headers=new_headers,
    )
    assert changed.status_code == 204, changed.text
    failed = await api.client.post(
        "/api/v1/auth/token", json={"username": account.email, "password": "Wrong-pass-44"}
    )
    assert failed.status_code == 401
    lines = json_logs.take()
    assert any(line["event"] == "http.request" for line in lines)
    async with api.runtime.db.session(write=False) as session:
        stored_hash = await session.scalar(select(User.password_hash).where(User.id == account.id))
    secrets = {
        account.password,
        "New-pass-phrase-43",
        "Wrong-pass-44",
        account.access_token,
        account.refresh_token,
        pair["access_token"],
        pair["refresh_token"],
        str(stored_hash),
        str(stored_hash)[7:29],  # the salt alone
    }
    text = "\n".join(json.dumps(line) for line in lines)
    for secret in secrets:
        assert secret not in text
    # Each token's signature part, too (a header.payload prefix is not secret).
    for token in (account.access_token, pair["access_token"]):
        assert token.rsplit(".", 1)[1] not in text
