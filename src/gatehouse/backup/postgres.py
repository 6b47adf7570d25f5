"""PostgreSQL: `pg_dump -Fc` inside an exported snapshot, `pg_restore` back.

The row counts of the manifest are read in the transaction whose snapshot pg_dump
uses (`--snapshot`), so they describe exactly the rows the dump holds, however busy
the server is.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

from sqlalchemy import func, inspect, select, text
from sqlalchemy import table as sql_table
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gatehouse.backup.errors import BackupFailed, RestoreRefused
from gatehouse.config import Settings
from gatehouse.db.models import Base

DUMP = "database.pgdump"
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def tool(settings: Settings, name: str) -> str:
    """The path of pg_dump or pg_restore, from GATEHOUSE_BACKUP_PG_BIN_DIR or PATH."""
    bin_dir = settings.backup.backup_pg_bin_dir
    found = shutil.which(name, path=str(bin_dir)) if bin_dir else shutil.which(name)
    if found is None:
        where = f"in {bin_dir}" if bin_dir else "on PATH"
        raise BackupFailed(
            f"{name} not found {where}: install the PostgreSQL client of the server's major "
            "version (e.g. postgresql-client-16) or point GATEHOUSE_BACKUP_PG_BIN_DIR at it"
        )
    return found


async def tool_major(path: str) -> int:
    proc = await asyncio.create_subprocess_exec(
        path, "--version", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    match = _VERSION.search(out.decode(errors="replace"))
    if proc.returncode != 0 or match is None:
        raise BackupFailed(f"cannot tell the version of {path}: {out.decode(errors='replace')}")
    return int(match.group(1))


def check_dump_version(client_major: int, server_version_num: int) -> None:
    """pg_dump dumps servers of its own major version and older, never newer ones."""
    server_major = server_version_num // 10000
    if client_major < server_major:
        raise BackupFailed(
            f"pg_dump {client_major} cannot dump a PostgreSQL {server_major} server: install "
            f"the PostgreSQL {server_major} client (postgresql-client-{server_major}) and point "
            f"GATEHOUSE_BACKUP_PG_BIN_DIR at its bin directory"
        )


def check_restore_version(client_major: int, dumped_by: int) -> None:
    """pg_restore reads archives of pg_dumps of its own major version and older."""
    if client_major < dumped_by:
        raise RestoreRefused(
            f"the archive was dumped by pg_dump {dumped_by}; pg_restore {client_major} cannot "
            f"read it: install the PostgreSQL {dumped_by} client (or newer) and point "
            "GATEHOUSE_BACKUP_PG_BIN_DIR at its bin directory"
        )


def libpq_env(database_url: str) -> dict[str, str]:
    """The connection as libpq's variables: the password never on a command line."""
    url = make_url(database_url)
    env = dict(os.environ)
    values = {
        "PGHOST": url.host,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password if isinstance(url.password, str) else None,
        "PGDATABASE": url.database,
    }
    # asyncpg's `ssl=require` is libpq's sslmode.
    ssl = url.query.get("ssl") or url.query.get("sslmode")
    if isinstance(ssl, str):
        values["PGSSLMODE"] = ssl
    env.update({key: value for key, value in values.items() if value})
    return env


async def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        tail = " ".join(out.decode(errors="replace").strip().splitlines()[-5:])
        raise BackupFailed(f"{what} failed (exit {proc.returncode}): {tail}")


def _tables(conn: Connection) -> list[str]:
    return sorted(inspect(conn).get_table_names())


async def _counts(conn: AsyncConnection, tables: list[str]) -> dict[str, int]:
    counts = {}
    for table in tables:
        # The names come from the catalog or the authenticated manifest; quoted anyway.
        query = select(func.count()).select_from(sql_table(table))
        counts[table] = int(await conn.scalar(query) or 0)
    return counts


async def dump(
    settings: Settings, engine: AsyncEngine, target: Path
) -> tuple[dict[str, int], str | None, dict[str, str]]:
    """Dump into `target`: (row counts, migration revision, versions), all of one snapshot."""
    pg_dump = tool(settings, "pg_dump")
    client_major = await tool_major(pg_dump)
    async with engine.connect() as conn:
        snapshot_conn = await conn.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        async with snapshot_conn.begin():
            server = int(await snapshot_conn.scalar(text("SHOW server_version_num")) or 0)
            check_dump_version(client_major, server)
            snapshot = str(await snapshot_conn.scalar(text("SELECT pg_export_snapshot()")))
            tables = await snapshot_conn.run_sync(_tables)
            counts = await _counts(snapshot_conn, tables)
            revision = None
            if "alembic_version" in tables:
                revision = await snapshot_conn.scalar(
                    text("SELECT version_num FROM alembic_version")
                )
            # The transaction stays open until pg_dump has read everything in its snapshot.
            await _run(
                [pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={target}"],
                libpq_env(settings.database_url),
                "pg_dump",
            )
    versions = {"pg_dump": str(client_major), "server": str(server // 10000)}
    return counts, revision, versions


async def users_present(engine: AsyncEngine) -> int:
    """How many users the target holds (0 for an empty, unmigrated database)."""
    async with engine.connect() as conn:
        tables = await conn.run_sync(_tables)
        if "users" not in tables:
            return 0
        return int(await conn.scalar(text("SELECT count(*) FROM users")) or 0)


async def restore(settings: Settings, engine: AsyncEngine, dump_path: Path, dumped_by: int) -> None:
    pg_restore = tool(settings, "pg_restore")
    check_restore_version(await tool_major(pg_restore), dumped_by)
    # Gatehouse's own tables go first, so that a schema newer than the archive's (tables
    # a later migration made) leaves nothing behind for `gatehouse migrate` to trip on.
    known = {*Base.metadata.tables, "alembic_version"}
    async with engine.begin() as conn:
        present = [table for table in await conn.run_sync(_tables) if table in known]
        if present:
            names = ", ".join(f'"{table}"' for table in present)
            await conn.execute(text(f"DROP TABLE IF EXISTS {names} CASCADE"))
    await _run(
        [
            pg_restore,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={make_url(settings.database_url).database}",
            str(dump_path),
        ],
        libpq_env(settings.database_url),
        "pg_restore",
    )


async def counts(engine: AsyncEngine, tables: list[str]) -> dict[str, int]:
    async with engine.connect() as conn:
        return await _counts(conn, tables)
