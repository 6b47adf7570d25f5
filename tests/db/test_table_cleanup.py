"""The tables emptied between tests (tests/conftest.py's TABLES, derived from the models)
are every table the migrations build: a new one cannot leak rows from test to test."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from gatehouse.db.models import Base
from gatehouse.runtime import Runtime
from tests.conftest import TABLES


def table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_every_migrated_table_is_emptied_between_tests(runtime: Runtime) -> None:
    async with runtime.db.engine.connect() as conn:
        migrated = await conn.run_sync(table_names)
    assert migrated - {"alembic_version"} == set(TABLES)


def test_tables_are_emptied_children_first() -> None:
    assert len(TABLES) == len(set(TABLES))
    position = {name: index for index, name in enumerate(TABLES)}
    for table in Base.metadata.tables.values():
        for key in table.foreign_keys:
            parent = key.column.table.name
            if parent != table.name:
                assert position[table.name] < position[parent], (table.name, parent)
