"""Migrations: up, down and up again on SQLite and a fresh PostgreSQL database, and the
models match what the migrations build.

Alembic's env.py runs its own event loop (asyncio.run), so these tests are plain
functions that run Alembic in a worker thread, away from pytest's loop.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import re
import uuid
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from gatehouse.db import migrate
from gatehouse.db.models import Base
from tests import services

T = TypeVar("T")
VERSIONS = migrate.ROOT / "migrations" / "versions"
TABLES = {"users", "sessions", "refresh_tokens", "outbox_events", "audit_events"}
FILE_NAME = re.compile(r"^(?P<date>\d{8})_(?P<description>[a-z0-9]+(?:_[a-z0-9]+)*)\.py$")


def in_thread(work: Callable[..., T], *args: Any) -> T:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future: concurrent.futures.Future[T] = pool.submit(work, *args)
        return future.result()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    def run_it() -> T:
        return asyncio.run(coroutine)

    return in_thread(run_it)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database no migration has touched."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    services.require("PostgreSQL", services.POSTGRES_ADMIN_URL)
    name = f"gatehouse_test_mig_{uuid.uuid4().hex[:10]}"
    run(services.admin_sql(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(services.POSTGRES_ADMIN_URL).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        run(services.admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _inspect(url: str, work: Callable[[Connection], T]) -> T:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


def tables(url: str) -> set[str]:
    return run(_inspect(url, lambda conn: set(inspect(conn).get_table_names())))


def current(url: str) -> str | None:
    return run(_inspect(url, lambda conn: MigrationContext.configure(conn).get_current_revision()))


def schema_differences(url: str) -> list[Any]:
    def compare(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "render_as_batch": url.startswith("sqlite")}
        )
        return list(compare_metadata(context, Base.metadata))

    return run(_inspect(url, compare))


def revisions() -> list[str]:
    """Every revision, oldest first."""
    script = ScriptDirectory.from_config(migrate.alembic_config(""))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


# --- up, down, up ----------------------------------------------------------------------------


def test_upgrade_downgrade_to_base_and_upgrade_again(empty_database: str) -> None:
    url = empty_database
    in_thread(migrate.upgrade, url)
    assert current(url) == migrate.head_revision()
    assert tables(url) >= TABLES

    in_thread(migrate.downgrade, url, "base")
    assert current(url) is None
    assert tables(url) <= {"alembic_version"}

    in_thread(migrate.upgrade, url)
    assert current(url) == migrate.head_revision()
    assert tables(url) >= TABLES


def test_every_revision_steps_down_and_up_again(empty_database: str) -> None:
    """The stairway: each migration's downgrade undoes exactly its upgrade."""
    url = empty_database
    for revision in revisions():
        in_thread(migrate.upgrade, url, revision)
        after_upgrade = tables(url)
        in_thread(migrate.downgrade, url, "-1")
        in_thread(migrate.upgrade, url, revision)
        assert current(url) == revision
        assert tables(url) == after_upgrade


def test_the_models_match_the_migrated_schema(empty_database: str) -> None:
    in_thread(migrate.upgrade, empty_database)
    assert schema_differences(empty_database) == []


# --- the files themselves ------------------------------------------------------------------


def migration_files() -> list[Path]:
    return sorted(VERSIONS.glob("*.py"))


def test_there_is_one_head() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config(""))
    assert len(script.get_heads()) == 1


@pytest.mark.parametrize("path", migration_files(), ids=lambda p: p.name)
def test_migration_file_is_named_by_date_and_description(path: Path) -> None:
    match = FILE_NAME.match(path.name)
    assert match, f"{path.name} is not {{YYYYMMDD}}_{{description}}.py"
    datetime.strptime(match["date"], "%Y%m%d")  # a real date


@pytest.mark.parametrize("path", migration_files(), ids=lambda p: p.name)
def test_migration_has_a_real_downgrade(path: Path) -> None:
    tree = ast.parse(path.read_text())
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert "upgrade" in functions
    assert "downgrade" in functions, f"{path.name} has no downgrade()"
    body = [
        statement
        for statement in functions["downgrade"].body
        if not isinstance(statement, ast.Pass)
        and not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant))
    ]
    assert body, f"{path.name}: downgrade() does nothing"
