"""client_credentials (RFC 6749 §4.4): a confidential client acting as itself."""

from __future__ import annotations

import uuid

import jwt

from tests.factories import Api
from tests.oidc.token_support import (
    TOKEN,
    assert_oauth_error,
    grant_row,
    introspect,
    make_client,
    make_public_client,
    post_form,
    userinfo,
)

FORM = {"grant_type": "client_credentials"}


async def test_a_machine_client_gets_an_access_token_of_its_own(api: Api) -> None:
    rp = await make_client(
        api.runtime, grant_types=["client_credentials"], scopes=["roles"], redirect_uris=[]
    )
    response = await post_form(api, TOKEN, FORM, rp, auth="post")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["scope"] == "roles"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == claims["client_id"] == claims["aud"] == rp.client_id
    assert "auth_time" not in claims
    grant = await grant_row(api.runtime, uuid.UUID(claims["gid"]))
    assert grant.user_id is None
    assert grant.grant_type == "client_credentials"
    info = await introspect(api, rp, body["access_token"])
    assert info["active"] is True
    assert info["sub"] == rp.client_id
    # Not a person: userinfo has nobody to describe.
    assert_oauth_error(await userinfo(api, body["access_token"]), 401, "invalid_token")
    # An explicit scope within the client's own, or none at all.
    narrow = await post_form(api, TOKEN, {**FORM, "scope": "roles"}, rp)
    assert narrow.json()["scope"] == "roles"


async def test_user_scopes_and_unregistered_clients_are_refused(api: Api) -> None:
    rp = await make_client(
        api.runtime,
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
    )
    for scope in ("openid", "profile", "email", "offline_access", "roles admin"):
        refused = await post_form(api, TOKEN, {**FORM, "scope": scope}, rp)
        assert_oauth_error(refused, 400, "invalid_scope")
    assert (await post_form(api, TOKEN, FORM, rp)).json()["scope"] == "roles"
    code_only = await make_client(api.runtime)
    assert_oauth_error(await post_form(api, TOKEN, FORM, code_only), 400, "unauthorized_client")
    public = await make_public_client(api.runtime)
    refused = await post_form(api, TOKEN, FORM, public, auth="none")
    assert_oauth_error(refused, 400, "unauthorized_client")
