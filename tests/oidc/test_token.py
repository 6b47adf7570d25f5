"""POST /oauth2/token, authorization_code and refresh_token: the code is spent once,
bound to its client, redirect URI and PKCE verifier; refresh tokens rotate, and a spent
one presented again ends the grant. Client authentication: Basic, post, or none."""

from __future__ import annotations

import base64
from typing import Any

import jwt
import pytest
from sqlalchemy import select

from gatehouse.audit.models import AuditEvent
from gatehouse.kit.time import utcnow
from gatehouse.oidc import protocol
from gatehouse.oidc.repository import GrantRepository
from gatehouse.runtime import Runtime
from tests.factories import Api
from tests.oidc.token_support import (
    TOKEN,
    Code,
    assert_oauth_error,
    change_password,
    code_form,
    exchange,
    expire_code,
    grant_id_of,
    grant_row,
    issue_code,
    make_client,
    make_public_client,
    post_form,
    refresh,
    set_client_enabled,
    userinfo,
)


async def audit_actions(runtime: Runtime, action_prefix: str = "oauth.") -> list[AuditEvent]:
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action.startswith(action_prefix))
            .order_by(AuditEvent.id)
        )
        return list(rows.all())


async def test_a_code_is_exchanged_for_tokens_once(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    code = await issue_code(api, rp, user)
    response = await post_form(api, TOKEN, code_form(code), rp)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "id_token",
        "refresh_token",
    }
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == api.runtime.settings.auth.access_token_ttl_seconds
    assert body["scope"] == "openid profile email offline_access"
    assert body["refresh_token"].startswith("ghrt_")
    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["kid"] == api.runtime.tokens.key.kid
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["iss"] == protocol.issuer(api.runtime.settings)
    assert claims["sub"] == str(user.id)
    assert claims["aud"] == claims["client_id"] == rp.client_id
    assert claims["scope"] == "openid profile email offline_access"
    assert claims["gid"] == str(code.grant_id)
    assert claims["amr"] == ["pwd"]
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert "sid" not in claims
    assert "ver" not in claims
    assert (await userinfo(api, body["access_token"])).status_code == 200

    rows = [row for row in await audit_actions(api.runtime) if row.action == "oauth.token"]
    assert [(r.outcome, r.target_id) for r in rows] == [("success", str(rp.pk))]
    assert rows[0].details["grant_type"] == "authorization_code"
    assert rows[0].details["grant_id"] == str(code.grant_id)


async def test_a_reused_code_fails_and_kills_what_the_first_exchange_issued(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    code = await issue_code(api, rp, user)
    first = (await post_form(api, TOKEN, code_form(code), rp)).json()
    again = await post_form(api, TOKEN, code_form(code), rp)
    assert_oauth_error(again, 400, "invalid_grant")
    grant = await grant_row(api.runtime, code.grant_id)
    assert grant.revoked_reason == "code_reused"
    assert (await userinfo(api, first["access_token"])).status_code == 401
    assert_oauth_error(await refresh(api, rp, first["refresh_token"]), 400, "invalid_grant")
    actions = [(r.action, r.outcome, r.reason) for r in await audit_actions(api.runtime)]
    assert ("oauth.code_reused", "failure", "code_reused") in actions


async def _refused(api: Api, rp: Any, form: dict[str, str], error: str = "invalid_grant") -> None:
    assert_oauth_error(await post_form(api, TOKEN, form, rp), 400, error)


async def test_the_code_is_bound_to_redirect_uri_verifier_client_and_time(api: Api) -> None:
    rp = await make_client(api.runtime)
    other = await make_client(api.runtime)
    user = await api.user()
    code = await issue_code(api, rp, user)
    await _refused(api, rp, code_form(code, redirect_uri="https://rp.example.com/other"))
    await _refused(api, rp, code_form(code, redirect_uri=None), "invalid_request")
    await _refused(api, rp, code_form(code, code_verifier=None), "invalid_request")
    await _refused(api, rp, code_form(code, code_verifier="short"), "invalid_request")
    await _refused(api, rp, code_form(code, code_verifier="A" * 43))
    await _refused(api, other, code_form(code))
    await _refused(api, rp, code_form(code, code="ghac_" + "x" * 43))
    await _refused(api, rp, code_form(code, code=None), "invalid_request")
    # None of these spent the code: the right request still works...
    assert (await post_form(api, TOKEN, code_form(code), rp)).status_code == 200
    # ...and an expired one never does.
    late = await issue_code(api, rp, user)
    await expire_code(api.runtime, late.grant_id)
    await _refused(api, rp, code_form(late))
    assert (await grant_row(api.runtime, late.grant_id)).code_used_at is None
    reasons = {r.reason for r in await audit_actions(api.runtime) if r.outcome == "failure"}
    assert {"redirect_uri_mismatch", "pkce_failed", "other_client", "unknown_code"} <= reasons
    assert "code_expired" in reasons


async def test_a_disabled_client_cannot_exchange_its_code(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    code = await issue_code(api, rp, user)
    await set_client_enabled(api.runtime, rp, False)
    assert_oauth_error(await post_form(api, TOKEN, code_form(code), rp), 401, "invalid_client")
    await set_client_enabled(api.runtime, rp, True)
    assert (await post_form(api, TOKEN, code_form(code), rp)).status_code == 200


async def test_a_user_deleted_before_the_exchange_gets_nothing(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    code = await issue_code(api, rp, user)
    assert (await api.client.delete("/api/v1/users/me", headers=user.headers)).status_code == 204
    await _refused(api, rp, code_form(code))


async def test_a_user_deleted_mid_session_ends_every_token(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    body = await exchange(api, rp, user)
    assert (await api.client.delete("/api/v1/users/me", headers=user.headers)).status_code == 204
    assert (await userinfo(api, body["access_token"])).status_code == 401
    assert_oauth_error(await refresh(api, rp, body["refresh_token"]), 400, "invalid_grant")
    check = await post_form(api, protocol.INTROSPECTION_PATH, {"token": body["access_token"]}, rp)
    assert check.json() == {"active": False}


async def test_a_password_change_ends_every_token(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    body = await exchange(api, rp, user)
    pending = await issue_code(api, rp, user)
    await change_password(api, user)
    assert (await userinfo(api, body["access_token"])).status_code == 401
    assert_oauth_error(await refresh(api, rp, body["refresh_token"]), 400, "invalid_grant")
    await _refused(api, rp, code_form(pending))


async def test_refresh_rotates_and_a_reused_token_revokes_the_grant(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    first = await exchange(api, rp, user)
    second = await refresh(api, rp, first["refresh_token"])
    assert second.status_code == 200, second.text
    assert second.headers["cache-control"] == "no-store"
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["scope"] == "openid profile email offline_access"
    id_claims = jwt.decode(rotated["id_token"], options={"verify_signature": False})
    assert "nonce" not in id_claims
    assert (await userinfo(api, rotated["access_token"])).status_code == 200

    # The first token again: a replay. The grant ends, with every token of it.
    assert_oauth_error(await refresh(api, rp, first["refresh_token"]), 400, "invalid_grant")
    grant = await grant_row(api.runtime, await grant_id_of(first["access_token"]))
    assert grant.revoked_reason == "refresh_reused"
    assert (await userinfo(api, rotated["access_token"])).status_code == 401
    assert_oauth_error(await refresh(api, rp, rotated["refresh_token"]), 400, "invalid_grant")
    actions = [(r.action, r.reason) for r in await audit_actions(api.runtime)]
    assert ("oauth.refresh_reused", "refresh_reused") in actions


async def test_refresh_tokens_only_with_offline_access_and_the_grant_type(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    online = await exchange(api, rp, user, "openid profile")
    assert "refresh_token" not in online
    no_refresh = await make_client(
        api.runtime, scopes=["openid", "profile"], grant_types=["authorization_code"]
    )
    body = await exchange(api, no_refresh, user, "openid profile")
    assert "refresh_token" not in body
    # A refresh token of one client is nothing to another.
    offline = await exchange(api, rp, user)
    other = await make_client(api.runtime)
    assert_oauth_error(await refresh(api, other, offline["refresh_token"]), 400, "invalid_grant")
    refused = await refresh(api, no_refresh, offline["refresh_token"])
    assert_oauth_error(refused, 400, "unauthorized_client")
    assert (await refresh(api, rp, offline["refresh_token"])).status_code == 200


async def test_refresh_may_narrow_the_scope_never_widen_it(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    body = await exchange(api, rp, user, "openid email offline_access")
    wider = await refresh(api, rp, body["refresh_token"], scope="openid profile")
    assert_oauth_error(wider, 400, "invalid_scope")
    narrowed = await refresh(api, rp, body["refresh_token"], scope="openid")
    assert narrowed.status_code == 200, narrowed.text
    tokens = narrowed.json()
    assert tokens["scope"] == "openid"
    info = (await userinfo(api, tokens["access_token"])).json()
    assert info == {"sub": str(user.id)}
    # The grant keeps its scopes: the next refresh may ask for all of them again.
    again = await refresh(api, rp, tokens["refresh_token"])
    assert again.json()["scope"] == "openid email offline_access"


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def test_client_authentication_basic_post_and_none(api: Api) -> None:
    rp = await make_client(api.runtime)
    spa = await make_public_client(api.runtime)
    user = await api.user()
    assert rp.secret is not None
    for auth in ("basic", "post"):
        code = await issue_code(api, rp, user)
        assert (await post_form(api, TOKEN, code_form(code), rp, auth=auth)).status_code == 200
    code = await issue_code(api, spa, user, "openid profile")
    assert (await post_form(api, TOKEN, code_form(code), spa, auth="none")).status_code == 200

    code = await issue_code(api, rp, user)
    form = code_form(code)
    # Both at once: refused, whatever they say.
    both = await api.client.post(TOKEN, data={**form, "client_secret": rp.secret}, headers=rp.basic)
    assert_oauth_error(both, 400, "invalid_request")
    wrong = await api.client.post(TOKEN, data=form, headers=_basic(rp.client_id, "wrong"))
    assert_oauth_error(wrong, 401, "invalid_client")
    assert wrong.headers["www-authenticate"].startswith("Basic")
    in_body = await api.client.post(
        TOKEN, data={**form, "client_id": rp.client_id, "client_secret": "wrong"}
    )
    assert_oauth_error(in_body, 401, "invalid_client")
    assert "www-authenticate" not in in_body.headers
    # A confidential client without its secret, and no client at all.
    alone = await api.client.post(TOKEN, data={**form, "client_id": rp.client_id})
    assert_oauth_error(alone, 401, "invalid_client")
    assert_oauth_error(await api.client.post(TOKEN, data=form), 401, "invalid_client")
    # A public client sending a secret is refused, in the body or in Basic.
    spa_code = await issue_code(api, spa, user, "openid profile")
    spa_form = code_form(spa_code)
    with_secret = await api.client.post(
        TOKEN, data={**spa_form, "client_id": spa.client_id, "client_secret": "anything"}
    )
    assert_oauth_error(with_secret, 401, "invalid_client")
    basic = await api.client.post(TOKEN, data=spa_form, headers=_basic(spa.client_id, "x"))
    assert_oauth_error(basic, 401, "invalid_client")
    # Basic's parts are form-urlencoded (RFC 6749 §2.3.1): an encoded id still matches.
    encoded = rp.client_id.replace("_", "%5F")
    ok = await api.client.post(TOKEN, data=form, headers=_basic(encoded, rp.secret))
    assert ok.status_code == 200, ok.text
    reasons = [r.reason for r in await audit_actions(api.runtime) if r.outcome == "failure"]
    assert "invalid_client" in reasons


# Refused while the form is read, before any database work: SQLite only.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        ("grant_type=password&username=a&password=b", None, "unsupported_grant_type"),
        ("code=x", None, "invalid_request"),
        ("grant_type=authorization_code&grant_type=refresh_token", None, "invalid_request"),
        ('{"grant_type": "client_credentials"}', "application/json", "invalid_request"),
        ("grant_type=%ff%fe", None, "invalid_request"),
        ("\x00\x01", None, "invalid_request"),
        ("&".join(f"k{i}=v" for i in range(100)), None, "invalid_request"),
    ],
)
async def test_malformed_requests_are_oauth_errors_never_500(
    api: Api, body: str, content_type: str | None, error: str
) -> None:
    rp = await make_client(api.runtime)
    headers = {
        **rp.basic,
        "Content-Type": content_type or "application/x-www-form-urlencoded",
    }
    response = await api.client.post(TOKEN, content=body.encode(), headers=headers)
    assert_oauth_error(response, 400, error)


async def test_credentials_in_the_url_are_refused(api: Api) -> None:
    rp = await make_client(api.runtime)
    response = await api.client.post(
        f"{TOKEN}?client_secret={rp.secret}",
        data={"grant_type": "client_credentials"},
        headers=rp.basic,
    )
    assert_oauth_error(response, 400, "invalid_request")
    for bad in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer x"):
        answer = await api.client.post(
            TOKEN, data={"grant_type": "client_credentials"}, headers={"Authorization": bad}
        )
        assert answer.status_code in (400, 401), answer.text
        assert answer.json()["error"] in ("invalid_client", "invalid_request")


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "rate_limit_enabled": True,
            "rate_limit_oauth_token": "3/minute",
            "rate_limit_anonymous": "1/minute",
        }
    ],
)
async def test_the_token_endpoint_counts_per_client(api: Api) -> None:
    """Three calls a minute per client here; another client, and the first-party API's
    per-address bucket (1 a minute here), are not touched by them."""
    rp = await make_client(api.runtime, grant_types=["client_credentials"], scopes=["roles"])
    other = await make_client(api.runtime, grant_types=["client_credentials"], scopes=["roles"])
    form = {"grant_type": "client_credentials"}
    for _ in range(3):
        assert (await post_form(api, TOKEN, form, rp)).status_code == 200
    limited = await post_form(api, TOKEN, form, rp)
    assert_oauth_error(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["x-ratelimit-limit"] == "3"
    assert (await post_form(api, TOKEN, form, other)).status_code == 200
    # A stranger naming the client spends nothing of its budget (counted by address).
    stranger = await api.client.post(
        TOKEN, data={**form, "client_id": other.client_id, "client_secret": "guess"}
    )
    assert_oauth_error(stranger, 401, "invalid_client")
    assert (await post_form(api, TOKEN, form, other)).status_code == 200


async def test_oauth_access_tokens_are_refused_by_the_first_party_api(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    body = await exchange(api, rp, user)
    for token in (body["access_token"], body["id_token"]):
        response = await api.client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, response.text
    # And the other way round: a first-party token is no OAuth access token.
    assert (await userinfo(api, user.access_token)).status_code == 401


async def test_a_code_of_a_revoked_grant_is_refused(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    code: Code = await issue_code(api, rp, user)
    async with api.runtime.unit_of_work() as uow:
        await GrantRepository(uow.session).revoke(code.grant_id, utcnow(), "test")
    await _refused(api, rp, code_form(code))


GARBAGE_BODIES = [
    b"",
    b"token",
    b"token=",
    b"=x&&&==",
    b"token=%zz&grant_type=%",
    b"\xff\xfe\xfd",
    b"grant_type=refresh_token&refresh_token=" + b"A" * 5000,
    b"grant_type=authorization_code&code=ghac_x&redirect_uri=x&code_verifier=" + b"~" * 43,
    b"grant_type=client_credentials&scope=" + "ü".encode() * 50,
    b'{"token": 1}',
]
GARBAGE_AUTH = [
    None,
    "Basic",
    "Basic =",
    "Basic " + base64.b64encode(b":").decode(),
    "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
    "Basic " + base64.b64encode(("x" * 5000 + ":y").encode()).decode(),
    "Bearer eyJhbGciOiJub25lIn0.e30.",
    "Negotiate abc",
]


async def test_garbage_at_every_endpoint_is_answered_in_oauth_json(api: Api) -> None:
    paths = [TOKEN, protocol.REVOCATION_PATH, protocol.INTROSPECTION_PATH, protocol.USERINFO_PATH]
    answered = 0
    for path in paths:
        for body in GARBAGE_BODIES:
            for auth in GARBAGE_AUTH:
                headers = {"Content-Type": "application/x-www-form-urlencoded"}
                if auth is not None:
                    headers["Authorization"] = auth
                response = await api.client.post(path, content=body, headers=headers)
                where = (path, body[:40], auth and auth[:40])
                assert 400 <= response.status_code < 500, (*where, response.text)
                assert set(response.json()) == {"error", "error_description"}, where
                answered += 1
    assert answered == len(paths) * len(GARBAGE_BODIES) * len(GARBAGE_AUTH)
