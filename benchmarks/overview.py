"""The admin overview (`GET /api/v1/overview`) at 1,000,000 audit rows on PostgreSQL.

`python -m benchmarks.overview` (`--runs`, `--json`; the server as for `make bench`:
`GATEHOUSE_BENCH_POSTGRES_URL`, else `GATEHOUSE_TEST_POSTGRES_URL`, else
postgresql+asyncpg://postgres@127.0.0.1:5432/postgres). It:

1. creates a database of its own (dropped at the end, even on failure or Ctrl-C) and
   migrates it with the real migrations;
2. fills it with server-side INSERT ... SELECT FROM generate_series: 1,000,000 audit
   rows over the last 60 days (a plausible mix of actions and outcomes, a contiguous
   `seq`, a SHA-256 chain of `prev_hash`/`hash` that looks like the real one; the HMAC
   chain itself is not the subject, so `gatehouse audit verify` would refuse it),
   100,000 users, 444,000 sessions, 20,000 outbox events and 50,000 webhook
   deliveries, with a share of each still pending; the audit indexes are dropped for
   the load and built again after it (the new one timed, plain and CONCURRENTLY, as
   the migration builds it); then VACUUM ANALYZE, as autovacuum would after a load;
3. runs the hourly rollup (the worker's sweep step) as a worker would after an upgrade:
   the first roll, of 31 days, then an incremental one (the last hour undone and
   rolled again), then one with no newly closed hour, each timed once;
4. runs the overview once to capture the exact statements the endpoint sends, then for
   each: EXPLAIN (ANALYZE, BUFFERS) and the median of `--runs` executions; for the
   statement that still reads the trail (the hours not rolled yet) also the generic
   plan a prepared statement may settle on;
5. times the whole endpoint over the ASGI app (an admin's token, median of `--runs`),
   and, for comparison, the trail's statement without the new index and the whole
   service with the rollup emptied (every hour read from the trail, as before it).

Nothing is asserted on time: the figures are printed for docs and reports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gatehouse.app import create_app
from gatehouse.config import load_settings
from gatehouse.db import migrate
from gatehouse.overview.service import OverviewService
from gatehouse.overview.tasks import roll_up_activity
from gatehouse.runtime import Runtime
from gatehouse.users.models import Role
from gatehouse.users.schemas import UserCreate
from gatehouse.users.service import UserService

ROWS = 1_000_000
POSTGRES_ADMIN_URL = os.environ.get(
    "GATEHOUSE_BENCH_POSTGRES_URL",
    os.environ.get(
        "GATEHOUSE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    ),
)
INDEX = "idx_audit_events_action_time"
ADMIN_EMAIL = "overview.admin@example.com"
ADMIN_PASSWORD = "quiet harbour lantern 42"  # noqa: S105  (a throwaway account in a temp db)

# Row g of 1..ROWS: its time rises with g over 60 days up to now (as ids and times do);
# its kind comes from h = (g * 7919) % 1000, spread evenly: 30 % refreshes, 22 %
# successful and 6 % failed logins, 2 % sign-ups and 0.5 % refused ones, the rest the
# admin's reads and writes, logouts and refusals. 30.5 % of the rows are what the
# overview counts.
AUDIT_FILL = """
INSERT INTO audit_events (seq, occurred_at, action, outcome, reason, actor_id, actor_role,
    target_type, target_id, request_id, details, pii, pii_digest, prev_hash, hash)
SELECT g,
       now() - interval '60 days' + g * (interval '60 days' / :rows),
       CASE WHEN h < 300 THEN 'auth.refresh' WHEN h < 580 THEN 'auth.login'
            WHEN h < 605 THEN 'auth.register' WHEN h < 700 THEN 'user.read'
            WHEN h < 760 THEN 'user.list' WHEN h < 800 THEN 'auth.logout'
            WHEN h < 850 THEN 'session.list' WHEN h < 900 THEN 'user.update'
            WHEN h < 940 THEN 'audit.read' WHEN h < 970 THEN 'webhook.read'
            ELSE 'authz.denied' END,
       CASE WHEN h BETWEEN 520 AND 579 OR h BETWEEN 600 AND 604 THEN 'failure'
            WHEN h >= 970 THEN 'denied' ELSE 'success' END,
       CASE WHEN h BETWEEN 520 AND 579 THEN 'invalid_password'
            WHEN h BETWEEN 600 AND 604 THEN 'email_taken'
            WHEN h >= 970 THEN 'forbidden' END,
       CASE WHEN h NOT BETWEEN 520 AND 604
            THEN ('00000000-0000-4000-8000-' || lpad(((g * 31) % 100000)::text, 12, '0'))::uuid
       END,
       CASE WHEN h BETWEEN 520 AND 604 THEN NULL WHEN h >= 605 AND h < 970 THEN 'admin'
            ELSE 'user' END,
       'user',
       '00000000-0000-4000-9000-' || lpad(((g * 17) % 100000)::text, 12, '0'),
       'req-' || g,
       '{}'::json,
       json_build_object('ip', '10.0.' || (g % 250) || '.' || (g % 200), 'user_agent',
                         'Mozilla/5.0', 'salt', lpad(to_hex(g), 16, '0')),
       encode(sha256(('pii' || g)::bytea), 'hex'),
       CASE WHEN g = 1 THEN repeat('0', 64)
            ELSE encode(sha256(int8send(g - 1)), 'hex') END,
       encode(sha256(int8send(g)), 'hex')
FROM generate_series(1, CAST(:rows AS bigint)) AS g, LATERAL (SELECT (g * 7919) % 1000 AS h) AS k
"""

OTHER_FILLS = (
    # 100,000 accounts: 1 in 1,000 an admin, 1 in 50 readonly, 1 in 40 soft-deleted.
    """
    INSERT INTO users (id, email, password_hash, name, role, created_at, updated_at,
                       deleted_at, last_login_at, version, auth_version)
    SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid,
           'user' || g || '@example.com', '$2b$12$' || repeat('x', 53), 'User ' || g,
           CASE WHEN g % 1000 = 0 THEN 'admin' WHEN g % 50 = 0 THEN 'readonly'
                ELSE 'user' END,
           now() - (g % 365) * interval '1 day', now() - (g % 30) * interval '1 day',
           CASE WHEN g % 40 = 0 THEN now() - (g % 20) * interval '1 day' END,
           now() - (g % 30) * interval '1 day', 1, 1
    FROM generate_series(1, 100000) AS g
    """,
    # A session per successful login of the trail's rate (about 3,700 a day) over the
    # 120 days the cleanup keeps ended ones: 444,000, 1 in 5 logged out, a third
    # refreshed up to their 30-day limit, the rest idle after 14 days: about 45,000
    # still active.
    """
    INSERT INTO sessions (id, user_id, created_at, updated_at, last_used_at, expires_at,
                          absolute_expires_at, revoked_at, revoked_reason, user_agent, ip)
    SELECT gen_random_uuid(), u.id, t, t, t,
           t + CASE WHEN g % 3 = 0 THEN interval '30 days' ELSE interval '14 days' END,
           t + interval '30 days',
           CASE WHEN (g * 7) % 5 = 0 THEN t + interval '1 hour' END,
           CASE WHEN (g * 7) % 5 = 0 THEN 'logout' END, 'Mozilla/5.0', '10.0.0.1'
    FROM generate_series(1, 444000) AS g
    JOIN users AS u ON u.id = ('00000000-0000-4000-8000-'
                               || lpad((1 + (g * 37) % 100000)::text, 12, '0'))::uuid,
         LATERAL (SELECT now() - g * (interval '120 days' / 444000) AS t) AS k
    """,
    # 20,000 events over the last week: the newest 100 not yet dispatched nor published.
    """
    INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, created_at,
                               published_at, dispatched_at)
    SELECT gen_random_uuid(), 'user.updated', NULL, '{}'::json, t,
           CASE WHEN g <= 19900 THEN t + interval '1 second' END,
           CASE WHEN g <= 19900 THEN t + interval '1 second' END
    FROM generate_series(1, 20000) AS g,
         LATERAL (SELECT now() - (20001 - g) * interval '30 seconds' AS t) AS k
    """,
    """
    INSERT INTO webhook_subscriptions (id, url, event_types, secret)
    VALUES ('00000000-0000-4000-a000-000000000001', 'https://hooks.example.com/crm',
            '["*"]'::json, 'whsec_benchmark')
    """,
    # 50,000 deliveries over the last week: 1 in 250 still pending (retrying).
    """
    INSERT INTO webhook_deliveries (id, subscription_id, event_id, event_type, payload,
                                    status, attempts, next_attempt_at, created_at, finished_at)
    SELECT gen_random_uuid(), '00000000-0000-4000-a000-000000000001', gen_random_uuid(),
           'user.updated', '{}'::json,
           CASE WHEN g % 250 = 0 THEN 'pending' ELSE 'succeeded' END,
           CASE WHEN g % 250 = 0 THEN 3 ELSE 1 END, t + interval '10 minutes', t,
           CASE WHEN g % 250 <> 0 THEN t + interval '1 second' END
    FROM generate_series(1, 50000) AS g,
         LATERAL (SELECT now() - g * interval '12 seconds' AS t) AS k
    """,
)
TABLES = ("audit_events", "users", "sessions", "outbox_events", "webhook_subscriptions",
          "webhook_deliveries")  # fmt: skip


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def timed(runs: int, work: Callable[[], Awaitable[Any]]) -> float:
    """Median wall time of `runs` calls of `work`, in ms, after two unmeasured ones."""
    for _ in range(2):
        await work()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        samples.append(time.perf_counter() - started)
    return median_ms(samples)


@asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    """A migrated database of this run's own, dropped on the way out."""

    name = f"gatehouse_bench_overview_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(POSTGRES_ADMIN_URL).set(database=name)
        rendered = url.render_as_string(hide_password=False)
        try:
            await asyncio.to_thread(migrate.upgrade, rendered)
            yield rendered
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def fill(engine: AsyncEngine, figures: dict[str, Any]) -> None:
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
        assert INDEX in {name for name, _ in indexes}, "the migration made the index"  # noqa: S101
        for name, _ in indexes:
            await conn.execute(text(f'DROP INDEX "{name}"'))
        started = time.perf_counter()
        await conn.execute(text(AUDIT_FILL), {"rows": ROWS})
        figures["fill: 1,000,000 audit rows"] = f"{time.perf_counter() - started:.1f} s"
        for name, definition in indexes:
            started = time.perf_counter()
            await conn.exec_driver_sql(definition)
            if name == INDEX:
                figures[f"CREATE INDEX {INDEX}"] = f"{time.perf_counter() - started:.2f} s"
        started = time.perf_counter()
        for statement in OTHER_FILLS:
            await conn.execute(text(statement))
        figures["fill: users, sessions, outbox, deliveries"] = (
            f"{time.perf_counter() - started:.1f} s"
        )
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with autocommit.connect() as conn:
        # As the migration builds it on a live table: without blocking the appends.
        await conn.execute(text(f'DROP INDEX "{INDEX}"'))
        definition = next(d for n, d in indexes if n == INDEX)
        started = time.perf_counter()
        await conn.exec_driver_sql(definition.replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY"))
        figures[f"CREATE INDEX CONCURRENTLY {INDEX}"] = f"{time.perf_counter() - started:.2f} s"
        started = time.perf_counter()
        for table in TABLES:
            await conn.execute(text(f"VACUUM (ANALYZE) {table}"))
        figures["VACUUM (ANALYZE)"] = f"{time.perf_counter() - started:.1f} s"
        size = await conn.scalar(text(f"SELECT pg_size_pretty(pg_relation_size('{INDEX}'))"))
        figures[f"size of {INDEX}"] = size


async def roll(runtime: Runtime, figures: dict[str, Any]) -> None:
    """The rollup step, timed: the first roll (31 days), an incremental one, a no-op."""
    started = time.perf_counter()
    await roll_up_activity(runtime)
    figures["rollup: first roll, 31 days"] = f"{(time.perf_counter() - started) * 1000:.0f} ms"
    async with runtime.db.engine.begin() as conn:
        rows = await conn.scalar(text("SELECT count(*) FROM audit_activity_hours"))
        figures["rollup: rows in audit_activity_hours"] = rows
        # Undo the last hour: the next roll counts one newly closed hour, as each hour.
        await conn.execute(
            text(
                "DELETE FROM audit_activity_hours WHERE hour >= (SELECT rolled_until"
                " - interval '1 hour' FROM audit_activity_rollup)"
            )
        )
        await conn.execute(
            text("UPDATE audit_activity_rollup SET rolled_until = rolled_until - interval '1 hour'")
        )
    started = time.perf_counter()
    await roll_up_activity(runtime)
    figures["rollup: one newly closed hour"] = f"{(time.perf_counter() - started) * 1000:.1f} ms"
    started = time.perf_counter()
    await roll_up_activity(runtime)
    figures["rollup: no newly closed hour (every sweep)"] = (
        f"{(time.perf_counter() - started) * 1000:.2f} ms"
    )


class Statements:
    """The statements a unit of work sent, as the driver got them."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.recording = False
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if self.recording and statement.lstrip().upper().startswith("SELECT"):
            self.seen.append((statement, parameters))


def plan_shape(plan: dict[str, Any]) -> str:
    def walk(node: dict[str, Any]) -> list[str]:
        label = node["Node Type"]
        if "Index Name" in node:
            label += f" {node['Index Name']}"
        label += f" (rows {node.get('Actual Rows', '?')}"
        if "Heap Fetches" in node:
            label += f", heap fetches {node['Heap Fetches']}"
        label += ")"
        return [label] + [part for child in node.get("Plans", []) for part in walk(child)]

    return " > ".join(walk(plan))


async def explain(conn: AsyncConnection, statement: str, parameters: Any) -> tuple[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of one captured statement: its text and its shape."""
    result = await conn.exec_driver_sql(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters
    )
    plan = result.scalar_one()[0]
    result = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
    textual = "\n".join(row[0] for row in result.all())
    return textual, plan_shape(plan["Plan"])


def literal(value: Any) -> str:
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


async def generic_plan(conn: AsyncConnection, statement: str, parameters: Any) -> dict[str, Any]:
    """The plan PostgreSQL may settle on for a statement prepared and run many times
    (asyncpg prepares them): one plan for every value, blind to the time range."""
    await conn.exec_driver_sql(f"PREPARE activity AS {statement}")
    await conn.execute(text("SET plan_cache_mode = force_generic_plan"))
    execute = f"EXECUTE activity({', '.join(literal(p) for p in parameters)})"
    result = await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {execute}")
    shape = plan_shape(result.scalar_one()[0]["Plan"])
    result = await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {execute}")
    textual = "\n".join(row[0] for row in result.all())
    await conn.execute(text("RESET plan_cache_mode"))
    await conn.exec_driver_sql("DEALLOCATE activity")
    return {
        "statement": "the activity statement, as a generic plan",
        "median_ms": None,
        "shape": shape,
        "plan": textual,
    }


async def measure(url: str, runs: int, figures: dict[str, Any]) -> list[dict[str, Any]]:

    os.environ["GATEHOUSE_DATABASE_URL"] = url
    runtime = Runtime.create(load_settings())
    statements = Statements(runtime.db.engine)
    try:
        async with runtime.unit_of_work() as uow:
            await UserService(uow, runtime.settings.auth, runtime.hasher).create(
                UserCreate(email=ADMIN_EMAIL, name="Ada Admin", password=ADMIN_PASSWORD,
                           role=Role.admin)
            )  # fmt: skip

        await roll(runtime, figures)

        # With a broker the overview also reads the publish backlog: capture that too.
        statements.recording = True
        async with runtime.unit_of_work(write=False) as uow:
            answer = await OverviewService(uow, broker=True).overview()
        statements.recording = False
        figures["overview"] = {
            "last 24 h": answer.last_24_hours.totals.model_dump(),
            "last 30 days": answer.last_30_days.totals.model_dump(),
            "active sessions": answer.sessions.active,
            "users": answer.users.model_dump(),
            "outbox": answer.outbox.model_dump(),
            "webhooks": answer.webhooks.model_dump(),
        }

        results = []
        async with runtime.db.engine.connect() as conn:
            for statement, parameters in statements.seen:
                plan, shape = await explain(conn, statement, parameters)

                async def run(statement: str = statement, parameters: Any = parameters) -> None:
                    (await conn.exec_driver_sql(statement, parameters)).all()

                results.append(
                    {
                        "statement": " ".join(statement.split()),
                        "median_ms": round(await timed(runs, run), 2),
                        "shape": shape,
                        "plan": plan,
                    }
                )

            activity = next(r for r in statements.seen if "audit_events" in r[0])
            results.append(await generic_plan(conn, *activity))
            await conn.execute(text(f'DROP INDEX "{INDEX}"'))
            plan, shape = await explain(conn, *activity)

            async def without() -> None:
                (await conn.exec_driver_sql(*activity)).all()

            results.append(
                {
                    "statement": "the activity statement WITHOUT " + INDEX,
                    "median_ms": round(await timed(max(3, runs // 3), without), 2),
                    "shape": shape,
                    "plan": plan,
                }
            )
            await conn.rollback()  # the index is back

        async def whole() -> None:
            async with runtime.unit_of_work(write=False) as uow:
                await OverviewService(uow, broker=True).overview()

        figures["service: every statement, one unit of work (median)"] = (
            f"{await timed(runs, whole):.1f} ms"
        )
        async with runtime.db.engine.begin() as conn:
            # Without the rollup's state the service reads every hour from the trail.
            await conn.execute(text("DELETE FROM audit_activity_rollup"))
        figures["service without the rollup, every hour from the trail (median)"] = (
            f"{await timed(runs, whole):.1f} ms"
        )
        await roll_up_activity(runtime)  # its rows are still there: the state comes back

        app = create_app(runtime=runtime)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            login = await client.post(
                "/api/v1/auth/token", json={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

            async def endpoint() -> None:
                response = await client.get("/api/v1/overview", headers=headers)
                response.raise_for_status()

            figures["GET /api/v1/overview over ASGI (median)"] = (
                f"{await timed(runs, endpoint):.1f} ms"
            )
        return results
    finally:
        await runtime.close()


async def main(runs: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-overview-") as data:
        # Settings for the in-process app: a throwaway key in the temp dir, cheap
        # bcrypt (no measured request hashes a password), no rate limit.
        os.environ.update(
            {
                "GATEHOUSE_ENV": "development",
                "GATEHOUSE_DATA_DIR": data,
                "GATEHOUSE_BCRYPT_ROUNDS": "4",
                "GATEHOUSE_RATE_LIMIT_ENABLED": "false",
                "GATEHOUSE_LOG_LEVEL": "WARNING",
            }
        )
        async with scratch_database() as url:
            engine = create_async_engine(url)
            try:
                await fill(engine, figures)
            finally:
                await engine.dispose()
            results = await measure(url, runs, figures)

    for result in results:
        print(f"\n--- {result['statement']}\n    median {result['median_ms']} ms")
        print(f"    shape: {result['shape']}")
        print("    " + result["plan"].replace("\n", "\n    "))
    print()
    for name, value in figures.items():
        print(f"{name}: {value}")
    return {"figures": figures, "statements": results}


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=25, help="measured runs per figure")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    results = asyncio.run(main(args.runs))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    cli()
