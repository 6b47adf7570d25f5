"""/api/v1/users/me/connected-apps: the applications a person lets log them in, and
removing one (its consent is forgotten, its grants revoked at once)."""

from __future__ import annotations

import uuid
from typing import Any

from gatehouse.clients.repository import ConsentRepository
from gatehouse.kit.time import utcnow
from gatehouse.oidc.repository import GrantRepository
from tests.factories import Account, Api, assert_envelope
from tests.oidc.conftest import (
    APPS,
    audit_rows,
    authorize,
    authorize_params,
    code_for,
    grants,
    location,
    sign_in_browser,
)

Client = dict[str, Any]


async def exchanged(api: Api, user: Account) -> None:
    """Every code of the user's marked used, as the token endpoint does."""
    async with api.runtime.db.session() as session:
        repository = GrantRepository(session)
        for grant in await grants(api.runtime, user.id):
            await repository.spend_code(grant.id, utcnow())


async def test_the_list_has_consented_apps_and_first_party_apps_in_use(
    api: Api, rp: Client, first_party: Client
) -> None:
    user = await api.user()
    someone = await api.user()
    await code_for(api, user, authorize_params(rp, scope="openid email"))
    await sign_in_browser(api, user)
    base, _ = location(await authorize(api, authorize_params(first_party, scope="openid")))
    assert base == first_party["redirect_uris"][0]
    # A code nobody exchanged gave the first-party app nothing yet.
    listed = await api.client.get(APPS, headers=user.headers)
    assert [app["client_id"] for app in listed.json()] == [rp["client_id"]]

    await exchanged(api, user)
    listed = await api.client.get(APPS, headers=user.headers)
    assert listed.status_code == 200
    apps = {app["client_id"]: app for app in listed.json()}
    assert set(apps) == {rp["client_id"], first_party["client_id"]}
    assert apps[rp["client_id"]]["scopes"] == ["email", "openid"]
    assert apps[rp["client_id"]]["name"] == "Acme CRM"
    assert apps[first_party["client_id"]]["scopes"] == ["openid"]
    assert set(apps[rp["client_id"]]) == {
        "client_id",
        "name",
        "logo_url",
        "scopes",
        "granted_at",
        "updated_at",
    }
    assert (await api.client.get(APPS, headers=someone.headers)).json() == []


async def test_removing_an_app_forgets_the_consent_and_revokes_its_grants(
    api: Api, rp: Client
) -> None:
    user = await api.user()
    await code_for(api, user, authorize_params(rp, scope="openid offline_access"))
    await exchanged(api, user)
    response = await api.client.delete(f"{APPS}/{rp['client_id']}", headers=user.headers)
    assert response.status_code == 204
    async with api.runtime.db.session(write=False) as session:
        assert await ConsentRepository(session).get(user.id, uuid.UUID(rp["id"])) is None
    (grant,) = await grants(api.runtime, user.id)
    assert (grant.revoked_at is not None, grant.revoked_reason) == (True, "consent_revoked")
    assert (await api.client.get(APPS, headers=user.headers)).json() == []
    (row,) = await audit_rows(api.runtime, "oauth.consent_revoke")
    assert (row.actor_id, row.target_type, row.target_id) == (user.id, "client", rp["id"])
    assert row.details == {"client_id": rp["client_id"], "grants_revoked": 1}
    # Next time, the app asks again.
    base, _ = location(await authorize(api, authorize_params(rp)))
    assert base == "/consent"

    again = await api.client.delete(f"{APPS}/{rp['client_id']}", headers=user.headers)
    assert_envelope(again, 404, "CLIENT_NOT_FOUND")
    unknown = await api.client.delete(f"{APPS}/gh_nobodyhere", headers=user.headers)
    assert_envelope(unknown, 404, "CLIENT_NOT_FOUND")


async def test_connected_apps_are_yours_only(api: Api, rp: Client) -> None:
    assert_envelope(await api.client.get(APPS), 401, "UNAUTHORIZED")
    user = await api.user()
    other = await api.user()
    await code_for(api, user, authorize_params(rp))
    response = await api.client.delete(f"{APPS}/{rp['client_id']}", headers=other.headers)
    assert_envelope(response, 404, "CLIENT_NOT_FOUND")
    (grant,) = await grants(api.runtime, user.id)
    assert grant.revoked_at is None
