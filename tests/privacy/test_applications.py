"""GDPR-01 and GDPR-04 for the OpenID provider: the export lists the applications a
user logged in to (consented scopes, each authorization; never a code or token), and
the erasure leaves none of them behind."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import time_machine
from sqlalchemy import func, select

from gatehouse.clients.repository import ConsentRepository
from gatehouse.kit.time import utcnow
from gatehouse.oidc import protocol
from gatehouse.oidc.models import OAuthGrant, OAuthRefreshToken
from gatehouse.oidc.repository import GrantRepository
from gatehouse.privacy.service import purge_erased
from gatehouse.users.models import Role
from tests.factories import Api
from tests.privacy.support import Person, person, user_row

CLIENTS = "/api/v1/clients"


async def _logged_in_to_an_app(api: Api, subject: Person) -> dict[str, Any]:
    admin = await api.user("admin")
    body = {
        "name": "Acme CRM",
        "type": "confidential",
        "redirect_uris": ["https://crm.example.com/callback"],
        "scopes": ["openid", "email", "offline_access"],
        "grant_types": ["authorization_code", "refresh_token"],
    }
    created = await api.client.post(CLIENTS, json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    client: dict[str, Any] = created.json()
    client_pk = uuid.UUID(client["id"])
    now = utcnow()
    async with api.runtime.db.session() as session:
        await ConsentRepository(session).grant(subject.id, client_pk, ["openid", "email"], now)
        grant, _ = protocol.new_code_grant(
            client_pk=client_pk,
            user_id=subject.id,
            session_id=None,
            auth_version=1,
            auth_time=now,
            amr=["pwd"],
            scopes=["openid", "email", "offline_access"],
            redirect_uri=body["redirect_uris"][0],
            code_challenge="x" * 43,
            nonce=None,
            now=now,
        )
        grants = GrantRepository(session)
        grants.add(grant)
        await session.flush()
        grants.add_refresh_token(
            OAuthRefreshToken(
                token_hash=protocol.digest(protocol.new_refresh_token()),
                grant_id=grant.id,
                expires_at=now + timedelta(days=1),
            )
        )
    return client


async def test_the_export_lists_the_applications_without_a_secret(api: Api) -> None:
    subject = await person(api)
    client = await _logged_in_to_an_app(api, subject)
    response = await api.client.get("/api/v1/users/me/export", headers=subject.account.headers)
    assert response.status_code == 200, response.text
    [app] = response.json()["applications"]
    assert app["client_id"] == client["client_id"]
    assert app["name"] == "Acme CRM"
    assert app["consented_scopes"] == ["email", "openid"]
    assert app["consented_at"] is not None
    [grant] = app["grants"]
    assert grant["scopes"] == ["openid", "email", "offline_access"]
    assert grant["revoked_at"] is None
    text = response.text
    assert "ghac_" not in text
    assert "ghrt_" not in text


async def test_erasure_removes_consents_grants_and_refresh_tokens(api: Api) -> None:
    runtime = api.runtime
    subject = await person(api, Role.user)
    await _logged_in_to_an_app(api, subject)
    response = await api.client.delete("/api/v1/users/me", headers=subject.account.headers)
    assert response.status_code == 204
    deleted_at = (await user_row(runtime, subject.id)).deleted_at
    assert deleted_at is not None
    with time_machine.travel(deleted_at + timedelta(days=30, seconds=1), tick=False):
        assert await purge_erased(runtime) == 1
    async with runtime.db.session(write=False) as session:
        grants = await session.scalar(
            select(func.count()).select_from(OAuthGrant).where(OAuthGrant.user_id == subject.id)
        )
        tokens = await session.scalar(select(func.count()).select_from(OAuthRefreshToken))
        consents = await ConsentRepository(session).list(subject.id)
    assert (grants, tokens, list(consents)) == (0, 0, [])
