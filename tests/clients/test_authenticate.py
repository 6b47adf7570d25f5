"""ClientService.authenticate, as the token endpoint will call it: the right secret
passes, everything else is the one `invalid_client` refusal."""

from __future__ import annotations

import uuid

import pytest

from gatehouse.clients.errors import InvalidClient
from gatehouse.clients.models import OAuthClient
from gatehouse.clients.schemas import ClientCreate
from gatehouse.clients.service import AuthMethod, ClientService, Issued
from gatehouse.runtime import Runtime
from tests.clients.conftest import spa, web_app

BASIC, POST, NONE = AuthMethod.client_secret_basic, AuthMethod.client_secret_post, AuthMethod.none


async def make(runtime: Runtime, body: dict[str, object]) -> Issued:
    async with runtime.unit_of_work() as uow:
        return await ClientService(uow).create(ClientCreate.model_validate(body))


async def authenticate(
    runtime: Runtime, client_id: str, secret: str | None, method: AuthMethod
) -> OAuthClient:
    async with runtime.unit_of_work(write=False) as uow:
        return await ClientService(uow).authenticate(client_id, secret, method)


async def refused(
    runtime: Runtime, client_id: str, secret: str | None, method: AuthMethod
) -> InvalidClient:
    with pytest.raises(InvalidClient) as caught:
        await authenticate(runtime, client_id, secret, method)
    return caught.value


async def set_enabled(runtime: Runtime, client: OAuthClient, enabled: bool) -> None:
    async with runtime.unit_of_work() as uow:
        await ClientService(uow).set_enabled(client.id, enabled, None)


async def test_a_confidential_client_passes_with_its_secret_only(runtime: Runtime) -> None:
    issued = await make(runtime, web_app())
    client_id, secret = issued.client.client_id, issued.secret
    assert secret is not None
    for method in (BASIC, POST):
        assert (await authenticate(runtime, client_id, secret, method)).id == issued.client.id

    cases: list[tuple[str, str | None, AuthMethod]] = [
        (client_id, secret[:-1] + ("A" if secret[-1] != "A" else "B"), POST),  # one character
        (client_id, secret + "x", POST),
        (client_id, "", POST),
        (client_id, None, POST),
        (client_id, None, NONE),  # a confidential client must prove itself
        (client_id, secret, NONE),
        ("gh_" + "x" * 22, secret, POST),  # unknown
        ("x" * 10_000, secret, POST),
        (str(issued.client.id), secret, POST),  # the row id is not the client id
    ]
    for given_id, given_secret, method in cases:
        error = await refused(runtime, given_id, given_secret, method)
        assert (error.status, error.code, error.oauth_error) == (
            401,
            "INVALID_CLIENT",
            "invalid_client",
        )
        assert "WWW-Authenticate" not in error.headers
    # HTTP Basic gets its challenge (RFC 6749 §5.2); the message names no reason.
    basic = await refused(runtime, client_id, "wrong", BASIC)
    assert basic.headers == {"WWW-Authenticate": 'Basic realm="gatehouse"'}
    unknown = await refused(runtime, "gh_unknown", "wrong", BASIC)
    assert (unknown.message, unknown.headers) == (basic.message, basic.headers)


async def test_a_disabled_client_is_refused_even_with_its_secret(runtime: Runtime) -> None:
    issued = await make(runtime, web_app())
    public = (await make(runtime, spa())).client
    await set_enabled(runtime, issued.client, False)
    await set_enabled(runtime, public, False)
    await refused(runtime, issued.client.client_id, issued.secret, POST)
    await refused(runtime, public.client_id, None, NONE)
    await set_enabled(runtime, issued.client, True)
    assert await authenticate(runtime, issued.client.client_id, issued.secret, POST)


async def test_a_public_client_passes_without_a_secret_and_is_refused_with_one(
    runtime: Runtime,
) -> None:
    public = (await make(runtime, spa())).client
    assert (await authenticate(runtime, public.client_id, None, NONE)).id == public.id
    # A secret where none exists is a misconfigured client or a probe: never ignored.
    for secret, method in (("anything", NONE), ("anything", POST), ("anything", BASIC)):
        await refused(runtime, public.client_id, secret, method)
    await refused(runtime, public.client_id, None, POST)


async def test_a_rotated_secret_replaces_the_old_one_at_once(runtime: Runtime) -> None:
    issued = await make(runtime, web_app())
    async with runtime.unit_of_work() as uow:
        rotated = await ClientService(uow).rotate_secret(issued.client.id, None)
    assert rotated.secret is not None
    assert rotated.secret != issued.secret
    await refused(runtime, issued.client.client_id, issued.secret, BASIC)
    assert await authenticate(runtime, issued.client.client_id, rotated.secret, BASIC)


async def test_an_operator_finds_a_client_by_either_id(runtime: Runtime) -> None:
    client = (await make(runtime, spa())).client
    async with runtime.unit_of_work(write=False) as uow:
        service = ClientService(uow)
        assert (await service.find(str(client.id))).id == client.id
        assert (await service.find(client.client_id)).id == client.id
        with pytest.raises(Exception, match="not found"):
            await service.find(str(uuid.uuid4()))
