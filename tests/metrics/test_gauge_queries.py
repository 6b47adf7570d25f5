"""The backlog gauges cost a scrape a few indexed queries: on PostgreSQL each statement
`refresh_gauges` runs can be answered from an index on the pending rows (partial
indexes: `published_at IS NULL`, `dispatched_at IS NULL`, `status = 'pending'`,
`seq IS NULL`)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text

from gatehouse.metrics.gauges import refresh_gauges
from gatehouse.runtime import Runtime

GAUGE_TABLES = ("outbox_events", "webhook_deliveries", "audit_events")


@pytest.fixture
def settings_overrides(broker_overrides: dict[str, Any]) -> dict[str, Any]:
    # With a broker: the unpublished backlog is read too, not only the undispatched.
    return {"broker_url": broker_overrides["broker_url"]}


async def statements_of_a_refresh(runtime: Runtime) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if any(table in statement for table in GAUGE_TABLES):
            seen.append((statement, parameters))

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        await refresh_gauges(runtime)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


@pytest.mark.parametrize("backend", ["postgres"])
async def test_every_gauge_query_can_use_an_index(runtime: Runtime) -> None:
    statements = await statements_of_a_refresh(runtime)
    # Outbox: count and oldest, unpublished and undispatched; webhooks: the count; the
    # audit rows not sealed yet: count and oldest.
    assert len(statements) == 6
    async with runtime.db.engine.connect() as conn:
        # No table scan allowed: the plan must find an index that answers the query.
        await conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in statements:
            plan = "\n".join(
                row[0] for row in await conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            )
            assert "Seq Scan" not in plan, f"{statement}\n{plan}"
            assert "Index" in plan, f"{statement}\n{plan}"
        await conn.execute(text("RESET enable_seqscan"))
