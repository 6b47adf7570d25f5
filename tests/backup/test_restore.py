"""A backup taken while the service answers requests brings everything back after the
database is lost: on SQLite and on PostgreSQL, through the real `gatehouse` command.

Seeded first: users, sessions, audit rows, outbox events nobody published yet. Then
`gatehouse backup` runs while a loop of API requests writes, the database is destroyed
(dropped and created empty; the file deleted), and `gatehouse restore` brings it back:
every table holds what the manifest says, no row seen before the backup is missing or
changed, the audit chain verifies, the pending events are published exactly once, and
tokens issued before the backup still work.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from gatehouse.app import create_app
from gatehouse.audit.sealer import seal_pending
from gatehouse.audit.service import verify_chain
from gatehouse.backup import service
from gatehouse.db import migrate
from gatehouse.kit.jobs import LeftForSweep
from gatehouse.runtime import Runtime
from tests.backup.support import COUNTERS, Site, table_rows
from tests.events.consumer import EventConsumer
from tests.events.support import outbox_rows, relay_all, relay_until_published
from tests.factories import PASSWORD, Account, Api

USERS = "/api/v1/users"
# Bounds the loop of requests whatever the backup's speed.
MAX_ROUNDS = 150


@asynccontextmanager
async def serving(site: Site, **overrides: Any) -> AsyncIterator[Api]:
    """The app over httpx on the site's database; jobs wait for a sweep (none runs)."""
    runtime = Runtime.create(site.settings(**overrides))
    runtime.use_jobs(LeftForSweep())
    app = create_app(runtime=runtime)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client, runtime)
    finally:
        await runtime.close()


async def seed(api: Api) -> tuple[Account, Account]:
    """An admin, users made through the API (each a pending user.created event),
    sessions, a failed login; every audit row sealed into the chain."""
    admin = await api.user("admin")
    for n in range(3):
        created = await api.client.post(
            USERS,
            json={"email": f"seeded-{n}@example.com", "name": f"Seeded {n}", "password": PASSWORD},
            headers=admin.headers,
        )
        assert created.status_code == 201, created.text
    alice = await api.user(email="alice.backup@example.com")
    await api.login(alice)  # a second session
    refused = await api.client.post(
        "/api/v1/auth/token", json={"username": alice.email, "password": "not-her-password"}
    )
    assert refused.status_code == 401
    await seal_pending(api.runtime.db, api.runtime.audit_key)
    return admin, alice


async def serve_while(api: Api, admin: Account, stop: asyncio.Event) -> int:
    """Writes and reads until told to stop; how many requests were answered."""
    answered = 0
    for n in range(MAX_ROUNDS):
        if stop.is_set():
            break
        created = await api.client.post(
            USERS,
            json={"email": f"busy-{n}-{uuid.uuid4().hex[:6]}@example.com", "name": "Busy",
                  "password": PASSWORD},
            headers=admin.headers,
        )  # fmt: skip
        assert created.status_code == 201, created.text
        me = await api.client.get(f"{USERS}/me", headers=admin.headers)
        assert me.status_code == 200, me.text
        answered += 2
        # Leaves the backup process some of this machine's two cores.
        await asyncio.sleep(0.02)
    return answered


async def test_a_backup_taken_while_serving_restores_everything(
    site: Site, broker_overrides: dict[str, Any]
) -> None:
    await site.migrated()
    archives = site.data_dir / "archives"
    async with serving(site) as api:
        admin, alice = await seed(api)
        before = await table_rows(api.runtime.db)
        pending_before = {row.event_id for row in await outbox_rows(api.runtime)}
        assert len(pending_before) >= 4

        stop = asyncio.Event()
        loop = asyncio.create_task(serve_while(api, admin, stop))
        try:
            made = await site.ok("backup", "--dir", str(archives))
        finally:
            stop.set()
            answered = await loop
        assert answered > 0
        after = await table_rows(api.runtime.db)

    path = Path(made.last_line)
    assert path.parent == archives.resolve()
    assert path.name.startswith("gatehouse-backup-")
    manifest = service.read_manifest(site.settings(), path)
    assert manifest.database == ("sqlite" if site.backend == "sqlite" else "postgresql")
    assert manifest.migration_revision == migrate.head_revision()
    assert manifest.gatehouse_version
    assert manifest.created_at
    # The manifest counts the rows of the dump's own snapshot: somewhere between the
    # rows seen before the backup and those seen after the loop stopped.
    for table, seen in before.items():
        if table not in COUNTERS:
            assert len(seen) <= manifest.tables[table] <= len(after[table]), table

    # The archive is ciphertext: no seeded address, no hash, not the key.
    sealed = await asyncio.to_thread(path.read_bytes)
    for plaintext in (b"alice.backup@example.com", b"seeded-0@example.com", b"$2b$",
                      site.backup_key.encode(), b"SQLite format 3", b"PGDMP"):  # fmt: skip
        assert plaintext not in sealed, plaintext

    await site.destroy()
    restored = await site.ok("restore", str(path))
    assert f"{manifest.rows} rows in {len(manifest.tables)} tables" in restored.out

    async with serving(site, **broker_overrides) as api:
        rows = await table_rows(api.runtime.db)
        for table, count in manifest.tables.items():
            if table in rows:
                assert len(rows[table]) == count, table
        for table in rows.keys() - COUNTERS:
            # Nothing seen before is missing or changed; nothing is invented.
            assert before[table] <= rows[table], table
            assert rows[table] <= after[table], table

        await seal_pending(api.runtime.db, api.runtime.audit_key)
        verdict = await verify_chain(api.runtime.db, api.runtime.audit_key)
        assert verdict.ok, verdict.problem
        assert verdict.checked == manifest.tables["audit_events"]

        # The events nobody had published go out now, each exactly once.
        pending = {row.event_id for row in await outbox_rows(api.runtime)}
        assert pending_before <= pending
        consumer = await EventConsumer(
            broker_overrides["broker_url"], api.runtime.settings.worker.events_exchange
        ).start()
        try:
            await relay_until_published(api.runtime, consumer, len(pending))
            assert await relay_all(api.runtime) == 0
            delivered = Counter(message.event_id for message in consumer.received)
        finally:
            await consumer.close()
        assert set(delivered) == {str(event_id) for event_id in pending}
        assert set(delivered.values()) == {1}

        # Tokens issued before the backup: the access token is accepted, the refresh
        # token rotates.
        me = await api.client.get(f"{USERS}/me", headers=alice.headers)
        assert me.status_code == 200, me.text
        assert me.json()["email"] == alice.email
        refreshed = await api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": alice.refresh_token}
        )
        assert refreshed.status_code == 200, refreshed.text
