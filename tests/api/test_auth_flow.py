"""Log in (JSON and OAuth2 form), refresh, log out, register, JWKS, role changes."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from tests.factories import Account, Api, assert_envelope

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
REGISTER = "/api/v1/auth/register"
ME = "/api/v1/users/me"
SIGNUP = {"email": "Signup@Example.com", "name": "Sam Signup", "password": "amber-Canyon-31-fox"}


def _assert_token_response(response: Any) -> dict[str, Any]:
    """The token response of docs/api.md: access and refresh token, bearer, expires_in."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["access_token"].count(".") == 2
    assert body["refresh_token"]
    assert response.headers["cache-control"] == "no-store"
    return body


async def _status_with(api: Api, access_token: str, path: str = ME) -> int:
    response = await api.client.get(path, headers={"Authorization": f"Bearer {access_token}"})
    return response.status_code


# --- log in -----------------------------------------------------------------------------------


async def test_login_with_the_source_json_body(api: Api) -> None:
    account = await api.create_user()
    response = await api.client.post(
        TOKEN, json={"username": account.email, "password": account.password}
    )
    body = _assert_token_response(response)
    assert await _status_with(api, body["access_token"]) == 200


async def test_login_with_the_oauth2_password_form(api: Api) -> None:
    account = await api.create_user()
    response = await api.client.post(
        TOKEN,
        data={"grant_type": "password", "username": account.email, "password": account.password},
    )
    body = _assert_token_response(response)
    assert await _status_with(api, body["access_token"]) == 200


async def test_the_oauth2_refresh_form_rotates_the_refresh_token(api: Api) -> None:
    account = await api.user()
    response = await api.client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": account.refresh_token}
    )
    body = _assert_token_response(response)
    assert body["refresh_token"] != account.refresh_token
    assert await _status_with(api, body["access_token"]) == 200


async def test_the_json_refresh_grant_on_the_token_endpoint(api: Api) -> None:
    account = await api.user()
    response = await api.client.post(
        TOKEN, json={"grant_type": "refresh_token", "refresh_token": account.refresh_token}
    )
    assert _assert_token_response(response)["refresh_token"] != account.refresh_token


async def test_a_wrong_password_is_401_invalid_credentials(api: Api) -> None:
    account = await api.create_user()
    response = await api.client.post(
        TOKEN, json={"username": account.email, "password": "not-the-password-1"}
    )
    assert_envelope(response, 401, "INVALID_CREDENTIALS")


@pytest.mark.parametrize("as_form", [True, False])
async def test_an_unknown_grant_type_is_refused(api: Api, as_form: bool) -> None:
    body = {"grant_type": "client_credentials", "client_id": "x"}
    if as_form:
        response = await api.client.post(TOKEN, data=body)
    else:
        response = await api.client.post(TOKEN, json=body)
    assert_envelope(response, 400, "UNSUPPORTED_GRANT_TYPE")


# --- refresh --------------------------------------------------------------------------------


async def test_refresh_rotates_and_the_spent_token_is_refused(api: Api) -> None:
    account = await api.user()
    first = _assert_token_response(
        await api.client.post(REFRESH, json={"refresh_token": account.refresh_token})
    )
    assert first["refresh_token"] != account.refresh_token
    assert first["access_token"] != account.access_token
    second = _assert_token_response(
        await api.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    )
    assert await _status_with(api, second["access_token"]) == 200
    # The spent token is refused, and the replay ends the whole session (zero tolerance).
    replay = await api.client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert_envelope(replay, 400, "INVALID_GRANT")
    latest = await api.client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert_envelope(latest, 400, "INVALID_GRANT")
    assert await _status_with(api, second["access_token"]) == 401


async def test_a_made_up_refresh_token_is_invalid_grant(api: Api) -> None:
    response = await api.client.post(REFRESH, json={"refresh_token": "not-a-real-token"})
    assert_envelope(response, 400, "INVALID_GRANT")


# --- log out ------------------------------------------------------------------------------


async def test_logout_ends_this_session_only(api: Api) -> None:
    here = await api.user()
    there = await api.login(
        Account(id=here.id, email=here.email, password=here.password, role=here.role)
    )
    response = await api.client.post(LOGOUT, headers=here.headers)
    assert response.status_code == 204
    assert await _status_with(api, here.access_token) == 401
    refused = await api.client.post(REFRESH, json={"refresh_token": here.refresh_token})
    assert_envelope(refused, 400, "INVALID_GRANT")
    assert await _status_with(api, there.access_token) == 200


async def test_logout_all_ends_every_session(api: Api) -> None:
    here = await api.user()
    there = await api.login(
        Account(id=here.id, email=here.email, password=here.password, role=here.role)
    )
    bystander = await api.user()
    response = await api.client.post(LOGOUT, json={"all": True}, headers=here.headers)
    assert response.status_code == 204
    for session in (here, there):
        assert await _status_with(api, session.access_token) == 401
        refused = await api.client.post(REFRESH, json={"refresh_token": session.refresh_token})
        assert_envelope(refused, 400, "INVALID_GRANT")
    assert await _status_with(api, bystander.access_token) == 200
    # Logging in afterwards works as usual.
    assert await _status_with(api, (await api.login(here)).access_token) == 200


async def test_logout_needs_a_token(api: Api) -> None:
    assert_envelope(await api.client.post(LOGOUT), 401, "UNAUTHORIZED")


# --- register -------------------------------------------------------------------------------


async def test_register_creates_a_plain_user_who_can_log_in(api: Api) -> None:
    response = await api.client.post(REGISTER, json=SIGNUP)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "check_your_email"
    login = await api.client.post(
        TOKEN, json={"username": "signup@example.com", "password": SIGNUP["password"]}
    )
    _assert_token_response(login)
    me = await api.client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    body = me.json()
    assert (body["email"], body["name"], body["role"]) == (
        "signup@example.com",
        "Sam Signup",
        "user",
    )


async def test_register_cannot_choose_a_role(api: Api) -> None:
    response = await api.client.post(REGISTER, json={**SIGNUP, "role": "admin"})
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert "role" in error["details"]
    login = await api.client.post(
        TOKEN, json={"username": "signup@example.com", "password": SIGNUP["password"]}
    )
    assert_envelope(login, 401, "INVALID_CREDENTIALS")


async def test_register_with_a_taken_email_is_answered_as_a_new_one_and_a_weak_password_refused(
    api: Api,
) -> None:
    await api.create_user(email="signup@example.com")
    taken = await api.client.post(REGISTER, json=SIGNUP)
    # Nobody learns from sign-up that the address has an account (its owner is mailed).
    assert taken.status_code == 202, taken.text
    login = await api.client.post(
        TOKEN, json={"username": "signup@example.com", "password": SIGNUP["password"]}
    )
    assert_envelope(login, 401, "INVALID_CREDENTIALS")
    weak = await api.client.post(
        REGISTER, json={**SIGNUP, "email": "other@example.com", "password": "password"}
    )
    assert "password" in assert_envelope(weak, 400, "VALIDATION_ERROR")["details"]


@pytest.mark.parametrize("settings_overrides", [{"registration_enabled": False}])
async def test_register_is_refused_when_switched_off(api: Api) -> None:
    response = await api.client.post(REGISTER, json=SIGNUP)
    assert_envelope(response, 403, "REGISTRATION_DISABLED")
    login = await api.client.post(
        TOKEN, json={"username": "signup@example.com", "password": SIGNUP["password"]}
    )
    assert_envelope(login, 401, "INVALID_CREDENTIALS")


# --- JWKS: offline verification by another system -----------------------------------------------


async def test_jwks_verifies_access_tokens_offline(api: Api) -> None:
    account = await api.user("readonly")
    response = await api.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    jwks = response.json()
    (key,) = jwks["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)  # public parts only

    header = jwt.get_unverified_header(account.access_token)
    assert header["kid"] == key["kid"]
    assert header["alg"] == "RS256"
    assert header["typ"] == "at+jwt"

    # What an external system does: pick the key by kid, verify signature and claims.
    signing_key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = jwt.decode(
        account.access_token,
        signing_key.key,
        algorithms=["RS256"],
        audience="gatehouse",
        issuer="gatehouse",
    )
    assert claims["sub"] == str(account.id)
    assert claims["role"] == "readonly"
    assert {"sid", "ver", "iat", "nbf", "exp", "jti"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 900

    # A token edited after signing does not verify.
    head, payload, signature = account.access_token.split(".")
    tampered = f"{head}.{payload[:-2]}AA.{signature}"
    with pytest.raises(jwt.InvalidTokenError):
        jwt.decode(tampered, signing_key.key, algorithms=["RS256"], audience="gatehouse")


# --- a role change takes effect on the next request ---------------------------------------------


async def test_a_promotion_takes_effect_on_the_next_request(api: Api) -> None:
    admin = await api.user("admin")
    user = await api.user("user")
    assert await _status_with(api, user.access_token, "/api/v1/users") == 403
    promoted = await api.client.patch(
        f"/api/v1/users/{user.id}", json={"role": "admin"}, headers=admin.headers
    )
    assert promoted.status_code == 200
    # The token issued under the old role is not honoured with either role.
    assert await _status_with(api, user.access_token, "/api/v1/users") == 401
    fresh = _assert_token_response(
        await api.client.post(REFRESH, json={"refresh_token": user.refresh_token})
    )
    assert await _status_with(api, fresh["access_token"], "/api/v1/users") == 200
    assert jwt.decode(fresh["access_token"], options={"verify_signature": False})["role"] == "admin"


async def test_a_demotion_takes_effect_on_the_next_request(api: Api) -> None:
    admin = await api.user("admin")
    other_admin = await api.user("admin")
    new_user = {"email": "made@example.com", "name": "Made", "password": "amber-Canyon-31-fox"}
    demoted = await api.client.put(
        f"/api/v1/users/{other_admin.id}",
        json={"name": "Former Admin", "role": "readonly"},
        headers=admin.headers,
    )
    assert demoted.status_code == 200
    refused = await api.client.post("/api/v1/users", json=new_user, headers=other_admin.headers)
    assert_envelope(refused, 401, "UNAUTHORIZED")
    fresh = _assert_token_response(
        await api.client.post(REFRESH, json={"refresh_token": other_admin.refresh_token})
    )
    headers = {"Authorization": f"Bearer {fresh['access_token']}"}
    forbidden = await api.client.post("/api/v1/users", json=new_user, headers=headers)
    assert_envelope(forbidden, 403, "FORBIDDEN")
    assert (await api.client.get("/api/v1/users", headers=headers)).status_code == 200
    me = (await api.client.get(ME, headers=headers)).json()
    assert me["role"] == "readonly"
