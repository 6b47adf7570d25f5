"""Development data: sample users of every role with sessions, and bulk users for benchmarks."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import bcrypt
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.auth.models import Session
from gatehouse.kit.time import utcnow
from gatehouse.runtime import Runtime
from gatehouse.users import counts
from gatehouse.users.models import Role, User

SAMPLE_PASSWORD = "gatehouse-sample-pass"  # noqa: S105  (development data, printed)
SAMPLES = [
    ("alice.admin@example.com", "Alice Admin", Role.admin),
    ("robin.readonly@example.com", "Robin Readonly", Role.readonly),
    ("uma.user@example.com", "Uma User", Role.user),
    ("ulysses.user@example.com", "Ulysses User", Role.user),
]
BATCH = 5000
# Every bulk user's password (hashed once at cost 4): the benchmark logs them in with it.
BULK_PASSWORD = "bulk-user-password"  # noqa: S105  (development data)


_BULK_COLUMNS = (
    "id",
    "email",
    "name",
    "role",
    "password_hash",
    "created_at",
    "updated_at",
    "version",
    "auth_version",
)


async def _insert_users(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Bulk rows into `users`: PostgreSQL's COPY, else one multi-row INSERT.

    COPY streams the rows without a statement per batch: a million users took 95 s as
    INSERTs (every index of the list's sorts maintained row by row either way) and a
    fraction of that copied.
    """
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        await session.execute(insert(User), rows)
        return
    raw = await connection.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        User.__tablename__,
        records=[tuple(row[column] for column in _BULK_COLUMNS) for row in rows],
        columns=list(_BULK_COLUMNS),
    )


async def seed(runtime: Runtime, *, count: int = 0) -> str:
    """Idempotent: sample users are created once (by email); bulk users are added."""
    created = 0
    now = utcnow()
    idle = timedelta(seconds=runtime.settings.auth.refresh_token_idle_seconds)
    absolute = timedelta(seconds=runtime.settings.auth.refresh_token_max_seconds)
    sample_hash = await runtime.hasher.hash(SAMPLE_PASSWORD)
    async with runtime.db.session() as session:
        existing = set(
            (await session.scalars(select(User.email).where(User.deleted_at.is_(None)))).all()
        )
        for email, name, role in SAMPLES:
            if email in existing:
                continue
            user = User(email=email, name=name, role=role.value, password_hash=sample_hash)
            session.add(user)
            await session.flush()
            session.add(
                Session(
                    user_id=user.id,
                    expires_at=now + idle,
                    absolute_expires_at=now + absolute,
                    user_agent="seed/1.0 (sample session)",
                    ip="127.0.0.1",
                )
            )
            created += 1

    bulk_seconds = 0.0
    if count > 0:
        started = time.perf_counter()
        # One hash for every bulk user: hashing N passwords would take N x 240 ms.
        bulk_hash = bcrypt.hashpw(BULK_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
        run = uuid.uuid4().hex[:8]
        for offset in range(0, count, BATCH):
            rows = [
                {
                    "id": uuid.uuid4(),
                    "email": f"bulk-{run}-{n}@example.com",
                    "name": f"Bulk User {n}",
                    "role": Role.user.value,
                    "password_hash": bulk_hash,
                    "created_at": now - timedelta(seconds=n),
                    "updated_at": now - timedelta(seconds=n),
                    "version": 1,
                    "auth_version": 1,
                }
                for n in range(offset, min(offset + BATCH, count))
            ]
            async with runtime.db.session() as session:
                await _insert_users(session, rows)
                # Not through the ORM: no flush for the counts' listener to see.
                await counts.adjust(session, {Role.user.value: len(rows)})
        if not runtime.db.is_sqlite:
            # Fresh statistics now, not when autoanalyze gets round to it: planned with
            # the empty table's, the list sorted every user for each deep page.
            async with runtime.db.session() as session:
                await session.execute(text("ANALYZE users"))
        bulk_seconds = time.perf_counter() - started

    lines = [f"Sample users created: {created} (password for all: {SAMPLE_PASSWORD})"]
    if count:
        lines.append(f"Bulk users inserted: {count} in {bulk_seconds:.1f} s")
    return "\n".join(lines)
