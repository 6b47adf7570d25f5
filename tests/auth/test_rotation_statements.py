"""What a refresh costs the database: a successful rotation is one statement on
PostgreSQL and three on SQLite (which cannot change rows in a WITH clause), however it
is audited; a refusal reads what it needs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from tests.factories import Api

REFRESH = "/api/v1/auth/refresh"
# The audit trail's own statements are its business, not the rotation's.
TABLES = re.compile(r"\b(refresh_tokens|sessions|users)\b")


@contextmanager
def statements(api: Api) -> Iterator[list[str]]:
    """The SQL sent about tokens, sessions and users while the block runs."""
    seen: list[str] = []
    engines = {api.runtime.db.engine.sync_engine, api.runtime.db.read_engine.sync_engine}

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if TABLES.search(statement) and "audit_events" not in statement:
            seen.append(" ".join(statement.split()[:3]))

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


async def test_a_rotation_is_one_statement_on_postgresql_three_on_sqlite(api: Api) -> None:
    user = await api.user("user")
    with statements(api) as sent:
        response = await api.client.post(REFRESH, json={"refresh_token": user.refresh_token})
    assert response.status_code == 200, response.text
    if api.runtime.settings.is_sqlite:
        assert sent == [
            "UPDATE refresh_tokens SET",
            "UPDATE sessions SET",
            "INSERT INTO refresh_tokens",
        ]
    else:
        assert sent == ["WITH spent AS"]


async def test_a_reused_token_is_told_apart_by_reads_after_the_failed_spend(api: Api) -> None:
    user = await api.user("user")
    first = await api.client.post(REFRESH, json={"refresh_token": user.refresh_token})
    assert first.status_code == 200, first.text
    with statements(api) as sent:
        reused = await api.client.post(REFRESH, json={"refresh_token": user.refresh_token})
    assert reused.status_code == 400, reused.text
    assert sent[0] == (
        "UPDATE refresh_tokens SET" if api.runtime.settings.is_sqlite else "WITH spent AS"
    )
    assert sent[-1] == "UPDATE sessions SET"  # the revocation
