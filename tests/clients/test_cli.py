"""`gatehouse clients ...` through Typer's CliRunner, on the test's own database: the
command goes through the service, so its rules, audit rows and events are the API's."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from gatehouse.audit.models import AuditEvent
from gatehouse.cli import main as cli
from gatehouse.clients.errors import InvalidClient
from gatehouse.clients.service import AuthMethod, ClientService
from gatehouse.config import get_settings
from gatehouse.runtime import Runtime
from tests.clients.conftest import outbox_events
from tests.service_support import seal

Gatehouse = Callable[..., Awaitable[Result]]


@pytest.fixture
def gatehouse(
    runtime: Runtime,
    database_url: str,
    tmp_path: Path,
    signing_key_pem: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Gatehouse]:
    """`gatehouse` as an operator runs it, on the database and data dir (so the audit
    key) of this test's runtime, which empties the tables afterwards."""
    del runtime
    for name, value in {
        "GATEHOUSE_ENV": "test",
        "GATEHOUSE_DATA_DIR": str(tmp_path),
        "GATEHOUSE_DATABASE_URL": database_url,
        "GATEHOUSE_JWT_PRIVATE_KEY": signing_key_pem,
        "GATEHOUSE_BCRYPT_ROUNDS": "4",
        # A wide terminal: lines are read whole.
        "COLUMNS": "200",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()

    def command(args: list[str]) -> Result:
        return CliRunner().invoke(cli.app, ["clients", *args])

    async def invoke(*args: str) -> Result:
        # The command runs an event loop of its own: on a thread, away from the test's.
        return await asyncio.to_thread(command, list(args))

    yield invoke
    get_settings.cache_clear()


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


async def authenticate(runtime: Runtime, client_id: str, secret: str) -> str:
    async with runtime.unit_of_work(write=False) as uow:
        client = await ClientService(uow).authenticate(
            client_id, secret, AuthMethod.client_secret_basic
        )
    return str(client.id)


async def test_create_list_rotate_disable(gatehouse: Gatehouse, runtime: Runtime) -> None:
    created = json.loads(
        ok(
            await gatehouse(
                "create", "--name", "Acme CRM", "--type", "confidential",
                "--redirect-uri", "https://app.example.com/cb",
                "--redirect-uri", "http://127.0.0.1:8765/cb",
                "--scope", "openid", "--scope", "offline_access",
                "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                "--trusted", "--json",
            )
        )
    )  # fmt: skip
    assert created["redirect_uris"] == ["https://app.example.com/cb", "http://127.0.0.1:8765/cb"]
    assert (created["trusted"], created["created_by"]) == (True, None)
    secret = created["client_secret"]
    assert await authenticate(runtime, created["client_id"], secret) == created["id"]

    # A name is printed as typed, never read as console markup.
    text = ok(
        await gatehouse(
            "create", "--name", "[bold]SPA[/]", "--type", "public",
            "--redirect-uri", "http://localhost:5173/cb",
            "--scope", "openid", "--grant-type", "authorization_code",
        )
    )  # fmt: skip
    assert "Client '[bold]SPA[/]' (public, enabled)" in text
    assert re.search(r"client_id: +gh_[\w-]{22}\n", text)
    assert "client_secret" not in text

    listed = ok(await gatehouse("list"))
    assert "2 client(s)" in listed
    assert created["client_id"] in listed
    as_json = json.loads(ok(await gatehouse("list", "--json")))
    assert [c["name"] for c in as_json] == ["[bold]SPA[/]", "Acme CRM"]
    assert all("client_secret" not in c for c in as_json)
    assert secret not in listed + json.dumps(as_json)

    rotated = ok(await gatehouse("rotate-secret", created["client_id"]))
    new_secret = re.search(r"client_secret: +(ghcs_[\w-]{43})\n", rotated)
    assert new_secret is not None
    assert await authenticate(runtime, created["client_id"], new_secret[1]) == created["id"]
    with pytest.raises(InvalidClient):
        await authenticate(runtime, created["client_id"], secret)
    public = await gatehouse("rotate-secret", as_json[0]["id"])
    assert public.exit_code == 1
    assert "A public client has no secret to rotate" in " ".join(public.output.split())

    disabled = ok(await gatehouse("disable", created["id"]))
    assert f"Client {created['client_id']} (Acme CRM) is disabled" in disabled
    with pytest.raises(InvalidClient):
        await authenticate(runtime, created["client_id"], new_secret[1])
    enabled = json.loads(ok(await gatehouse("enable", created["client_id"], "--json")))
    assert enabled["enabled"] is True

    assert [e["event_type"] for e in await outbox_events(runtime)] == [
        "client.created",
        "client.created",
        "client.updated",
        "client.updated",
    ]
    await seal(runtime)
    async with runtime.db.session(write=False) as session:
        rows = (await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all()
    writes = [(r.action, r.actor_role) for r in rows if r.target_id == created["id"]]
    assert writes == [
        ("client.create", "system"),
        ("client.rotate_secret", "system"),
        ("client.disable", "system"),
        ("client.enable", "system"),
    ]
    assert not any(secret in repr(vars(r)) or new_secret[1] in repr(vars(r)) for r in rows)


async def test_refusals_are_one_line_and_exit_1(gatehouse: Gatehouse) -> None:
    refused = await gatehouse(
        "create", "--name", "Leaky", "--type", "public",
        "--redirect-uri", "http://app.example.com/cb",
        "--scope", "openid", "--grant-type", "authorization_code",
    )  # fmt: skip
    assert refused.exit_code == 1
    # One message, however the terminal wraps it.
    assert "Invalid input (redirect_uris.0: must use https" in " ".join(refused.output.split())
    grants = await gatehouse(
        "create", "--name", "Machine", "--type", "public",
        "--scope", "roles", "--grant-type", "client_credentials",
    )  # fmt: skip
    assert grants.exit_code == 1
    message = " ".join(grants.output.split())
    assert "grant_types: client_credentials needs a confidential client" in message
    unknown = await gatehouse("disable", "gh_nobody")
    assert unknown.exit_code == 1
    assert "Client 'gh_nobody' not found" in unknown.output
    assert json.loads(ok(await gatehouse("list", "--json"))) == []
