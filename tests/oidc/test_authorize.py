"""GET /oauth2/authorize: a code for a signed-in person who consented; the login and
consent pages otherwise; errors back to the client, or an error page when the client
or its redirect URI cannot be trusted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from gatehouse.auth.models import Session
from gatehouse.kit.time import utcnow
from gatehouse.oidc import protocol
from tests.factories import Account, Api
from tests.oidc.conftest import (
    CALLBACK,
    ISSUER,
    age_login,
    audit_rows,
    authorize,
    authorize_params,
    code_for,
    consent,
    grants,
    location,
    login_session,
    register,
    session_id,
    sign_in_browser,
)

Client = dict[str, Any]


async def test_a_signed_in_person_who_consented_gets_a_code_bound_to_the_request(
    api: Api, rp: Client
) -> None:
    user = await api.user()
    params = authorize_params(rp, scope="openid email offline_access")
    await sign_in_browser(api, user)
    await consent(api, user, params)
    response = await authorize(api, params)
    assert response.headers["cache-control"] == "no-store"
    _, query = location(response)
    assert set(query) == {"code", "state", "iss"}
    assert query["state"] == params["state"]
    assert query["iss"] == ISSUER
    assert query["code"].startswith("ghac_")

    (grant,) = await grants(api.runtime, user.id)
    login = await login_session(api.runtime, session_id(user))
    assert grant.code_hash == protocol.digest(query["code"])
    assert query["code"] not in repr(vars(grant))
    assert grant.code_expires_at is not None
    assert grant.code_expires_at - grant.created_at == timedelta(seconds=60)
    assert grant.code_used_at is None
    assert grant.redirect_uri == CALLBACK
    assert grant.code_challenge == params["code_challenge"]
    assert grant.nonce == params["nonce"]
    assert grant.scopes == ["openid", "email", "offline_access"]
    assert grant.session_id == login.id
    assert grant.auth_time == login.created_at
    assert grant.amr == "pwd"
    assert grant.auth_version == 1
    assert grant.grant_type == "authorization_code"

    (row,) = await audit_rows(api.runtime, "oauth.authorize")
    assert (row.outcome, row.actor_id, row.target_type) == ("success", user.id, "client")
    assert row.target_id == rp["id"]
    assert row.details == {"client_id": rp["client_id"], "scopes": grant.scopes}


async def test_the_redirect_uri_keeps_its_own_query(api: Api, rp: Client) -> None:
    user = await api.user()
    params = authorize_params(rp, redirect_uri="https://app.example.com/cb?tenant=7")
    query = await code_for(api, user, params)
    assert query["tenant"] == "7"
    assert {"code", "state", "iss"} <= set(query)


# Parameter checks, before any read that depends on the database: SQLite only.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"redirect_uri": "https://evil.example.com/callback"}, "redirect_uri_mismatch"),
        ({"redirect_uri": CALLBACK + "/"}, "redirect_uri_mismatch"),
        ({"redirect_uri": None}, "missing_redirect_uri"),
        ({"client_id": "gh_unknownunknownunknown"}, "unknown_client"),
        ({"client_id": None}, "missing_client_id"),
    ],
)
async def test_an_untrusted_target_gets_an_error_page_and_no_redirect(
    api: Api, rp: Client, changes: dict[str, str | None], reason: str
) -> None:
    response = await authorize(api, authorize_params(rp, **changes))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "<script" not in response.text
    assert "evil.example.com" not in response.text
    (row,) = await audit_rows(api.runtime, "oauth.authorize")
    assert (row.outcome, row.reason) == ("failure", reason)


async def test_a_redirect_uri_given_twice_is_not_trusted(api: Api, rp: Client) -> None:
    params = authorize_params(rp)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = await api.client.get(f"{protocol.AUTHORIZE_PATH}?{query}&redirect_uri={CALLBACK}")
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_a_disabled_client_or_one_without_the_code_grant_gets_the_error_page(
    api: Api, admin: Account, rp: Client
) -> None:
    disabled = await api.client.post(f"/api/v1/clients/{rp['id']}/disable", headers=admin.headers)
    assert disabled.status_code == 200
    machine = await register(
        api,
        admin,
        name="Batch",
        redirect_uris=[],
        post_logout_redirect_uris=[],
        scopes=["roles"],
        grant_types=["client_credentials"],
    )
    for client, reason in ((rp, "client_disabled"), (machine, "unauthorized_client")):
        params = authorize_params(client, redirect_uri=CALLBACK, scope="roles")
        response = await authorize(api, params)
        assert response.status_code == 400, reason
        assert "location" not in response.headers
    rows = await audit_rows(api.runtime, "oauth.authorize")
    assert [row.reason for row in rows] == ["client_disabled", "unauthorized_client"]
    assert [row.target_id for row in rows] == [rp["id"], machine["id"]]


# Parameter checks, before any read that depends on the database: SQLite only.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"response_mode": "form_post"}, "invalid_request"),
        ({"scope": "openid roles"}, "invalid_scope"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"scope": None}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "none select_account"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
        ({"nonce": "n" * 513}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://app.example.com/req"}, "request_uri_not_supported"),
    ],
)
async def test_a_bad_request_goes_back_to_the_client_with_its_error_state_and_issuer(
    api: Api, rp: Client, changes: dict[str, str | None], error: str
) -> None:
    params = authorize_params(rp, **changes)
    base, query = location(await authorize(api, params))
    assert base == CALLBACK
    assert query["error"] == error
    assert query["error_description"]
    assert query["state"] == params["state"]
    assert query["iss"] == ISSUER
    assert "code" not in query
    (row,) = await audit_rows(api.runtime, "oauth.authorize")
    assert (row.outcome, row.reason, row.target_id) == ("failure", error, rp["id"])
    assert await grants(api.runtime) == []


async def test_a_parameter_given_twice_is_invalid(api: Api, rp: Client) -> None:
    params = authorize_params(rp)
    response = await api.client.get(
        protocol.AUTHORIZE_PATH, params=[*params.items(), ("scope", "openid email")]
    )
    _, query = location(response)
    assert query["error"] == "invalid_request"


async def test_without_a_session_the_browser_goes_to_the_login_page(api: Api, rp: Client) -> None:
    params = authorize_params(rp, login_hint="jane@example.com")
    base, query = location(await authorize(api, params))
    assert base == "/login"
    assert set(query) == {"return_to", "login_hint"}
    assert query["login_hint"] == "jane@example.com"
    return_to = urlsplit(query["return_to"])
    assert return_to.path == protocol.AUTHORIZE_PATH
    assert query["return_to"].startswith("/oauth2/authorize?")
    assert {k: v[0] for k, v in parse_qs(return_to.query).items()} == params
    assert await audit_rows(api.runtime, "oauth.authorize") == []


async def test_a_parameter_without_a_value_is_as_if_omitted(api: Api, rp: Client) -> None:
    params = authorize_params(rp, prompt="", max_age="", login_hint="", nonce="")
    ignored = authorize_params(rp, prompt="select_account")
    base, _ = location(await authorize(api, ignored))
    assert base == "/login"
    base, query = location(await authorize(api, params))
    assert (base, set(query)) == ("/login", {"return_to"})
    assert "max_age" not in query["return_to"]
    too_many = {**params, **{f"x{i}": "1" for i in range(60)}}
    response = await authorize(api, too_many)
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_prompt_none_without_a_session_is_login_required(api: Api, rp: Client) -> None:
    params = authorize_params(rp, prompt="none")
    base, query = location(await authorize(api, params))
    assert (base, query["error"], query["state"]) == (CALLBACK, "login_required", params["state"])
    assert query["iss"] == ISSUER


async def test_without_consent_the_browser_goes_to_the_consent_page(api: Api, rp: Client) -> None:
    user = await api.user()
    await sign_in_browser(api, user)
    params = authorize_params(rp)
    base, query = location(await authorize(api, params))
    assert base == "/consent"
    assert query == params
    # prompt=none cannot show that page.
    none = authorize_params(rp, prompt="none")
    _, query = location(await authorize(api, none))
    assert query["error"] == "consent_required"
    # Consent to fewer scopes than asked is not consent to the request.
    await consent(api, user, authorize_params(rp, scope="openid"))
    base, _ = location(await authorize(api, authorize_params(rp, scope="openid email")))
    assert base == "/consent"
    # Consent given: a code; prompt=consent asks again all the same.
    base, _ = location(await authorize(api, authorize_params(rp, scope="openid")))
    assert base == CALLBACK
    base, query = location(await authorize(api, authorize_params(rp, prompt="consent")))
    assert base == "/consent"
    assert query["prompt"] == "consent"


async def test_a_trusted_client_never_asks_for_consent(api: Api, first_party: Client) -> None:
    user = await api.user()
    await sign_in_browser(api, user)
    for prompt in (None, "consent", "none"):
        base, query = location(await authorize(api, authorize_params(first_party, prompt=prompt)))
        assert base == first_party["redirect_uris"][0], prompt
        assert "code" in query


async def test_prompt_login_sends_to_the_login_form_and_back_once_logged_in_again(
    api: Api, first_party: Client
) -> None:
    user = await api.user()
    await sign_in_browser(api, user)
    await age_login(api.runtime, session_id(user), 120)
    params = authorize_params(first_party, prompt="login consent")
    before = int(utcnow().timestamp())
    base, query = location(await authorize(api, params))
    assert base == "/login"
    assert query["fresh"] == "1"
    back = {k: v[0] for k, v in parse_qs(urlsplit(query["return_to"]).query).items()}
    assert back["prompt"] == "consent"
    assert before <= int(back["gh_after"]) <= int(utcnow().timestamp())
    assert {k: v for k, v in back.items() if k not in ("prompt", "gh_after")} == {
        k: v for k, v in params.items() if k != "prompt"
    }
    # Back with the old login (the person did not log in): to the form again.
    base, again = location(await api.client.get(query["return_to"]))
    assert base == "/login"
    assert again["fresh"] == "1"
    assert again["return_to"] == query["return_to"]
    # A new login: the code.
    await api.login(user)
    await sign_in_browser(api, user)
    base, done = location(await api.client.get(query["return_to"]))
    assert base == first_party["redirect_uris"][0]
    assert "code" in done
    (grant,) = await grants(api.runtime, user.id)
    assert grant.session_id == session_id(user)


async def test_max_age_asks_for_a_login_when_the_last_is_older(
    api: Api, first_party: Client
) -> None:
    user = await api.user()
    await sign_in_browser(api, user)
    await age_login(api.runtime, session_id(user), 600)
    base, _ = location(await authorize(api, authorize_params(first_party, max_age="3600")))
    assert base == first_party["redirect_uris"][0]
    base, query = location(await authorize(api, authorize_params(first_party, max_age="0")))
    assert base == "/login"
    assert query["fresh"] == "1"
    assert "gh_after" in query["return_to"]
    _, none = location(
        await authorize(api, authorize_params(first_party, max_age="60", prompt="none"))
    )
    assert none["error"] == "login_required"
    # Logged in again: the mark is passed, even with max_age=0.
    await api.login(user)
    await sign_in_browser(api, user)
    base, done = location(await api.client.get(query["return_to"]))
    assert base == first_party["redirect_uris"][0]
    assert "code" in done


async def test_single_sign_on_a_second_client_gets_a_code_without_a_login(
    api: Api, admin: Account, first_party: Client
) -> None:
    other = await register(
        api, admin, name="Acme Docs", trusted=True, redirect_uris=["https://docs.example.com/cb"]
    )
    user = await api.user()
    await sign_in_browser(api, user)
    for client in (first_party, other):
        base, query = location(await authorize(api, authorize_params(client)))
        assert base == client["redirect_uris"][0]
        assert "code" in query
    assert {g.session_id for g in await grants(api.runtime, user.id)} == {session_id(user)}


async def test_a_logged_out_session_means_logging_in_again(api: Api, first_party: Client) -> None:
    user = await api.user()
    await sign_in_browser(api, user)
    out = await api.client.post("/api/v1/auth/logout", json={"all": False}, headers=user.headers)
    assert out.status_code == 204
    base, _ = location(await authorize(api, authorize_params(first_party)))
    assert base == "/login"


async def test_an_expired_session_means_logging_in_again(api: Api, first_party: Client) -> None:
    user = await api.user()
    await sign_in_browser(api, user)
    async with api.runtime.db.session() as session:
        await session.execute(
            update(Session)
            .where(Session.id == session_id(user))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    base, _ = location(await authorize(api, authorize_params(first_party)))
    assert base == "/login"


async def test_a_deleted_user_must_log_in_again(
    api: Api, admin: Account, first_party: Client
) -> None:
    user = await api.user()
    await sign_in_browser(api, user)
    deleted = await api.client.delete(f"/api/v1/users/{user.id}", headers=admin.headers)
    assert deleted.status_code == 204
    base, _ = location(await authorize(api, authorize_params(first_party)))
    assert base == "/login"
    assert await grants(api.runtime, user.id) == []


async def test_a_made_up_cookie_is_nobody(api: Api, first_party: Client) -> None:
    api.client.cookies.set(protocol.BROWSER_COOKIE, "x" * 43, domain="testserver", path="/oauth2")
    base, _ = location(await authorize(api, authorize_params(first_party)))
    assert base == "/login"
