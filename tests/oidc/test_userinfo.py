"""GET|POST /oauth2/userinfo (OIDC Core §5.3, RFC 6750 errors)."""

from __future__ import annotations

import pytest

from gatehouse.oidc import protocol
from tests.factories import Api
from tests.oidc import token_support as oidc
from tests.oidc.token_support import (
    USERINFO,
    assert_oauth_error,
    exchange,
    make_client,
    set_client_enabled,
    userinfo,
)


async def test_userinfo_answers_the_scopes_claims(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user(email="info@example.com", name="Info Person")
    body = await exchange(api, rp, user, "openid email profile roles")
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    for method in ("GET", "POST"):
        response = await api.client.request(method, USERINFO, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        assert response.json() == {
            "sub": str(user.id),
            "email": "info@example.com",
            "email_verified": False,
            "name": "Info Person",
            "role": "user",
        }
    narrow = await exchange(api, rp, user, "openid email")
    assert (await userinfo(api, narrow["access_token"])).json() == {
        "sub": str(user.id),
        "email": "info@example.com",
        "email_verified": False,
    }


async def test_userinfo_refusals_follow_rfc_6750(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    missing = await api.client.get(USERINFO)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "error=" not in missing.headers["www-authenticate"]
    for token in ("garbage", user.access_token):
        refused = await userinfo(api, token)
        assert_oauth_error(refused, 401, "invalid_token")
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    no_openid = await exchange(api, rp, user, "profile")
    insufficient = await userinfo(api, no_openid["access_token"])
    assert_oauth_error(insufficient, 403, "insufficient_scope")
    assert 'error="insufficient_scope"' in insufficient.headers["www-authenticate"]
    # A disabled client's tokens stop working.
    body = await exchange(api, rp, user)
    await set_client_enabled(api.runtime, rp, False)
    assert_oauth_error(await userinfo(api, body["access_token"]), 401, "invalid_token")
    await set_client_enabled(api.runtime, rp, True)
    assert (await userinfo(api, body["access_token"])).status_code == 200


@pytest.mark.parametrize(
    "settings_overrides",
    [{"rate_limit_enabled": True, "rate_limit_oauth_token": "2/minute"}],
)
async def test_userinfo_counts_per_client_and_address(api: Api) -> None:
    rp = await make_client(api.runtime)
    other = await make_client(api.runtime)
    user = await api.user()
    mine = await exchange(api, rp, user)
    theirs = await exchange(api, other, user)
    for _ in range(2):
        assert (await userinfo(api, mine["access_token"])).status_code == 200
    assert_oauth_error(await userinfo(api, mine["access_token"]), 429, "rate_limited")
    assert (await userinfo(api, theirs["access_token"])).status_code == 200


async def test_the_api_csp_and_no_store_apply(api: Api) -> None:
    response = await api.client.get(USERINFO)
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["cache-control"] == "no-store"
    assert protocol.USERINFO_PATH == USERINFO


async def test_logging_out_of_gatehouse_ends_what_did_not_ask_to_outlive_it(api: Api) -> None:
    """A grant without offline_access acts only while the login that made it stands; one
    with it is what an app asks for to keep working while the person is away."""
    rp = await oidc.make_client(api.runtime)
    user = await api.user()
    online = (await oidc.exchange(api, rp, user, "openid email"))["access_token"]
    offline = (await oidc.exchange(api, rp, user))["access_token"]
    assert (await oidc.userinfo(api, online)).status_code == 200

    logout = await api.client.post("/api/v1/auth/logout", json={"all": False}, headers=user.headers)
    assert logout.status_code == 204, logout.text

    oidc.assert_oauth_error(await oidc.userinfo(api, online), 401, "invalid_token")
    assert (await oidc.introspect(api, rp, online)) == {"active": False}
    assert (await oidc.userinfo(api, offline)).status_code == 200
