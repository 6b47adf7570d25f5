"""AUTH-09…AUTH-14: which passwords are accepted, and that they are checked exactly."""

from __future__ import annotations

import uuid

import httpx
import pytest
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from gatehouse.auth.passwords import password_problems
from gatehouse.config import AuthSettings
from tests.factories import Api, assert_envelope

REGISTER = "/api/v1/auth/register"
TOKEN = "/api/v1/auth/token"
TOO_LONG = "Password must be at most 72 bytes (UTF-8)"
TOO_COMMON = "Password is too common; choose one that is harder to guess"
TOO_PERSONAL = "Password must not contain your email address or name"
TOP_3000 = FREQUENCY_LISTS["passwords"][:3000]


def new_email() -> str:
    return f"member-{uuid.uuid4().hex[:8]}@example.com"


async def register(
    api: Api, password: str, *, email: str | None = None, name: str = "Test Person"
) -> httpx.Response:
    return await api.client.post(
        REGISTER, json={"email": email or new_email(), "name": name, "password": password}
    )


async def login(api: Api, email: str, password: str) -> httpx.Response:
    return await api.client.post(TOKEN, json={"username": email, "password": password})


def password_errors(response: httpx.Response) -> list[str]:
    details: dict[str, list[str]] = assert_envelope(response, 400, "VALIDATION_ERROR")["details"]
    return details["password"]


# AUTH-09


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("vq7#Lm2p", id="8 chars"),
        pytest.param("Vq7#Lm2p-Rx4!Tn", id="15 chars"),
        pytest.param("Vq7#Lm2p-" * 7 + "z", id="64 chars"),
        pytest.param("Vq7#Lm2p-" * 8, id="72 bytes"),
        pytest.param("🦊🌙🍀🎲" * 4 + "Zürich", id="16 emoji + accents = 71 bytes"),
    ],
)
async def test_long_and_unicode_passwords_within_72_bytes_are_accepted(
    api: Api, password: str
) -> None:
    assert len(password.encode()) <= 72
    email = new_email()
    response = await register(api, password, email=email)
    assert response.status_code == 202, response.text
    assert (await login(api, email, password)).status_code == 200


async def test_a_7_character_password_is_refused(api: Api) -> None:
    errors = password_errors(await register(api, "vq7#Lm2"))
    assert errors == ["Password must be at least 8 characters"]


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("🦊" * 64, id="64 emoji = 256 bytes"),
        pytest.param("Vq7#Lm2p" * 16, id="128 chars"),
        pytest.param("Vq7#Lm2p-" * 8 + "A", id="73 bytes"),
    ],
)
async def test_passwords_over_72_bytes_are_refused_with_a_clear_message(
    api: Api, password: str
) -> None:
    """bcrypt reads 72 bytes: we refuse more rather than silently cut it (decision)."""
    assert password_errors(await register(api, password)) == [TOO_LONG]


# AUTH-10


async def test_a_72_byte_password_is_never_truncated_at_login(api: Api) -> None:
    password = "Vq7#Lm2p-" * 8
    email = new_email()
    assert (await register(api, password, email=email)).status_code == 202
    for wrong in (password + "B", password[:-1] + "B", password + "x" * 128):
        assert_envelope(await login(api, email, wrong), 401, "INVALID_CREDENTIALS")
    assert (await login(api, email, password)).status_code == 200


async def test_very_long_passwords_are_refused_never_a_server_error(api: Api) -> None:
    long = "L0ng-" * 40  # 200 bytes: bcrypt 5 raises ValueError over 72
    email = new_email()
    assert password_errors(await register(api, long, email=email)) == [TOO_LONG]
    account = await api.create_user()
    assert_envelope(await login(api, account.email, long), 401, "INVALID_CREDENTIALS")
    changed = await api.client.post(
        "/api/v1/users/me/password",
        json={"current_password": long, "new_password": long},
        headers=(await api.login(account)).headers,
    )
    assert_envelope(changed, 403, "INVALID_CURRENT_PASSWORD")


# AUTH-11


async def test_passwords_are_compared_exactly_case_and_spaces_included(api: Api) -> None:
    password = "Pass word X"
    email = new_email()
    assert (await register(api, password, email=email)).status_code == 202
    for near_miss in ("pass word x", "Pass word X ", " Pass word X", "PASS WORD X", "Password X"):
        assert_envelope(await login(api, email, near_miss), 401, "INVALID_CREDENTIALS")
    assert (await login(api, email, password)).status_code == 200


# AUTH-12


async def test_an_all_lowercase_password_needs_no_other_character_classes(api: Api) -> None:
    password = "quietmeadowlanes"
    assert password.lower() not in FREQUENCY_LISTS["passwords"]
    email = new_email()
    assert (await register(api, password, email=email)).status_code == 202
    assert (await login(api, email, password)).status_code == 200


# AUTH-13


def test_the_top_3000_common_passwords_are_all_refused() -> None:
    settings = AuthSettings()
    long_enough = [p for p in TOP_3000 if len(p) >= settings.password_min_length]
    accepted = [p for p in TOP_3000 if not password_problems(p, settings)]
    not_for_commonness = [
        p for p in long_enough if TOO_COMMON not in password_problems(p, settings)
    ]
    capitalised = [p for p in long_enough if not password_problems(p.capitalize(), settings)]
    print(
        f"\nAUTH-13: {len(TOP_3000)} tried ({len(long_enough)} meet the length rule), "
        f"{len(accepted)} accepted; capitalised: {len(capitalised)} accepted"
    )
    assert len(long_enough) > 800
    assert accepted == []
    assert not_for_commonness == []
    assert capitalised == []


async def test_common_passwords_are_refused_through_the_api(api: Api) -> None:
    long_enough = [p for p in TOP_3000 if len(p) >= 8]
    sample = long_enough[::40]  # ~21 of them, from the top to the tail of the list
    for password in sample:
        assert TOO_COMMON in password_errors(await register(api, password)), password
    account = await api.user()
    changed = await api.client.post(
        "/api/v1/users/me/password",
        json={"current_password": account.password, "new_password": "baseball"},
        headers=account.headers,
    )
    details = assert_envelope(changed, 400, "VALIDATION_ERROR")["details"]
    assert details == {"new_password": [TOO_COMMON]}


# AUTH-14


@pytest.mark.parametrize(
    ("email", "name", "password"),
    [
        ("alice@example.com", "Alice Liddell", "alice2024!"),
        ("alice@example.com", "Test Person", "Alice2024!"),
        ("alice@example.com", "Test Person", "my-alice-pass"),
        ("j.marguerite@example.com", "Jo Smith", "marguerite-77"),
        ("member@example.com", "Rosalind Franklin", "franklin-1920"),
    ],
)
async def test_passwords_containing_the_email_or_name_are_refused(
    api: Api, email: str, name: str, password: str
) -> None:
    response = await register(api, password, email=email, name=name)
    assert password_errors(response) == [TOO_PERSONAL]


async def test_password_change_to_one_containing_the_email_is_refused(api: Api) -> None:
    account = await api.user(email=f"harriet-{uuid.uuid4().hex[:6]}@example.com")
    local = account.email.split("@")[0]
    changed = await api.client.post(
        "/api/v1/users/me/password",
        json={"current_password": account.password, "new_password": f"{local}-2024"},
        headers=account.headers,
    )
    details = assert_envelope(changed, 400, "VALIDATION_ERROR")["details"]
    assert details == {"new_password": [TOO_PERSONAL]}
