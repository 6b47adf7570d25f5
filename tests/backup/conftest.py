"""A Gatehouse installation of the test's own on SQLite or on a PostgreSQL database
made for it (dropped afterwards)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from gatehouse.db import migrate
from tests import services
from tests.backup.support import Site, new_backup_key


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that nothing opens after the migration: copied, not
    migrated again, by each SQLite test here."""
    path = tmp_path_factory.mktemp("backup-template") / "gatehouse.db"
    # In a thread: asked for from inside the running event loop, and Alembic runs one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(migrate.upgrade, f"sqlite+aiosqlite:///{path}").result()
    return path


@pytest.fixture(params=["sqlite", "postgres"])
async def site(
    request: pytest.FixtureRequest, tmp_path: Path, signing_key_pem: str
) -> AsyncIterator[Site]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    key = new_backup_key()
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{data_dir / 'gatehouse.db'}"
        template = request.getfixturevalue("migrated_sqlite")
        yield Site("sqlite", data_dir, url, signing_key_pem, key, template)
        return
    services.require("PostgreSQL", services.POSTGRES_ADMIN_URL)
    name = f"gatehouse_test_{uuid.uuid4().hex[:10]}"
    await services.admin_sql(f'CREATE DATABASE "{name}"')
    url = (
        make_url(services.POSTGRES_ADMIN_URL)
        .set(database=name)
        .render_as_string(hide_password=False)
    )
    try:
        yield Site("postgres", data_dir, url, signing_key_pem, key)
    finally:
        await services.admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
