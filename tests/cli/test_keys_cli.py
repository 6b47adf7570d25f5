"""`gatehouse keys rotate-encryption`, as an operator runs it: after an upgrade (secrets
saved in clear get encrypted), after removing a key too early (a clear refusal), and
after putting a new key first (everything moves to it)."""

from __future__ import annotations

import base64
import secrets
import stat
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gatehouse.keys.ring import KEY_FILE
from gatehouse.kit.encryption import KeyRing
from gatehouse.runtime import Runtime
from gatehouse.webhooks.models import WebhookSubscription
from gatehouse.webhooks.schemas import WebhookCreate
from gatehouse.webhooks.service import WebhookService
from gatehouse.webhooks.signing import new_secret, unseal
from tests.cli.test_cli import Cli, cli

__all__ = ["cli"]

# The command reads the whole column the same way on both backends; its SQL is covered
# on PostgreSQL by tests/webhooks/test_secrets_at_rest.py.
pytestmark = pytest.mark.parametrize("cli", ["sqlite"], indirect=True)


async def stored(cli: Cli) -> dict[uuid.UUID, str]:
    engine = create_async_engine(cli.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT id, secret FROM webhook_subscriptions"))
            return {uuid.UUID(str(key)): str(secret) for key, secret in rows.all()}
    finally:
        await engine.dispose()


async def test_rotate_encryption_encrypts_moves_and_refuses_clearly(cli: Cli) -> None:
    await cli.migrated()
    # The embedded default: a key generated into the data dir on first start; one
    # subscription under it, and one saved in clear by a version before encryption.
    runtime = Runtime.create(cli.settings())
    try:
        async with runtime.unit_of_work() as uow:
            service = WebhookService(uow, runtime.settings.worker, runtime.encryption)
            issued = await service.create(
                WebhookCreate(url="https://hooks.example.com/a", event_types=["*"])
            )
        legacy_secret = new_secret()
        async with runtime.db.session() as session:
            legacy = WebhookSubscription(
                url="https://hooks.example.com/b", event_types=["*"], secret=legacy_secret
            )
            session.add(legacy)
        (generated,) = runtime.encryption.kids
    finally:
        await runtime.close()
    key_file = cli.data_dir / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    given = {issued.subscription.id: issued.secret, legacy.id: legacy_secret}

    upgraded = await cli.ok("keys", "rotate-encryption")
    assert (
        "webhook_subscriptions.secret: 0 re-encrypted, 1 encrypted (were in clear), 0 failed"
        in upgraded.out
    )
    assert f"Every stored secret is under key '{generated}'." in upgraded.out
    assert all(value.startswith(f"v1.{generated}.") for value in (await stored(cli)).values())

    # A new key only, the generated one dropped before rotating: refused, nothing lost.
    new_entry = f"2026:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    before = await stored(cli)
    cli.env["GATEHOUSE_ENCRYPTION_KEYS"] = new_entry
    refused = await cli.run("keys", "rotate-encryption")
    assert refused.code == 1, refused.out
    assert "webhook_subscriptions.secret: 2 value(s) cannot be decrypted" in refused.out
    assert f"key '{generated}' is not in GATEHOUSE_ENCRYPTION_KEYS" in refused.out
    assert "Traceback" not in refused.out
    assert not any(value in refused.out for value in before.values())
    assert await stored(cli) == before

    # The new key first, the old one after it: everything moves; the old one can go.
    cli.env["GATEHOUSE_ENCRYPTION_KEYS"] = f"{new_entry}\n{key_file.read_text()}"
    moved = await cli.ok("keys", "rotate-encryption", "--batch-size", "1")
    assert "2 re-encrypted, 0 encrypted (were in clear), 0 failed" in moved.out
    assert "Every stored secret is under key '2026'." in moved.out
    only_new = KeyRing.from_text(new_entry)
    for key, value in (await stored(cli)).items():
        assert value.startswith("v1.2026.")
        assert unseal(only_new, key, value) == given[key]

    wrong = await cli.run("keys", "rotate-encryption", "--batch-size", "0")
    assert wrong.code == 2
    assert "--batch-size" in wrong.out
