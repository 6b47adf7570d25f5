"""The audit query API at 1,000,000 rows (PostgreSQL): a filtered page is a keyset scan.

A database of its own, migrated, filled by one server-side INSERT ... SELECT FROM
generate_series (a year of events over 1,000 actors, 20,000 targets, the whole action
vocabulary and the three outcomes; the hash columns are dummies, the chain is not the
subject here). For the repository's own statements, first page and pages after a
cursor, EXPLAIN ANALYZE must show an index scan on one of the audit indexes, no Seq
Scan, no sort of more than a handful of rows, and few rows touched; no statement counts
or skips rows. Then the API answers one page per filter, checked against plain SQL.

Figures (fill time, page latencies) are printed for the record (`pytest -s`); nothing
is asserted on time.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    create_async_engine,
)

from gatehouse.app import create_app
from gatehouse.audit.models import AuditEvent
from gatehouse.audit.repository import AuditRepository, Position, page_statement
from gatehouse.audit.schemas import AuditFilters
from gatehouse.db import migrate
from gatehouse.db.base import Base
from gatehouse.kit.jobs import LeftForSweep
from gatehouse.runtime import Runtime
from gatehouse.users.models import Role
from tests import services
from tests.conftest import make_settings
from tests.factories import Account, Api

# One worker: the million rows are filled once per module, not once per worker.
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.xdist_group("audit-scale")]

ROWS = 1_000_000
START = datetime(2025, 11, 1, tzinfo=UTC)
STEP = timedelta(days=365) / ROWS
PAGE = 100
# A page may look at this many rows at most (matches and rows its filter skipped):
# a keyset page reads about `PAGE / selectivity` rows, never a share of the table.
TOUCH_MAX = 20_000
ACTOR = uuid.UUID("00000000-0000-4000-8000-000000000007")
TARGET = "00000000-0000-4000-9000-000000000042"
ACTIONS = [
    "auth.login", "auth.refresh", "auth.refresh_reuse", "auth.logout", "auth.logout_all",
    "auth.register", "auth.password_change", "auth.password_reset_request",
    "auth.password_reset", "auth.email_verify_request", "auth.email_verify", "user.create",
    "user.update", "user.role_change", "user.delete", "user.restore", "user.erase",
    "user.list", "user.read", "user.export", "session.list", "session.end",
    "session.end_all", "webhook.create", "webhook.update", "webhook.delete",
    "webhook.rotate_secret", "webhook.test", "webhook.read", "audit.read", "audit.export",
    "authz.denied",
]  # fmt: skip
# Row g (1..ROWS): every 20th anonymous; 80 % success, 15 % failure, 5 % denied; one
# in 50,000 a retention purge (a rare action); times rise with g over a year.
FILL = f"""
INSERT INTO audit_events (seq, occurred_at, action, outcome, reason, actor_id, actor_role,
    target_type, target_id, request_id, details, pii, pii_digest, prev_hash, hash)
SELECT g,
       CAST(:start AS timestamptz) + g * CAST(:step AS interval),
       CASE WHEN g % 50000 = 0 THEN 'audit.retention_purge'
            ELSE (CAST(:actions AS text[]))[1 + (g * 7) % {len(ACTIONS)}] END,
       CASE WHEN (g * 13) % 20 < 16 THEN 'success'
            WHEN (g * 13) % 20 < 19 THEN 'failure' ELSE 'denied' END,
       NULL,
       CASE WHEN g % 20 <> 0
            THEN ('00000000-0000-4000-8000-' || lpad(((g * 31) % 1000)::text, 12, '0'))::uuid
       END,
       CASE WHEN g % 20 = 0 THEN NULL WHEN g % 7 = 0 THEN 'admin' ELSE 'user' END,
       (ARRAY['user', 'session', 'webhook', 'audit'])[1 + g % 4],
       '00000000-0000-4000-9000-' || lpad(((g * 17) % 20000)::text, 12, '0'),
       'req-' || g,
       '{{}}'::json,
       '{{"ip": "10.0.0.1", "user_agent": "bench/1.0", "salt": "00"}}'::json,
       NULL, repeat('0', 64), repeat('0', 64)
FROM generate_series(1, {ROWS}) AS g
"""
FIGURES: dict[str, str] = {}
URL = "/api/v1/audit-events"
AUDIT_TABLE = Base.metadata.tables[AuditEvent.__tablename__]


def at(days: float) -> datetime:
    return START + timedelta(days=days)


# (filters, the cursor's position for "a page deep inside the range")
CASES: dict[str, tuple[dict[str, Any], datetime]] = {
    "unfiltered": ({}, at(182)),
    "actor": ({"actor_id": ACTOR}, at(182)),
    "target": ({"target_id": TARGET}, at(182)),
    "action prefix": ({"action": "auth."}, at(182)),
    "action": ({"action": "auth.login"}, at(182)),
    "rare action": ({"action": "audit.retention_purge"}, at(182)),
    "outcome + time range": ({"outcome": "denied", "since": at(100), "until": at(130)}, at(115)),
    "request id": ({"request_id": "req-500000"}, at(182)),
}


async def fill(engine: AsyncEngine) -> None:
    """The rows, with the migration's secondary indexes built after the load (as a bulk
    load would; the same definitions, read back from the catalogue)."""
    async with engine.begin() as conn:
        indexes = (
            await conn.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_events'"
                    " AND indexname NOT IN (SELECT conname FROM pg_constraint"
                    " WHERE conrelid = 'audit_events'::regclass)"
                )
            )
        ).all()
        assert {name for name, _ in indexes} >= {i.name for i in AUDIT_TABLE.indexes}
        # A throwaway database: no WAL for a million rows.
        await conn.execute(text("ALTER TABLE audit_events SET UNLOGGED"))
        for name, _ in indexes:
            await conn.execute(text(f'DROP INDEX "{name}"'))
        await conn.execute(text(FILL), {"start": START, "step": STEP, "actions": ACTIONS})
        for _, definition in indexes:
            await conn.exec_driver_sql(definition)
        await conn.execute(text("ANALYZE audit_events"))


@pytest.fixture(scope="module")
def million_url() -> Iterator[str]:
    services.require("PostgreSQL", services.POSTGRES_ADMIN_URL)
    name = f"gatehouse_scale_{uuid.uuid4().hex[:10]}"
    asyncio.run(services.admin_sql(f'CREATE DATABASE "{name}"'))
    url = make_url(services.POSTGRES_ADMIN_URL).set(database=name)
    rendered = url.render_as_string(hide_password=False)
    try:
        migrate.upgrade(rendered)
        yield rendered
    finally:
        asyncio.run(services.admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
async def million(million_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(million_url)
    started = time.perf_counter()
    await fill(engine)
    FIGURES["fill (insert, indexes, analyze)"] = f"{time.perf_counter() - started:.1f} s"
    try:
        yield engine
    finally:
        await engine.dispose()
        # The figures of this run, for the record (`pytest -s` shows them).
        for name, value in FIGURES.items():
            print(f"{name}: {value}")


@pytest.fixture
async def big_api(
    million: AsyncEngine, million_url: str, tmp_path: Path, signing_key_pem: str
) -> AsyncIterator[Api]:
    runtime = Runtime.create(make_settings(million_url, tmp_path, signing_key_pem))
    runtime.use_jobs(LeftForSweep())
    app = create_app(runtime=runtime)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield Api(c, runtime)
    finally:
        await runtime.close()


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def shape(plan: dict[str, Any]) -> str:
    return " > ".join(
        n["Node Type"] + (f" {n['Index Name']}" if "Index Name" in n else "") for n in nodes(plan)
    )


async def explain(conn: AsyncConnection, filters: AuditFilters, after: Position | None) -> str:
    """EXPLAIN ANALYZE of the repository's statement for this page, checked; its shape."""
    stmt = page_statement(filters, after=after, limit=PAGE, dialect="postgresql")
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    assert " OFFSET " not in sql.upper()
    assert "COUNT(" not in sql.upper()
    result = await conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
    plan: dict[str, Any] = result.scalar_one()[0]["Plan"]
    every = list(nodes(plan))
    assert plan["Node Type"] == "Limit", shape(plan)
    assert not [n for n in every if n["Node Type"] == "Seq Scan"], shape(plan)
    audit_indexes = {index.name for index in AUDIT_TABLE.indexes} | {"pk_audit_events"}
    used = [n for n in every if "Index Name" in n]
    assert used, f"no index scan: {shape(plan)}"
    assert {n["Index Name"] for n in used} <= audit_indexes, shape(plan)
    assert all(
        n["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Index Scan") for n in used
    )
    touched = sum(
        (n.get("Actual Rows", 0) + n.get("Rows Removed by Filter", 0)) * n.get("Actual Loops", 1)
        for n in every
        if n["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Index Scan")
    )
    assert touched <= TOUCH_MAX, f"{touched} rows read for one page: {shape(plan)}"
    for sort in (n for n in every if "Sort" in n["Node Type"]):
        assert sort["Actual Rows"] <= TOUCH_MAX, shape(plan)
    return f"{shape(plan)} ({touched} rows read)"


async def position_at(conn: AsyncConnection, moment: datetime) -> Position:
    row = (
        await conn.execute(
            text(
                "SELECT id, occurred_at FROM audit_events WHERE occurred_at >= :t"
                " ORDER BY occurred_at, id LIMIT 1"
            ),
            {"t": moment},
        )
    ).one()
    return Position(row.id, row.occurred_at)


@pytest.mark.parametrize("case", list(CASES))
async def test_every_filtered_page_is_an_index_scan(million: AsyncEngine, case: str) -> None:
    raw, deep = CASES[case]
    filters = AuditFilters(**raw)
    async with million.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM audit_events")) >= ROWS
        first = await explain(conn, filters, None)
        page = (
            await conn.execute(
                page_statement(filters, after=None, limit=PAGE, dialect="postgresql")
            )
        ).all()
        assert page, "the filter matches rows"
        following = await explain(conn, filters, Position(page[-1].id, page[-1].occurred_at))
        inside = await explain(conn, filters, await position_at(conn, deep))
    FIGURES[f"plan {case}"] = f"first: {first}; next: {following}; deep: {inside}"


PLANS_SQL = (
    "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0)"
    " FROM pg_prepared_statements WHERE statement LIKE '%FROM audit_events%'"
    " AND statement LIKE '%ORDER BY audit_events.occurred_at DESC%'"
    " AND statement NOT LIKE '%pg_prepared_statements%'"  # this very query
)


async def test_each_page_is_planned_for_its_own_values(
    million: AsyncEngine, million_url: str
) -> None:
    """A prepared statement run again and again may get one generic plan, blind to the
    actor and the range; the repository asks for a plan per execution."""
    engine = create_async_engine(million_url, pool_size=1, max_overflow=0)
    try:
        for n in range(12):
            filters = AuditFilters(
                actor_id=uuid.UUID(f"00000000-0000-4000-8000-{n + 1:012d}"),
                since=at(300 if n < 8 else 1),
                until=at(330),
            )
            async with AsyncSession(engine) as session, session.begin():
                assert await AuditRepository(session).page(filters, after=None, limit=PAGE)
        async with engine.connect() as conn:  # the one pooled connection: its statements
            generic, custom = (await conn.execute(text(PLANS_SQL))).one()
    finally:
        await engine.dispose()
    assert (generic, custom) == (0, 12)


# The same pages in hand-written SQL, the oracle for the API's answers.
ORACLE: dict[str, tuple[str, dict[str, Any]]] = {
    "unfiltered": ("TRUE", {}),
    "actor": ("actor_id = :actor", {"actor": ACTOR}),
    "target": ("target_id = :target", {"target": TARGET}),
    "action prefix": ("left(action, 5) = 'auth.'", {}),
    "action": ("left(action, 10) = 'auth.login'", {}),
    "rare action": ("action = 'audit.retention_purge'", {}),
    "outcome + time range": (
        "outcome = 'denied' AND occurred_at >= :since AND occurred_at < :until",
        {"since": at(100), "until": at(130)},
    ),
    "request id": ("request_id = 'req-500000'", {}),
}


def as_query(filters: dict[str, Any]) -> dict[str, str]:
    return {
        name: value.isoformat() if isinstance(value, datetime) else str(value)
        for name, value in filters.items()
    }


async def test_the_api_answers_every_filter_at_a_million_rows(
    million: AsyncEngine, big_api: Api
) -> None:
    admin: Account = await big_api.user(Role.admin)
    # The first call of a route pays for its set-up; the figures are about the pages.
    await big_api.client.get(URL, params={"limit": "1"}, headers=admin.headers)
    for case, (raw, _) in CASES.items():
        where, params = ORACLE[case]
        order = "occurred_at DESC, id DESC" if "since" in raw else "id DESC"
        # Read just before the request: its own audit row is written after its page.
        async with million.connect() as conn:
            result = await conn.execute(
                text(
                    f"SELECT id FROM audit_events WHERE {where} ORDER BY {order} LIMIT {2 * PAGE}"
                ),
                params,
            )
            expected = list(result.scalars().all())
        query = {**as_query(raw), "limit": str(PAGE)}
        started = time.perf_counter()
        first = await big_api.client.get(URL, params=query, headers=admin.headers)
        elapsed = (time.perf_counter() - started) * 1000
        assert first.status_code == 200, first.text
        items = first.json()["items"]
        if cursor := first.json()["next_cursor"]:
            second = await big_api.client.get(
                URL, params={**query, "cursor": cursor}, headers=admin.headers
            )
            assert second.status_code == 200, second.text
            items += second.json()["items"]
        assert [item["id"] for item in items] == expected, case
        FIGURES[f"api {case}"] = f"{elapsed:.1f} ms for the first page"

    started = time.perf_counter()
    export = await big_api.client.get(
        f"{URL}/export", params={"actor_id": str(ACTOR)}, headers=admin.headers
    )
    elapsed = (time.perf_counter() - started) * 1000
    assert export.status_code == 200
    async with million.connect() as conn:
        actor_ids = (
            (
                await conn.execute(
                    text("SELECT id FROM audit_events WHERE actor_id = :a ORDER BY id"),
                    {"a": ACTOR},
                )
            )
            .scalars()
            .all()
        )
    assert [json.loads(line)["id"] for line in export.text.splitlines()] == list(actor_ids)
    FIGURES["api export of one actor"] = f"{len(actor_ids)} lines in {elapsed:.0f} ms"
