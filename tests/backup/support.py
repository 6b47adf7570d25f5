"""One Gatehouse installation under test: its database, data dir and backup key, the
real `gatehouse` command run against it, and its rows as a test compares them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyrage import x25519
from sqlalchemy import select
from sqlalchemy.engine import make_url

from gatehouse.config import Settings
from gatehouse.db import migrate
from gatehouse.db.engine import Database
from gatehouse.db.models import Base
from gatehouse.kit.jobs import LeftForSweep
from gatehouse.runtime import Runtime
from gatehouse.users.models import User
from tests import services
from tests.conftest import make_settings
from tests.factories import Api

ROOT = Path(__file__).resolve().parents[2]
GATEHOUSE = str(Path(sys.executable).with_name("gatehouse"))
# Tables whose rows are counters the requests update in place; only their counts are
# compared. Every other table only ever gains rows while the loop runs.
COUNTERS = {"user_counts", "audit_activity_hours", "audit_activity_rollup"}


@dataclass
class Result:
    code: int
    out: str  # stdout and stderr together, as an operator reads them

    @property
    def last_line(self) -> str:
        return self.out.strip().splitlines()[-1]


@dataclass
class Site:
    backend: str
    data_dir: Path
    database_url: str
    signing_key_pem: str
    backup_key: str
    # A migrated SQLite file to copy (the run's own, made once), instead of migrating.
    template: Path | None = None

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {"backup_key": self.backup_key, **overrides}
        return make_settings(self.database_url, self.data_dir, self.signing_key_pem, **values)

    def env(self, **overrides: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
        env |= {
            "GATEHOUSE_ENV": "test",
            "GATEHOUSE_DATA_DIR": str(self.data_dir),
            "GATEHOUSE_DATABASE_URL": self.database_url,
            "GATEHOUSE_BACKUP_KEY": self.backup_key,
            "GATEHOUSE_LOG_FORMAT": "json",
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
        for name, value in overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    async def cli(self, *args: str, **env: str | None) -> Result:
        proc = await asyncio.create_subprocess_exec(
            GATEHOUSE,
            *args,
            cwd=ROOT,
            env=self.env(**env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 120)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        return Result(proc.returncode or 0, out.decode())

    async def ok(self, *args: str, **env: str | None) -> Result:
        result = await self.cli(*args, **env)
        assert result.code == 0, result.out
        return result

    async def migrated(self) -> None:
        if self.template is None:
            # Alembic runs an event loop of its own, hence the thread.
            await asyncio.to_thread(migrate.upgrade, self.database_url)
            return
        target = self.data_dir / "gatehouse.db"
        await asyncio.to_thread(shutil.copyfile, self.template, target)

    async def destroy(self) -> None:
        """What a lost server leaves: an empty database (PostgreSQL), no file (SQLite)."""
        if self.backend == "postgres":
            name = make_url(self.database_url).database
            await services.admin_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
            await services.admin_sql(f'CREATE DATABASE "{name}"')
            return
        for suffix in ("", "-wal", "-shm"):
            path = self.data_dir / f"gatehouse.db{suffix}"
            await asyncio.to_thread(path.unlink, missing_ok=True)


def new_backup_key() -> str:
    return str(x25519.Identity.generate())


def _hashable(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


async def table_rows(db: Database) -> dict[str, set[tuple[Any, ...]]]:
    """Every row of every Gatehouse table, as comparable tuples."""
    rows: dict[str, set[tuple[Any, ...]]] = {}
    async with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            result = await conn.execute(select(table))
            rows[table.name] = {tuple(_hashable(v) for v in row) for row in result}
    return rows


async def add_user(site: Site, email: str, role: str = "user") -> None:
    """An account made as `gatehouse create-admin` or an admin would, in-process."""
    runtime = Runtime.create(site.settings())
    runtime.use_jobs(LeftForSweep())
    try:
        await Api(None, runtime).create_user(role, email=email)  # type: ignore[arg-type]
    finally:
        await runtime.close()


async def user_emails(site: Site) -> set[str]:
    db = Database(site.settings())
    try:
        async with db.session(write=False) as session:
            return set((await session.scalars(select(User.email))).all())
    finally:
        await db.dispose()
