"""The client app's JSON routes around authorize: the provider cookie
(`POST /api/v1/oauth2/session`) and the consent screen's read, allow and deny."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from gatehouse.clients.repository import ConsentRepository
from gatehouse.kit.time import utcnow
from gatehouse.oidc import protocol
from tests.factories import Api, assert_envelope
from tests.oidc.conftest import (
    CALLBACK,
    CONSENT,
    ISSUER,
    SESSION,
    audit_rows,
    authorize,
    authorize_params,
    browser_sessions,
    grants,
    location,
    login_session,
    query_of,
    session_id,
    sign_in_browser,
)

Client = dict[str, Any]


def cookie_attributes(header: str) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        attributes[name.lower()] = value
    return attributes


async def test_the_provider_cookie_is_http_only_lax_and_sent_only_to_oauth2(api: Api) -> None:
    user = await api.user()
    response = await api.client.post(SESSION, headers=user.headers)
    assert response.status_code == 204
    header = response.headers["set-cookie"]
    attributes = cookie_attributes(header)
    token = attributes[protocol.BROWSER_COOKIE]
    assert len(token) >= 43
    assert attributes["path"] == "/oauth2"
    assert attributes["samesite"] == "Lax"
    assert "httponly" in attributes
    assert "secure" not in attributes  # plain http in the tests
    login = await login_session(api.runtime, session_id(user))
    (browser,) = await browser_sessions(api.runtime)
    assert browser.token_hash == protocol.digest(token)
    assert browser.session_id == login.id
    assert browser.expires_at == login.absolute_expires_at
    max_age = int(attributes["max-age"])
    lifetime = (login.absolute_expires_at - login.created_at).total_seconds()
    assert lifetime - 60 <= max_age <= lifetime


@pytest.mark.parametrize("settings_overrides", [{"cookie_secure": True}])
async def test_the_provider_cookie_is_secure_when_cookies_are(api: Api) -> None:
    user = await api.user()
    response = await api.client.post(SESSION, headers=user.headers)
    assert "secure" in cookie_attributes(response.headers["set-cookie"])


async def test_the_provider_cookie_needs_a_first_party_bearer(api: Api) -> None:
    assert_envelope(await api.client.post(SESSION), 401, "UNAUTHORIZED")
    assert await browser_sessions(api.runtime) == []


async def test_an_oauth_access_token_is_no_first_party_bearer(api: Api, rp: Client) -> None:
    """A token issued to a client (audience: the client, no session) opens none of the
    client app's routes."""
    user = await api.user()
    key = api.runtime.tokens.key
    now = int(utcnow().timestamp())
    claims = {
        "iss": ISSUER,
        "sub": str(user.id),
        "aud": rp["client_id"],
        "client_id": rp["client_id"],
        "scope": "openid",
        "gid": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    token = jwt.encode(
        claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": "at+jwt"}
    )
    headers = {"Authorization": f"Bearer {token}"}
    assert_envelope(await api.client.post(SESSION, headers=headers), 401, "UNAUTHORIZED")
    query = query_of(authorize_params(rp))
    consented = await api.client.post(CONSENT, json={"query": query}, headers=headers)
    assert_envelope(consented, 401, "UNAUTHORIZED")
    assert await browser_sessions(api.runtime) == []


async def test_the_consent_screen_shows_the_app_and_the_new_scopes(api: Api, rp: Client) -> None:
    user = await api.user()
    first = authorize_params(rp, scope="openid profile")
    response = await api.client.get(f"{CONSENT}?{query_of(first)}", headers=user.headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "client": {"client_id": rp["client_id"], "name": "Acme CRM", "logo_url": None},
        "scopes": ["openid", "profile"],
        "new_scopes": ["openid", "profile"],
        "redirect_uri": CALLBACK,
    }
    allowed = await api.client.post(CONSENT, json={"query": query_of(first)}, headers=user.headers)
    assert allowed.status_code == 200
    more = authorize_params(rp, scope="openid email profile")
    response = await api.client.get(f"{CONSENT}?{query_of(more)}", headers=user.headers)
    assert response.json()["new_scopes"] == ["email"]


async def test_allowing_records_the_consent_and_goes_back_to_authorize(
    api: Api, rp: Client
) -> None:
    user = await api.user()
    await sign_in_browser(api, user)
    params = authorize_params(rp, prompt="consent login", scope="openid email")
    response = await api.client.post(
        CONSENT, json={"query": query_of(params)}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    redirect_to = response.json()["redirect_to"]
    assert redirect_to.startswith("/oauth2/authorize?")
    back = {k: v[0] for k, v in parse_qs(urlsplit(redirect_to).query).items()}
    assert back == {**params, "prompt": "login"}
    async with api.runtime.db.session(write=False) as session:
        stored = await ConsentRepository(session).get(user.id, uuid_of(rp))
    assert stored is not None
    assert stored.scopes == ["email", "openid"]
    (row,) = await audit_rows(api.runtime, "oauth.consent")
    assert (row.actor_id, row.target_type, row.target_id) == (user.id, "client", rp["id"])
    assert row.details == {"client_id": rp["client_id"], "scopes": ["openid", "email"]}
    # Without prompt=consent, authorize now answers with a code.
    plain = {k: v for k, v in params.items() if k != "prompt"}
    base, query = location(await authorize(api, plain))
    assert (base, "code" in query) == (CALLBACK, True)


async def test_the_consent_binds_the_browser_to_the_account_that_said_yes(
    api: Api, rp: Client
) -> None:
    first = await api.user()
    second = await api.user()
    await sign_in_browser(api, first)
    params = authorize_params(rp)
    response = await api.client.post(
        CONSENT, json={"query": query_of(params)}, headers=second.headers
    )
    assert response.status_code == 200
    base, _ = location(await authorize(api, params))
    assert base == CALLBACK
    (grant,) = await grants(api.runtime)
    assert grant.user_id == second.id


def uuid_of(client: Client) -> uuid.UUID:
    return uuid.UUID(client["id"])


async def test_denying_sends_access_denied_back_to_the_client(api: Api, rp: Client) -> None:
    user = await api.user()
    params = authorize_params(rp, redirect_uri="https://app.example.com/cb?tenant=7")
    response = await api.client.post(
        f"{CONSENT}/deny", json={"query": query_of(params)}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    target = urlsplit(response.json()["redirect_to"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == "https://app.example.com/cb"
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query["error"] == "access_denied"
    assert query["state"] == params["state"]
    assert query["iss"] == ISSUER
    assert query["tenant"] == "7"
    (row,) = await audit_rows(api.runtime, "oauth.consent_denied")
    assert (row.actor_id, row.target_id) == (user.id, rp["id"])
    async with api.runtime.db.session(write=False) as session:
        assert await ConsentRepository(session).get(user.id, uuid_of(rp)) is None


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"redirect_uri": "https://evil.example.com/cb"}, "invalid_request"),
        ({"client_id": "gh_nobodynobodynobodynob"}, "invalid_client"),
        ({"scope": "openid roles"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
    ],
)
async def test_an_invalid_request_is_refused_by_every_consent_route(
    api: Api, rp: Client, changes: dict[str, str], error: str
) -> None:
    user = await api.user()
    query = query_of(authorize_params(rp, **changes))
    answers = [
        await api.client.get(f"{CONSENT}?{query}", headers=user.headers),
        await api.client.post(CONSENT, json={"query": query}, headers=user.headers),
        await api.client.post(f"{CONSENT}/deny", json={"query": query}, headers=user.headers),
    ]
    for answer in answers:
        body = assert_envelope(answer, 400, "OAUTH_REQUEST_INVALID")
        assert body["details"] == {"error": error}
        assert "evil.example.com" not in answer.text
    assert await audit_rows(api.runtime, "oauth.consent") == []


async def test_a_cross_site_form_cannot_consent_with_the_cookie_alone(api: Api, rp: Client) -> None:
    """CSRF: the browser's cookies travel with a forged request, an Authorization
    header does not; without it, nothing is recorded."""
    user = await api.user()
    await sign_in_browser(api, user)
    query = query_of(authorize_params(rp))
    form = await api.client.post(
        CONSENT,
        content=f"query={query}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code in (401, 415)
    json = await api.client.post(CONSENT, json={"query": query})
    assert_envelope(json, 401, "UNAUTHORIZED")
    denied = await api.client.post(f"{CONSENT}/deny", json={"query": query})
    assert_envelope(denied, 401, "UNAUTHORIZED")
    async with api.runtime.db.session(write=False) as session:
        assert await ConsentRepository(session).get(user.id, uuid_of(rp)) is None


async def test_the_consent_body_is_checked(api: Api) -> None:
    user = await api.user()
    for body in ({}, {"query": ""}, {"query": "x", "extra": 1}, {"query": "x" * 8193}):
        response = await api.client.post(CONSENT, json=body, headers=user.headers)
        assert_envelope(response, 400, "VALIDATION_ERROR")
