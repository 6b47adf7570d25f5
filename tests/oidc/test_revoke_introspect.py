"""POST /oauth2/revoke (RFC 7009) and POST /oauth2/introspect (RFC 7662): a client sees
and ends its own tokens only."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from gatehouse.audit.models import AuditEvent
from gatehouse.kit.time import utcnow
from gatehouse.oidc import protocol
from gatehouse.oidc.models import OAuthBrowserSession, OAuthGrant, OAuthRefreshToken
from gatehouse.oidc.tasks import cleanup
from tests.factories import Api
from tests.oidc.token_support import (
    INTROSPECT,
    REVOKE,
    TOKEN,
    assert_oauth_error,
    code_form,
    exchange,
    grant_id_of,
    grant_row,
    introspect,
    issue_code,
    make_client,
    make_public_client,
    post_form,
    refresh,
    session_of,
    userinfo,
)


async def test_revoking_a_refresh_token_ends_the_grant(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    body = await exchange(api, rp, user)
    response = await post_form(api, REVOKE, {"token": body["refresh_token"]}, rp)
    assert response.status_code == 200, response.text
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"
    assert (await userinfo(api, body["access_token"])).status_code == 401
    assert_oauth_error(await refresh(api, rp, body["refresh_token"]), 400, "invalid_grant")
    grant = await grant_row(api.runtime, await grant_id_of(body["access_token"]))
    assert grant.revoked_reason == "client_revoked"
    async with api.runtime.db.session(write=False) as session:
        rows = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "oauth.revoke"))
        ).all()
    assert [(r.target_id, r.details["grant_id"]) for r in rows] == [(str(rp.pk), str(grant.id))]


async def test_revoking_an_access_token_ends_the_grant(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    body = await exchange(api, rp, user)
    form = {"token": body["access_token"], "token_type_hint": "access_token"}
    assert (await post_form(api, REVOKE, form, rp, auth="post")).status_code == 200
    assert (await userinfo(api, body["access_token"])).status_code == 401
    assert_oauth_error(await refresh(api, rp, body["refresh_token"]), 400, "invalid_grant")


async def test_another_clients_or_an_unknown_token_is_a_quiet_200(api: Api) -> None:
    rp = await make_client(api.runtime)
    other = await make_client(api.runtime)
    user = await api.user()
    body = await exchange(api, rp, user)
    for token in (body["refresh_token"], body["access_token"], "ghrt_unknown", "junk"):
        answer = await post_form(api, REVOKE, {"token": token}, other)
        assert answer.status_code == 200, answer.text
    assert (await userinfo(api, body["access_token"])).status_code == 200
    # A wrong hint is only a hint.
    form = {"token": body["refresh_token"], "token_type_hint": "access_token"}
    assert (await post_form(api, REVOKE, form, rp)).status_code == 200
    assert (await userinfo(api, body["access_token"])).status_code == 401


async def test_revocation_needs_client_authentication_and_a_token(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    body = await exchange(api, rp, user)
    anonymous = await api.client.post(REVOKE, data={"token": body["refresh_token"]})
    assert_oauth_error(anonymous, 401, "invalid_client")
    assert_oauth_error(await post_form(api, REVOKE, {}, rp), 400, "invalid_request")
    assert (await userinfo(api, body["access_token"])).status_code == 200
    # A public client revokes its own tokens with its client_id alone.
    spa = await make_public_client(api.runtime)
    code = await issue_code(api, spa, user, "openid profile")
    tokens = (await post_form(api, TOKEN, code_form(code), spa, auth="none")).json()
    answer = await post_form(api, REVOKE, {"token": tokens["access_token"]}, spa, auth="none")
    assert answer.status_code == 200
    assert (await userinfo(api, tokens["access_token"])).status_code == 401


async def test_introspection_describes_the_clients_own_live_tokens(api: Api) -> None:
    rp = await make_client(api.runtime)
    other = await make_client(api.runtime)
    user = await api.user()
    body = await exchange(api, rp, user)
    access = await introspect(api, rp, body["access_token"])
    assert access["active"] is True
    assert access["token_type"] == "Bearer"
    assert access["client_id"] == rp.client_id
    assert access["sub"] == str(user.id)
    assert access["scope"] == "openid profile email offline_access"
    assert access["iss"] == protocol.issuer(api.runtime.settings)
    assert access["exp"] > access["iat"]
    refresh_info = await introspect(api, rp, body["refresh_token"])
    assert refresh_info["active"] is True
    assert refresh_info["token_type"] == "refresh_token"
    assert refresh_info["sub"] == str(user.id)
    # Another client's view, a first-party token, an ID token, garbage: inactive.
    for token in (body["access_token"], body["refresh_token"]):
        assert await introspect(api, other, token) == {"active": False}
    for token in (user.access_token, body["id_token"], "garbage", "ghrt_nothing"):
        assert await introspect(api, rp, token) == {"active": False}
    # A spent refresh token is inactive; the new one is active.
    rotated = (await refresh(api, rp, body["refresh_token"])).json()
    assert await introspect(api, rp, body["refresh_token"]) == {"active": False}
    assert (await introspect(api, rp, rotated["refresh_token"]))["active"] is True
    # Revoked: everything inactive.
    await post_form(api, REVOKE, {"token": rotated["refresh_token"]}, rp)
    for token in (rotated["access_token"], rotated["refresh_token"], body["access_token"]):
        assert await introspect(api, rp, token) == {"active": False}
    anonymous = await api.client.post(INTROSPECT, data={"token": rotated["access_token"]})
    assert_oauth_error(anonymous, 401, "invalid_client")


async def test_cleanup_forgets_what_nothing_can_use(api: Api) -> None:
    rp = await make_client(api.runtime)
    machine = await make_client(api.runtime, grant_types=["client_credentials"], scopes=["roles"])
    user = await api.user()
    live = await exchange(api, rp, user)
    revoked = await exchange(api, rp, user)
    await post_form(api, REVOKE, {"token": revoked["refresh_token"]}, rp)
    unused = await issue_code(api, rp, user)
    fresh_unused = await issue_code(api, rp, user)
    assert (
        await post_form(api, protocol.TOKEN_PATH, {"grant_type": "client_credentials"}, machine)
    ).status_code == 200
    day_ago = utcnow() - timedelta(days=2)
    revoked_id = await grant_id_of(revoked["access_token"])
    async with api.runtime.db.session() as session:
        await session.execute(
            update(OAuthGrant)
            .where(OAuthGrant.id == unused.grant_id)
            .values(code_expires_at=day_ago)
        )
        await session.execute(
            update(OAuthGrant).where(OAuthGrant.id == revoked_id).values(revoked_at=day_ago)
        )
        await session.execute(
            update(OAuthGrant)
            .where(OAuthGrant.oauth_client_id == machine.pk)
            .values(created_at=day_ago)
        )
        session.add(
            OAuthBrowserSession(
                token_hash="a" * 64, session_id=session_of(user), expires_at=day_ago
            )
        )
        session.add(
            OAuthBrowserSession(
                token_hash="b" * 64,
                session_id=session_of(user),
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
    await cleanup(api.runtime)
    async with api.runtime.db.session(write=False) as session:
        grants = set((await session.scalars(select(OAuthGrant.id))).all())
        browsers = set((await session.scalars(select(OAuthBrowserSession.token_hash))).all())
        tokens = (await session.scalars(select(OAuthRefreshToken.grant_id))).all()
    live_id = await grant_id_of(live["access_token"])
    assert grants == {live_id, fresh_unused.grant_id}
    assert browsers == {"b" * 64}
    assert set(tokens) == {live_id}
    assert (await userinfo(api, live["access_token"])).status_code == 200
