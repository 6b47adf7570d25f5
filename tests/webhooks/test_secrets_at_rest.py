"""Webhook signing secrets encrypted at rest, on SQLite and PostgreSQL.

The column holds a key ring token, never the secret; deliveries still verify (with the
`standardwebhooks` package, at a real HTTP receiver) with the secret the subscriber was
given; a token copied into another row does not sign; a row saved in clear before
encryption still signs and is encrypted by the key rotation, which moves every secret
to a new first key so the old key can be removed.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import String, select, text

from gatehouse.audit.models import AuditEvent
from gatehouse.keys.service import ACTION, rotate_encryption
from gatehouse.kit.encryption import KeyRing
from gatehouse.runtime import Runtime
from gatehouse.webhooks.attempts import UNDECRYPTABLE
from gatehouse.webhooks.models import WebhookSubscription
from gatehouse.webhooks.schemas import WebhookCreate
from gatehouse.webhooks.service import WebhookService
from gatehouse.webhooks.signing import new_secret, seal
from gatehouse.worker.embedded import InProcessRunner
from tests.conftest import make_settings
from tests.factories import Account, Api
from tests.http_receiver import HttpReceiver
from tests.logs import LogCapture
from tests.webhooks.conftest import WEBHOOKS, deliveries_of, subscribe
from tests.webhooks.test_delivery import create_user, verified


def entry(kid: str) -> str:
    return f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


OLD, NEW = entry("old"), entry("new")
WEBHOOK_SETTINGS: dict[str, Any] = {
    "webhook_allow_private_targets": True,
    "webhook_retry_schedule": [0],
    "webhook_timeout_seconds": 5.0,
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The serving process knows the new key only: the old one has been rotated out.
    return {**WEBHOOK_SETTINGS, "encryption_keys": NEW}


async def stored_secret(runtime: Runtime, webhook_id: str | uuid.UUID) -> str:
    """The column as the database holds it, read with plain SQL."""
    async with runtime.db.session(write=False) as session:
        rows = (await session.execute(text("SELECT id, secret FROM webhook_subscriptions"))).all()
    wanted = uuid.UUID(str(webhook_id))
    (value,) = [secret for key, secret in rows if uuid.UUID(str(key)) == wanted]
    return str(value)


async def test_the_column_holds_a_token_and_deliveries_verify_with_the_given_secret(
    api: Api, admin: Account, runner: InProcessRunner, receiver: HttpReceiver
) -> None:
    hook = await subscribe(api, admin, receiver.url, "user.created")
    given = hook["secret"]
    stored = await stored_secret(api.runtime, hook["id"])
    assert given.startswith("whsec_")
    assert stored.startswith("v1.new.")
    assert given not in stored
    assert given.removeprefix("whsec_") not in stored

    read = await api.client.get(f"{WEBHOOKS}/{hook['id']}", headers=admin.headers)
    listed = await api.client.get(WEBHOOKS, headers=admin.headers)
    for body in (read.text, listed.text):
        assert "secret" not in body
        assert stored not in body

    await create_user(api, admin)
    await runner.drain()
    (request,) = await receiver.wait_for(1)
    assert verified(given, request)["event_type"] == "user.created"

    rotated = await api.client.post(f"{WEBHOOKS}/{hook['id']}/rotate-secret", headers=admin.headers)
    assert rotated.status_code == 200, rotated.text
    fresh = rotated.json()["secret"]
    restored = await stored_secret(api.runtime, hook["id"])
    assert restored.startswith("v1.new.")
    assert restored != stored
    assert fresh not in restored
    await create_user(api, admin, "joe@example.com")
    await runner.drain()
    _, second = await receiver.wait_for(2)
    assert verified(fresh, second)["data"]["email"] == "joe@example.com"


async def test_a_token_copied_into_another_row_signs_nothing(
    api: Api,
    admin: Account,
    runner: InProcessRunner,
    receiver: HttpReceiver,
    json_logs: LogCapture,
) -> None:
    base = receiver.url.removesuffix("/hook")
    first = await subscribe(api, admin, f"{base}/first", "user.created")
    second = await subscribe(api, admin, f"{base}/second", "user.created")
    async with api.runtime.db.session() as session:
        row = await session.get(WebhookSubscription, uuid.UUID(second["id"]))
        assert row is not None
        row.secret = await stored_secret(api.runtime, first["id"])

    await create_user(api, admin)
    await runner.drain()

    (request,) = await receiver.wait_for(1)
    assert request.path == "/first"
    verified(first["secret"], request)
    deliveries = await deliveries_of(api.runtime, second["id"])
    assert [(d.status, d.last_status_code, d.last_error) for d in deliveries] == [
        ("failed", None, UNDECRYPTABLE)
    ]
    assert [r.path for r in receiver.requests] == ["/first"]  # nothing went out unsigned
    # The operator's log names the key and the row; never the token or the secret.
    failures = [r for r in json_logs.records() if r.get("event") == "encryption.decrypt_failed"]
    assert failures
    assert {(r["kid"], r["context"]) for r in failures} == {
        ("new", f"webhook.secret:{second['id']}")
    }
    assert first["secret"] not in json_logs.text()
    assert "v1.new." not in json_logs.text()


async def test_rotation_moves_every_secret_to_the_new_key(
    api: Api,
    admin: Account,
    runner: InProcessRunner,
    receiver: HttpReceiver,
    database_url: str,
    tmp_path: Path,
    signing_key_pem: str,
) -> None:
    def runtime_with(keys: str) -> Runtime:
        settings = make_settings(
            database_url, tmp_path, signing_key_pem, **WEBHOOK_SETTINGS, encryption_keys=keys
        )
        return Runtime.create(settings)

    # Yesterday: three subscriptions under the old key, and one saved in clear before
    # secrets were encrypted.
    base = receiver.url.removesuffix("/hook")
    given: dict[str, str] = {}
    before = runtime_with(OLD)
    try:
        async with before.unit_of_work() as uow:
            service = WebhookService(uow, before.settings.worker, before.encryption)
            for name in ("a", "b", "c"):
                hook = await service.create(
                    WebhookCreate(url=f"{base}/{name}", event_types=["user.created"])
                )
                given[f"/{name}"] = hook.secret
        legacy = WebhookSubscription(
            id=uuid.uuid4(), url=f"{base}/legacy", event_types=["*"], secret=new_secret()
        )
        given["/legacy"] = legacy.secret
        async with before.db.session() as session:
            session.add(legacy)
    finally:
        await before.close()
    versions = await row_versions(api.runtime)

    # Today: the new key first, the old one after it; rotate, two rows per transaction.
    both = runtime_with(f"{NEW},{OLD}")
    try:
        rotation = await rotate_encryption(both, batch_size=2)
        again = await rotate_encryption(both, batch_size=2)
    finally:
        await both.close()
    counts, totp = rotation.columns  # no TOTP secret stored here
    assert (counts.reencrypted, counts.encrypted, counts.failures) == (3, 1, 0)
    assert counts.batches == 3  # 2 + 2 + an empty one that ends the walk
    assert (totp.label, totp.reencrypted, totp.failures) == ("mfa_totp.secret", 0, 0)
    for idle in again.columns:
        assert (idle.reencrypted, idle.encrypted, idle.failures) == (0, 0, 0)
    for webhook_id in versions:
        assert (await stored_secret(api.runtime, webhook_id)).startswith("v1.new.")
    # The same secret, wrapped anew: no version (ETag) or `updated_at` change, so an
    # admin's If-Match still holds.
    assert await row_versions(api.runtime) == versions

    audited = await audit_rows(api.runtime)
    assert [(r.outcome, r.actor_role, r.target_type) for r in audited] == [
        ("success", "system", None),
        ("success", "system", None),
    ]
    assert audited[0].details == {
        "key_id": "new",
        "batch_size": 2,
        "columns": {
            "webhook_subscriptions.secret": {"reencrypted": 3, "encrypted": 1, "failed": 0},
            "mfa_totp.secret": {"reencrypted": 0, "encrypted": 0, "failed": 0},
        },
    }

    # Tomorrow: the old key is gone (this app's ring has the new one only); every
    # subscriber still verifies with the secret it was given.
    await create_user(api, admin)
    await runner.drain()
    requests = await receiver.wait_for(4)
    assert sorted(r.path for r in requests) == sorted(given)
    for request in requests:
        assert verified(given[request.path], request)["event_type"] == "user.created"


async def test_a_clear_legacy_row_still_signs(
    api: Api, admin: Account, runner: InProcessRunner, receiver: HttpReceiver
) -> None:
    secret = new_secret()
    async with api.runtime.db.session() as session:
        session.add(
            WebhookSubscription(url=receiver.url, event_types=["user.created"], secret=secret)
        )
    await create_user(api, admin)
    await runner.drain()
    (request,) = await receiver.wait_for(1)
    assert verified(secret, request)["event_type"] == "user.created"


async def row_versions(runtime: Runtime) -> dict[uuid.UUID, tuple[int, datetime]]:
    """Each subscription's version (its ETag) and `updated_at`."""
    async with runtime.db.session(write=False) as session:
        rows = await session.execute(
            select(
                WebhookSubscription.id,
                WebhookSubscription.version,
                WebhookSubscription.updated_at,
            )
        )
        return {key: (version, updated) for key, version, updated in rows.all()}


async def audit_rows(runtime: Runtime) -> list[AuditEvent]:
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == ACTION).order_by(AuditEvent.id)
        )
        return list(rows)


def test_an_encrypted_secret_fits_the_column_it_always_had() -> None:
    """No migration: the longest token (a 16-character kid) fits `secret`'s VARCHAR."""
    longest_kid = KeyRing.from_text(entry("k" * 16))
    token = seal(longest_kid, uuid.uuid4(), new_secret())
    column_type = WebhookSubscription.__table__.c.secret.type
    assert isinstance(column_type, String)
    assert len(token) == 124
    assert column_type.length is not None
    assert len(token) <= column_type.length
