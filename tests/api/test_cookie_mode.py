"""Cookie mode for browser apps: the refresh token in an HttpOnly cookie, CSRF-guarded."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gatehouse.runtime import Runtime
from tests.conftest import app_for
from tests.factories import Account, Api, assert_envelope

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"
COOKIE_MODE = {"X-Token-Transport": "cookie"}
MAX_AGE = 30 * 24 * 3600  # GATEHOUSE_REFRESH_TOKEN_MAX_SECONDS' default
TOKEN_CHARS = r"[A-Za-z0-9_-]{40,}"


@pytest.fixture
async def https_client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app as a browser reaches it over TLS."""
    transport = httpx.ASGITransport(app=app_for(runtime), client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        yield c


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie line by cookie name."""
    return {line.split("=", 1)[0]: line for line in response.headers.get_list("set-cookie")}


async def _cookie_login(client: httpx.AsyncClient, account: Account) -> httpx.Response:
    response = await client.post(
        TOKEN, json={"username": account.email, "password": account.password}, headers=COOKIE_MODE
    )
    assert response.status_code == 200, response.text
    return response


async def _refresh_with(
    client: httpx.AsyncClient, refresh: str, csrf: str, **headers: str
) -> httpx.Response:
    """A cookie refresh sending exactly these cookies (not the client's jar)."""
    client.cookies.clear()
    return await client.post(
        REFRESH,
        headers={
            "Cookie": f"gatehouse_refresh={refresh}; gatehouse_csrf={csrf}",
            "X-CSRF-Token": csrf,
            **headers,
        },
    )


def _assert_cookie_body(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "csrf_token"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert response.headers["cache-control"] == "no-store"
    return body


def _tokens(response: httpx.Response) -> tuple[str, str]:
    """The refresh token and CSRF token that a cookie-mode answer set."""
    cookies = _set_cookies(response)
    refresh = cookies["gatehouse_refresh"].split(";", 1)[0].split("=", 1)[1]
    csrf = cookies["gatehouse_csrf"].split(";", 1)[0].split("=", 1)[1]
    return refresh, csrf


# --- log in -----------------------------------------------------------------------------------


async def test_cookie_login_sets_an_httponly_strict_refresh_cookie(api: Api) -> None:
    response = await _cookie_login(api.client, await api.create_user())
    body = _assert_cookie_body(response)
    cookies = _set_cookies(response)
    assert set(cookies) == {"gatehouse_refresh", "gatehouse_csrf"}
    assert re.fullmatch(
        rf"gatehouse_refresh={TOKEN_CHARS}; Max-Age={MAX_AGE}; Path=/api/v1/auth; "
        r"SameSite=Strict; HttpOnly",
        cookies["gatehouse_refresh"],
    ), cookies["gatehouse_refresh"]
    # Readable by the app (not HttpOnly), on every path; over plain http, not Secure.
    assert cookies["gatehouse_csrf"] == (
        f"gatehouse_csrf={body['csrf_token']}; Max-Age={MAX_AGE}; Path=/; SameSite=Strict"
    )
    refresh, _ = _tokens(response)
    assert refresh not in response.text
    me = await api.client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200


async def test_over_tls_both_cookies_are_secure(api: Api, https_client: httpx.AsyncClient) -> None:
    response = await _cookie_login(https_client, await api.create_user())
    cookies = _set_cookies(response)
    assert cookies["gatehouse_refresh"].endswith("; SameSite=Strict; HttpOnly; Secure")
    assert cookies["gatehouse_csrf"].endswith("; Path=/; SameSite=Strict; Secure")
    # A browser-like round trip over TLS: the jar sends both Secure cookies back.
    refreshed = await https_client.post(
        REFRESH, headers={"X-CSRF-Token": response.json()["csrf_token"]}
    )
    _assert_cookie_body(refreshed)


@pytest.mark.parametrize("settings_overrides", [{"trusted_proxies": ["127.0.0.1/32"]}])
async def test_tls_ended_at_a_trusted_proxy_makes_the_cookies_secure(api: Api) -> None:
    account = await api.create_user()
    response = await api.client.post(
        TOKEN,
        json={"username": account.email, "password": account.password},
        headers={**COOKIE_MODE, "X-Forwarded-Proto": "https"},
    )
    assert all(line.endswith("; Secure") for line in _set_cookies(response).values())


@pytest.mark.parametrize(
    ("settings_overrides", "secure"), [({"cookie_secure": True}, True), ({}, False)]
)
async def test_gatehouse_cookie_secure_forces_the_attribute(api: Api, secure: bool) -> None:
    response = await _cookie_login(api.client, await api.create_user())
    assert [line.endswith("; Secure") for line in _set_cookies(response).values()] == [secure] * 2


@pytest.mark.parametrize("settings_overrides", [{"cookie_secure": False}])
async def test_cookie_secure_false_drops_it_even_over_tls(
    api: Api, https_client: httpx.AsyncClient
) -> None:
    response = await _cookie_login(https_client, await api.create_user())
    assert not any("Secure" in line for line in _set_cookies(response).values())


async def test_json_login_sets_no_cookie(api: Api) -> None:
    account = await api.create_user()
    response = await api.client.post(
        TOKEN,
        json={"username": account.email, "password": account.password},
        headers={"X-Token-Transport": "json"},
    )
    assert response.status_code == 200
    assert set(response.json()) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert "set-cookie" not in response.headers


async def test_an_unknown_transport_is_refused(api: Api) -> None:
    account = await api.create_user()
    response = await api.client.post(
        TOKEN,
        json={"username": account.email, "password": account.password},
        headers={"X-Token-Transport": "localstorage"},
    )
    assert_envelope(response, 400, "VALIDATION_ERROR")


async def test_the_refresh_grant_on_the_token_endpoint_is_json_mode_only(api: Api) -> None:
    account = await api.user()
    response = await api.client.post(
        TOKEN,
        json={"grant_type": "refresh_token", "refresh_token": account.refresh_token},
        headers=COOKIE_MODE,
    )
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert "X-Token-Transport" in error["details"]
    # Refused before it was spent: the token still works in JSON mode.
    again = await api.client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert again.status_code == 200


# --- refresh ----------------------------------------------------------------------------------


async def test_cookie_refresh_rotates_and_a_replayed_cookie_ends_the_session(api: Api) -> None:
    login = await _cookie_login(api.client, await api.create_user())
    old_refresh, old_csrf = _tokens(login)

    first = await _refresh_with(api.client, old_refresh, old_csrf)
    body = _assert_cookie_body(first)
    new_refresh, new_csrf = _tokens(first)
    assert new_refresh != old_refresh
    assert new_csrf != old_csrf
    assert body["csrf_token"] == new_csrf
    assert new_refresh not in first.text
    cookie = _set_cookies(first)["gatehouse_refresh"]
    assert cookie.endswith(f"; Max-Age={MAX_AGE}; Path=/api/v1/auth; SameSite=Strict; HttpOnly")

    # The spent cookie is refused, and its reuse revokes the whole family.
    replay = await _refresh_with(api.client, old_refresh, old_csrf)
    assert_envelope(replay, 400, "INVALID_GRANT")
    assert "set-cookie" not in replay.headers
    latest = await _refresh_with(api.client, new_refresh, new_csrf)
    assert_envelope(latest, 400, "INVALID_GRANT")
    me = await api.client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 401


async def test_a_browser_like_client_refreshes_from_its_jar(api: Api) -> None:
    login = await _cookie_login(api.client, await api.create_user())
    csrf = login.json()["csrf_token"]
    for _ in range(2):
        response = await api.client.post(REFRESH, headers={"X-CSRF-Token": csrf})
        csrf = _assert_cookie_body(response)["csrf_token"]
    # An empty JSON object is the same as no body.
    response = await api.client.post(REFRESH, json={}, headers={"X-CSRF-Token": csrf})
    _assert_cookie_body(response)


@pytest.mark.parametrize("csrf_header", [None, "", "wrong-value"])
async def test_a_cookie_refresh_without_the_matching_csrf_header_is_refused(
    api: Api, csrf_header: str | None
) -> None:
    login = await _cookie_login(api.client, await api.create_user())
    headers = {} if csrf_header is None else {"X-CSRF-Token": csrf_header}
    response = await api.client.post(REFRESH, headers=headers)
    assert_envelope(response, 403, "CSRF_FAILED")
    # Nothing was spent: with the right header the same cookie still works.
    ok = await api.client.post(REFRESH, headers={"X-CSRF-Token": login.json()["csrf_token"]})
    _assert_cookie_body(ok)


async def test_the_csrf_header_must_match_a_csrf_cookie(api: Api) -> None:
    refresh, csrf = _tokens(await _cookie_login(api.client, await api.create_user()))
    api.client.cookies.clear()
    response = await api.client.post(
        REFRESH, headers={"Cookie": f"gatehouse_refresh={refresh}", "X-CSRF-Token": csrf}
    )
    assert_envelope(response, 403, "CSRF_FAILED")


@pytest.mark.parametrize("settings_overrides", [{"cors_origins": ["https://app.example.com"]}])
@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://evil.example.net", 403),
        ("null", 403),
        ("http://testserver", 200),  # the request's own origin
        ("https://app.example.com", 200),  # GATEHOUSE_CORS_ORIGINS
    ],
)
async def test_the_origin_must_be_our_own_or_an_allowed_one(
    api: Api, origin: str, status: int
) -> None:
    refresh, csrf = _tokens(await _cookie_login(api.client, await api.create_user()))
    response = await _refresh_with(api.client, refresh, csrf, Origin=origin)
    if status == 403:
        assert_envelope(response, 403, "CSRF_FAILED")
    else:
        _assert_cookie_body(response)


async def test_refresh_with_neither_body_nor_cookie_is_400(api: Api) -> None:
    bodies: list[dict[str, str] | None] = [None, {}]
    for body in bodies:
        response = await api.client.post(REFRESH, json=body)
        error = assert_envelope(response, 400, "VALIDATION_ERROR")
        assert "refresh_token" in error["details"]


async def test_a_body_token_wins_over_the_cookie(api: Api) -> None:
    json_account = await api.user()
    await _cookie_login(api.client, await api.create_user())
    # The jar holds the cookie session; the body names the JSON one. No CSRF needed.
    response = await api.client.post(REFRESH, json={"refresh_token": json_account.refresh_token})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert "set-cookie" not in response.headers


async def test_a_body_token_can_move_to_cookie_mode(api: Api) -> None:
    account = await api.user()
    response = await api.client.post(
        REFRESH, json={"refresh_token": account.refresh_token}, headers=COOKIE_MODE
    )
    _assert_cookie_body(response)
    refresh, csrf = _tokens(response)
    _assert_cookie_body(await _refresh_with(api.client, refresh, csrf))


# --- log out ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, {"all": True}])
async def test_logout_clears_both_cookies(api: Api, body: dict[str, bool] | None) -> None:
    login = await _cookie_login(api.client, await api.create_user())
    refresh, csrf = _tokens(login)
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    response = await api.client.post(LOGOUT, json=body, headers=bearer)
    assert response.status_code == 204
    assert _set_cookies(response) == {
        "gatehouse_refresh": "gatehouse_refresh=; Max-Age=0; Path=/api/v1/auth; "
        "SameSite=Strict; HttpOnly",
        "gatehouse_csrf": "gatehouse_csrf=; Max-Age=0; Path=/; SameSite=Strict",
    }
    assert not api.client.cookies
    after = await api.client.post(REFRESH, headers={"X-CSRF-Token": csrf})
    assert_envelope(after, 400, "VALIDATION_ERROR")
    # And the session is over: the old cookie, sent by hand, is dead.
    assert_envelope(await _refresh_with(api.client, refresh, csrf), 400, "INVALID_GRANT")


# --- CORS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"cors_origins": ["https://app.example.com"]}])
async def test_cors_lets_an_allowed_origin_send_the_csrf_header_with_credentials(
    api: Api,
) -> None:
    response = await api.client.options(
        REFRESH,
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-csrf-token, x-token-transport, content-type",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    assert response.headers["access-control-allow-credentials"] == "true"
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "x-csrf-token" in allowed
    assert "x-token-transport" in allowed
