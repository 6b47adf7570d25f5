"""AUTH-01, AUTH-02, AUTH-15…AUTH-20: logging in without leaking, and changing credentials.

AUTH-03…AUTH-08 (lockout and throttling) belong to a later issue.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
from sqlalchemy import delete, func, select

from gatehouse.app import create_app
from gatehouse.auth.passwords import password_problems
from gatehouse.config import AuthSettings, ConfigError, load_settings
from gatehouse.runtime import Runtime
from gatehouse.users.bootstrap import first_admin
from gatehouse.users.models import User
from tests.conftest import make_settings
from tests.factories import Account, Api, assert_envelope
from tests.logs import capture_json_logs

TOKEN = "/api/v1/auth/token"
ME = "/api/v1/users/me"
WRONG = "Wrong-Guess-Password-9"


async def stored_hash(api: Api, account: Account) -> str:
    async with api.runtime.db.session(write=False) as s:
        value = await s.scalar(select(User.password_hash).where(User.id == account.id))
    assert value is not None
    return value


async def token(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(TOKEN, json={"username": username, "password": password})


# AUTH-01


def comparable(response: httpx.Response) -> tuple[int, dict[str, Any], list[str]]:
    error = dict(response.json()["error"])
    del error["request_id"], error["timestamp"]
    return response.status_code, error, sorted(response.headers.keys())


@pytest.mark.parametrize("encoding", ["json", "form"])
async def test_unknown_user_and_wrong_password_answer_the_same(api: Api, encoding: str) -> None:
    account = await api.create_user()

    async def attempt(username: str) -> httpx.Response:
        if encoding == "json":
            return await token(api.client, username, WRONG)
        form = {"grant_type": "password", "username": username, "password": WRONG}
        return await api.client.post(TOKEN, data=form)

    wrong_password = await attempt(account.email)
    unknown_user = await attempt("nobody-at-all@example.com")
    not_an_email = await attempt("nobody")
    assert_envelope(wrong_password, 401, "INVALID_CREDENTIALS")
    assert comparable(unknown_user) == comparable(wrong_password)
    assert comparable(not_an_email) == comparable(wrong_password)


# AUTH-02


@pytest.fixture
def bcrypt_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts every bcrypt check and hash the service makes (deterministic timing proxy)."""
    calls: Counter[str] = Counter()

    def counting(name: str, real: Callable[[bytes, bytes], Any]) -> Callable[[bytes, bytes], Any]:
        def wrapper(password: bytes, other: bytes) -> Any:
            calls[name] += 1
            return real(password, other)

        return wrapper

    monkeypatch.setattr(bcrypt, "checkpw", counting("checkpw", bcrypt.checkpw))
    monkeypatch.setattr(bcrypt, "hashpw", counting("hashpw", bcrypt.hashpw))
    return calls


async def test_every_login_costs_exactly_one_bcrypt_check(
    api: Api, bcrypt_calls: Counter[str]
) -> None:
    account = await api.create_user()
    cases = {
        "unknown user": ("nobody-at-all@example.com", WRONG, 401),
        "not an email": ("nobody", WRONG, 401),
        "wrong password": (account.email, WRONG, 401),
        "over 72 bytes, known user": (account.email, "x" * 100, 401),
        "over 72 bytes, unknown user": ("nobody-at-all@example.com", "x" * 100, 401),
        "right password": (account.email, account.password, 200),
    }
    seen = {}
    for name, (username, password, status) in cases.items():
        bcrypt_calls.clear()
        response = await token(api.client, username, password)
        assert response.status_code == status, (name, response.text)
        seen[name] = dict(bcrypt_calls)
    assert seen == {name: {"checkpw": 1} for name in cases}


# AUTH-15 (the authn_password_change_fail audit row comes with the audit issue)


async def test_a_wrong_current_password_changes_nothing(api: Api) -> None:
    account = await api.user()
    before = await stored_hash(api, account)
    response = await api.client.post(
        f"{ME}/password",
        json={"current_password": WRONG, "new_password": "Brand-New-Harbour-42"},
        headers=account.headers,
    )
    assert_envelope(response, 403, "INVALID_CURRENT_PASSWORD")
    assert await stored_hash(api, account) == before
    assert (await api.client.get(ME, headers=account.headers)).status_code == 200
    assert (await token(api.client, account.email, account.password)).status_code == 200
    denied = await token(api.client, account.email, "Brand-New-Harbour-42")
    assert_envelope(denied, 401, "INVALID_CREDENTIALS")


# AUTH-16


async def test_hashes_are_salted_bcrypt_at_the_configured_cost(api: Api) -> None:
    first = await api.create_user()
    second = await api.create_user()  # the same password
    hashes = [await stored_hash(api, first), await stored_hash(api, second)]
    rounds = api.runtime.settings.auth.bcrypt_rounds
    for hashed in hashes:
        assert hashed.startswith(f"$2b${rounds:02d}$")
        assert bcrypt.checkpw(first.password.encode(), hashed.encode())
    assert hashes[0] != hashes[1]
    assert AuthSettings.model_fields["bcrypt_rounds"].default == 12


async def test_a_changed_cost_rehashes_on_the_next_login(
    api: Api, database_url: str, tmp_path: Path, signing_key_pem: str
) -> None:
    account = await api.create_user()
    assert (await stored_hash(api, account)).startswith("$2b$04$")
    costlier = Runtime.create(
        make_settings(database_url, tmp_path, signing_key_pem, bcrypt_rounds=5)
    )
    transport = httpx.ASGITransport(app=create_app(runtime=costlier), client=("127.0.0.1", 5))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert_envelope(await token(client, account.email, WRONG), 401)
            assert (await stored_hash(api, account)).startswith("$2b$04$")  # no rehash on failure
            assert (await token(client, account.email, account.password)).status_code == 200
            rehashed = await stored_hash(api, account)
            assert rehashed.startswith("$2b$05$")
            assert (await token(client, account.email, account.password)).status_code == 200
            assert await stored_hash(api, account) == rehashed  # once, not on every login
    finally:
        await costlier.close()
    await api.login(account)  # back at cost 4: rehashed down again, same password
    assert (await stored_hash(api, account)).startswith("$2b$04$")


# AUTH-17

DEFAULT_CREDENTIALS = [
    ("admin", "admin"),
    ("admin", "password"),
    ("root", "root"),
    ("root", "toor"),
    ("administrator", "administrator"),
    ("admin@example.com", "admin"),
    ("admin@example.com", "password"),
    ("admin@example.com", "changeme"),
    ("admin@example.com", "admin123"),
    ("admin@localhost", "admin"),
    ("root@localhost", "root"),
    ("guest", "guest"),
]


async def assert_no_default_credentials_work(api: Api) -> None:
    for username, password in DEFAULT_CREDENTIALS:
        response = await token(api.client, username, password)
        assert_envelope(response, 401, "INVALID_CREDENTIALS")


async def user_count(api: Api) -> int:
    async with api.runtime.db.session(write=False) as s:
        return int(await s.scalar(select(func.count()).select_from(User)) or 0)


async def test_a_fresh_install_has_no_default_credentials(api: Api) -> None:
    assert await user_count(api) == 0
    await assert_no_default_credentials_work(api)


async def test_the_first_admin_gets_a_random_password_shown_once(api: Api) -> None:
    created = await first_admin(api.runtime)
    assert created is not None
    email, password = created
    assert password is not None
    assert len(password) >= 16
    assert password_problems(password, api.runtime.settings.auth, email=email) == []
    login = await token(api.client, email, password)
    assert login.status_code == 200, login.text
    me = await api.client.get(
        ME, headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert me.json()["role"] == "admin"
    await assert_no_default_credentials_work(api)
    assert await first_admin(api.runtime) is None  # only ever on an empty database

    async with api.runtime.db.session() as s:
        await s.execute(delete(User))
    again = await first_admin(api.runtime)
    assert again is not None
    assert again[1] != password  # another install, another password


async def test_production_never_creates_an_admin_by_itself(
    api: Api, database_url: str, tmp_path: Path, signing_key_pem: str
) -> None:
    production = Runtime.create(
        make_settings(database_url, tmp_path, signing_key_pem, env="production")
    )
    try:
        assert await first_admin(production) is None
    finally:
        await production.close()
    assert await user_count(api) == 0


def test_production_refuses_an_admin_password_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, signing_key_pem: str
) -> None:
    monkeypatch.setenv("GATEHOUSE_ENV", "production")
    monkeypatch.setenv("GATEHOUSE_DATABASE_URL", "postgresql+asyncpg://gatehouse@db/gatehouse")
    monkeypatch.setenv("GATEHOUSE_JWT_PRIVATE_KEY", signing_key_pem)
    monkeypatch.setenv("GATEHOUSE_AUDIT_KEY", "k" * 32)
    monkeypatch.setenv(
        "GATEHOUSE_BACKUP_KEY",
        "AGE-SECRET-KEY-143FA4CP3YDA9Z5KYUEJZRQWT5SASL73XEEF6AHZNWLXKS6C73T4STVZH3L",
    )
    monkeypatch.setenv(
        "GATEHOUSE_ENCRYPTION_KEYS", "k1:qoN5AdYGDrQxLtsX4WDgmwpuH9y1U5yB9gxUJjt6Tb8="
    )
    monkeypatch.setenv("GATEHOUSE_ADMIN_PASSWORD", "admin")
    with pytest.raises(ConfigError, match="GATEHOUSE_ADMIN_PASSWORD"):
        load_settings()
    monkeypatch.delenv("GATEHOUSE_ADMIN_PASSWORD")
    assert load_settings().is_production  # the rest is a valid production configuration


# AUTH-18


async def test_credentials_in_the_query_string_are_refused_and_never_logged(
    api: Api,
) -> None:
    account = await api.user()
    query = {"username": account.email, "password": account.password}
    body = {"username": account.email, "password": account.password}
    with capture_json_logs("DEBUG") as logs:
        responses = [
            await api.client.post(TOKEN, params=query, json={}),
            await api.client.post(TOKEN, params=query, json=body),
            await api.client.post(TOKEN, params=query, data={"grant_type": "password"}),
            await api.client.post(
                TOKEN,
                params={"refresh_token": account.refresh_token},
                json={"grant_type": "refresh_token", "refresh_token": account.refresh_token},
            ),
        ]
    for response in responses:
        error = assert_envelope(response, 400, "VALIDATION_ERROR")
        assert "query" in error["details"]
        assert account.password not in response.text
        assert account.refresh_token not in response.text
    # Everything the service logged, at every level, as it writes it.
    logged = logs.text()
    assert "http.request" in logged  # the capture did see the requests
    assert account.password not in logged
    assert account.refresh_token not in logged
    # Refused before use: the refresh token in the URL was not spent.
    refreshed = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert refreshed.status_code == 200, refreshed.text


# AUTH-19

EMAIL = "known@example.com"


STATUS = {
    "UNSUPPORTED_GRANT_TYPE": 400,
    "VALIDATION_ERROR": 400,
    "INVALID_GRANT": 400,
    "INVALID_CREDENTIALS": 401,
}
PASSWORD_GRANT = {"grant_type": "password", "username": EMAIL}
REFRESH_GRANT = {"grant_type": "refresh_token"}


@pytest.mark.parametrize(
    ("encoding", "payload", "code", "field"),
    [
        ("json", {"grant_type": "client_credentials"}, "UNSUPPORTED_GRANT_TYPE", None),
        ("json", {"grant_type": "authorization_code", "code": "x"}, "UNSUPPORTED_GRANT_TYPE", None),
        ("form", {"grant_type": "client_credentials"}, "UNSUPPORTED_GRANT_TYPE", None),
        ("form", {"grant_type": "implicit"}, "UNSUPPORTED_GRANT_TYPE", None),
        ("json", {}, "VALIDATION_ERROR", "username"),
        ("json", {"username": EMAIL}, "VALIDATION_ERROR", "password"),
        ("json", REFRESH_GRANT, "VALIDATION_ERROR", "refresh_token"),
        ("form", {"username": EMAIL, "password": WRONG}, "VALIDATION_ERROR", "grant_type"),
        ("form", PASSWORD_GRANT, "VALIDATION_ERROR", "password"),
        ("form", REFRESH_GRANT, "VALIDATION_ERROR", "refresh_token"),
        ("json", {"username": EMAIL, "password": WRONG}, "INVALID_CREDENTIALS", None),
        ("form", {**PASSWORD_GRANT, "password": WRONG}, "INVALID_CREDENTIALS", None),
        ("json", {**REFRESH_GRANT, "refresh_token": "bogus"}, "INVALID_GRANT", None),
        ("form", {**REFRESH_GRANT, "refresh_token": "bogus"}, "INVALID_GRANT", None),
    ],
)
async def test_token_endpoint_errors_use_the_envelope(
    api: Api, encoding: str, payload: dict[str, str], code: str, field: str | None
) -> None:
    await api.create_user(email=EMAIL)
    if encoding == "json":
        response = await api.client.post(TOKEN, json=payload)
    else:
        response = await api.client.post(TOKEN, data=payload)
    error = assert_envelope(response, STATUS[code], code)
    if field is not None:
        assert field in error["details"], error
    if code == "INVALID_CREDENTIALS":
        assert error["message"] == "Invalid email or password"


# AUTH-20


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_changing_the_email_needs_the_current_password(api: Api, method: str) -> None:
    account = await api.user()
    moved = f"moved-{uuid.uuid4().hex[:8]}@example.com"

    async def change(**extra: str) -> httpx.Response:
        return await api.client.request(
            method, ME, json={"email": moved, **extra}, headers=account.headers
        )

    assert_envelope(await change(), 403, "REAUTHENTICATION_REQUIRED")
    assert_envelope(await change(current_password=WRONG), 403, "INVALID_CURRENT_PASSWORD")
    assert (await api.client.get(ME, headers=account.headers)).json()["email"] == account.email
    renamed = await api.client.request(
        method, ME, json={"name": "Renamed"}, headers=account.headers
    )
    assert renamed.status_code == 200, renamed.text  # only the email needs the password
    changed = await change(current_password=account.password)
    assert changed.status_code == 200, changed.text
    assert changed.json()["email"] == moved
    assert (await token(api.client, moved, account.password)).status_code == 200
    assert_envelope(await token(api.client, account.email, account.password), 401)


async def test_an_admin_cannot_set_another_users_password(api: Api) -> None:
    admin = await api.user("admin")
    account = await api.create_user()
    before = await stored_hash(api, account)
    chosen = "Admin-Chosen-Secret-1"
    url = f"/api/v1/users/{account.id}"
    attempts = {
        "password": [
            await api.client.put(
                url, json={"name": "N", "role": "user", "password": chosen}, headers=admin.headers
            ),
            await api.client.patch(url, json={"password": chosen}, headers=admin.headers),
        ],
        "password_hash": [
            await api.client.patch(url, json={"password_hash": before}, headers=admin.headers),
        ],
    }
    for field, responses in attempts.items():
        for response in responses:
            error = assert_envelope(response, 400, "VALIDATION_ERROR")
            assert error["details"][field] == ["Unknown field"]
    direct = await api.client.post(
        f"{url}/password", json={"new_password": chosen}, headers=admin.headers
    )
    assert direct.status_code in {404, 405}, direct.text
    assert await stored_hash(api, account) == before
    assert_envelope(await token(api.client, account.email, chosen), 401, "INVALID_CREDENTIALS")
    assert (await token(api.client, account.email, account.password)).status_code == 200
