"""The consents repository: what each user allowed each client, for the consent screen."""

from __future__ import annotations

from datetime import timedelta

from gatehouse.clients.repository import ConsentRepository
from gatehouse.clients.schemas import ClientCreate
from gatehouse.clients.service import ClientService
from gatehouse.kit.time import utcnow
from gatehouse.runtime import Runtime
from tests.clients.conftest import spa, web_app
from tests.factories import Api


async def test_grant_adds_scopes_list_reads_them_revoke_forgets(api: Api) -> None:
    runtime: Runtime = api.runtime
    alice = await api.create_user(email="alice@example.com")
    bob = await api.create_user(email="bob@example.com")
    async with runtime.unit_of_work() as uow:
        crm = (await ClientService(uow).create(ClientCreate.model_validate(web_app()))).client
        app = (await ClientService(uow).create(ClientCreate.model_validate(spa()))).client
    start = utcnow()
    async with runtime.db.session() as session:
        consents = ConsentRepository(session)
        first = await consents.grant(alice.id, crm.id, ["openid", "profile"], start)
        assert (first.scopes, first.granted_at, first.updated_at) == (
            ["openid", "profile"],
            start,
            start,
        )
        later = start + timedelta(minutes=5)
        # Asking again for some of the same and one more: added, never taken away.
        merged = await consents.grant(alice.id, crm.id, ["email", "openid"], later)
        assert merged.scopes == ["email", "openid", "profile"]
        assert (merged.granted_at, merged.updated_at) == (start, later)
        unchanged = await consents.grant(
            alice.id, crm.id, ["profile"], later + timedelta(minutes=10)
        )
        assert unchanged.updated_at == later
        await consents.grant(alice.id, app.id, ["openid"], later + timedelta(minutes=1))
        await consents.grant(bob.id, crm.id, ["openid"], later)

    async with runtime.db.session(write=False) as session:
        listed = await ConsentRepository(session).list(alice.id)
        assert [(client.name, consent.scopes) for consent, client in listed] == [
            ("Acme SPA", ["openid"]),
            ("Acme CRM", ["email", "openid", "profile"]),
        ]
        assert (await ConsentRepository(session).get(bob.id, app.id)) is None

    async with runtime.db.session() as session:
        consents = ConsentRepository(session)
        assert await consents.revoke(alice.id, crm.id) is True
        assert await consents.revoke(alice.id, crm.id) is False
    async with runtime.db.session(write=False) as session:
        consents = ConsentRepository(session)
        assert [c.name for _, c in await consents.list(alice.id)] == ["Acme SPA"]
        assert (await consents.get(bob.id, crm.id)) is not None


async def test_deleting_a_client_removes_its_consents(api: Api) -> None:
    runtime: Runtime = api.runtime
    user = await api.create_user()
    async with runtime.unit_of_work() as uow:
        client = (await ClientService(uow).create(ClientCreate.model_validate(spa()))).client
    async with runtime.db.session() as session:
        await ConsentRepository(session).grant(user.id, client.id, ["openid"], utcnow())
    async with runtime.unit_of_work() as uow:
        await ClientService(uow).delete(client.id, None)
    async with runtime.db.session(write=False) as session:
        assert await ConsentRepository(session).list(user.id) == []
