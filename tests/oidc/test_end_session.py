"""GET|POST /oauth2/end_session: RP-initiated logout. The login session ends (and its
grants without offline_access), the cookie goes, and the browser returns to the client
only to a post-logout URI registered for it; without a hint, the person confirms."""

from __future__ import annotations

import re
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from gatehouse.oidc import protocol
from tests.factories import Account, Api, assert_envelope
from tests.oidc.conftest import (
    BYE,
    END_SESSION,
    ISSUER,
    audit_rows,
    authorize,
    authorize_params,
    browser_sessions,
    code_for,
    grants,
    id_token,
    location,
    login_session,
    session_id,
    sign_in_browser,
)

Client = dict[str, Any]
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def cleared(response: httpx.Response) -> bool:
    return any(
        value.startswith(f"{protocol.BROWSER_COOKIE}=;") and "Max-Age=0" in value
        for value in response.headers.get_list("set-cookie")
    )


async def ended(api: Api, user: Account) -> bool:
    login = await login_session(api.runtime, session_id(user))
    return login.revoked_at is not None


async def test_a_hint_and_a_registered_uri_end_the_session_and_return_with_state(
    api: Api, rp: Client
) -> None:
    user = await api.user()
    await code_for(api, user, authorize_params(rp, scope="openid"))
    await code_for(api, user, authorize_params(rp, scope="openid offline_access"))
    hint = id_token(api.runtime, sub=str(user.id), aud=rp["client_id"], expired=True)
    response = await api.client.get(
        END_SESSION,
        params={"id_token_hint": hint, "post_logout_redirect_uri": BYE, "state": "s 1"},
    )
    base, query = location(response)
    assert (base, query) == (BYE, {"state": "s 1"})
    assert cleared(response)
    assert response.headers["cache-control"] == "no-store"

    login = await login_session(api.runtime, session_id(user))
    assert login.revoked_reason == "oidc_logout"
    assert await browser_sessions(api.runtime) == []
    online, offline = await grants(api.runtime, user.id)
    assert (online.revoked_at is not None, online.revoked_reason) == (True, "oidc_logout")
    assert offline.revoked_at is None
    # The first-party session is over too: its refresh token no longer works.
    refresh = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}
    )
    assert_envelope(refresh, 400, "INVALID_GRANT")
    (row,) = await audit_rows(api.runtime, "oauth.logout")
    assert (row.actor_id, row.target_type, row.target_id) == (user.id, "user", str(user.id))
    assert row.details == {"session_id": str(login.id), "grants_revoked": 1}
    # The browser is signed out of the provider: authorize sends it to the login page.
    base, _ = location(await authorize(api, authorize_params(rp)))
    assert base == "/login"


async def test_an_unregistered_post_logout_uri_is_not_followed(api: Api, rp: Client) -> None:
    user = await api.user()
    await sign_in_browser(api, user)
    hint = id_token(api.runtime, sub=str(user.id), aud=rp["client_id"])
    for uri, client_id in (
        ("https://evil.example.com/bye", None),
        (BYE, "gh_someotherclientxxxxxx"),  # disagrees with the hint
    ):
        params = {"id_token_hint": hint, "post_logout_redirect_uri": uri, "state": "x"}
        if client_id:
            params["client_id"] = client_id
        response = await api.client.get(END_SESSION, params=params)
        assert response.status_code == 200
        assert "location" not in response.headers
        assert "Signed out" in response.text
        assert "evil.example.com" not in response.text
        assert response.headers["content-type"].startswith("text/html")
    assert await ended(api, user)


async def test_without_a_hint_the_person_confirms_with_a_form_bound_to_the_cookie(
    api: Api, rp: Client
) -> None:
    user = await api.user()
    await sign_in_browser(api, user)
    state = '"><script>alert(1)</script>'
    params = {"post_logout_redirect_uri": BYE, "client_id": rp["client_id"], "state": state}
    page = await api.client.get(END_SESSION, params=params)
    assert page.status_code == 200
    assert not cleared(page)
    assert "<script>" not in page.text
    assert "&quot;&gt;&lt;script&gt;" in page.text
    assert f'action="{END_SESSION}"' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert not await ended(api, user)
    match = CSRF.search(page.text)
    assert match is not None
    form = {**params, "csrf": match.group(1)}

    forged = await api.client.post(END_SESSION, data={**form, "csrf": "0" * 64})
    assert forged.status_code == 400
    assert "location" not in forged.headers
    missing = await api.client.post(END_SESSION, data=params)
    assert missing.status_code == 400
    assert not await ended(api, user)

    confirmed = await api.client.post(END_SESSION, data=form)
    base, query = location(confirmed)
    assert (base, query) == (BYE, {"state": state})
    assert cleared(confirmed)
    assert await ended(api, user)


async def test_a_hint_for_someone_else_or_not_ours_asks_first(api: Api, rp: Client) -> None:
    user = await api.user()
    await sign_in_browser(api, user)
    other = id_token(api.runtime, sub=str((await api.create_user()).id), aud=rp["client_id"])
    stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {"iss": ISSUER, "sub": str(user.id), "aud": rp["client_id"]},
        stranger_key,
        algorithm="RS256",
        headers={"kid": api.runtime.tokens.key.kid},
    )
    for hint in (other, forged, "not-a-jwt"):
        page = await api.client.get(END_SESSION, params={"id_token_hint": hint})
        assert page.status_code == 200
        assert CSRF.search(page.text) is not None, hint
    assert not await ended(api, user)
    # Confirmed, the browser still goes where the (verified) hint's client registered.
    page = await api.client.get(
        END_SESSION, params={"id_token_hint": other, "post_logout_redirect_uri": BYE}
    )
    assert f'name="client_id" value="{rp["client_id"]}"' in page.text
    match = CSRF.search(page.text)
    assert match is not None
    fields = {"client_id": rp["client_id"], "post_logout_redirect_uri": BYE}
    confirmed = await api.client.post(END_SESSION, data={**fields, "csrf": match.group(1)})
    assert location(confirmed) == (BYE, {})
    assert await ended(api, user)


async def test_without_a_session_there_is_nothing_to_confirm(api: Api, rp: Client) -> None:
    params = {"post_logout_redirect_uri": BYE, "client_id": rp["client_id"], "state": "z"}
    base, query = location(await api.client.get(END_SESSION, params=params))
    assert (base, query) == (BYE, {"state": "z"})
    page = await api.client.post(END_SESSION)
    assert page.status_code == 200
    assert "Signed out" in page.text
    assert await audit_rows(api.runtime, "oauth.logout") == []


async def test_a_relying_party_may_post_the_logout_with_its_hint(api: Api, rp: Client) -> None:
    user = await api.user()
    await sign_in_browser(api, user)
    hint = id_token(api.runtime, sub=str(user.id), aud=rp["client_id"])
    response = await api.client.post(
        END_SESSION, data={"id_token_hint": hint, "post_logout_redirect_uri": BYE}
    )
    base, query = location(response)
    assert (base, query) == (BYE, {})
    assert await ended(api, user)
