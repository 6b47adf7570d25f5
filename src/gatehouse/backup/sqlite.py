"""SQLite: copies by the online backup API, both ways.

`sqlite3.Connection.backup` copies the database as one read transaction sees it: in
WAL mode the server goes on writing meanwhile, and the copy is consistent.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from gatehouse.backup.errors import BackupFailed, RestoreRefused
from gatehouse.config import Settings

DUMP = "database.sqlite"
# As long as a writer of the server may hold the lock (gatehouse.db.engine).
BUSY_TIMEOUT_SECONDS = 30.0


def database_path(settings: Settings) -> Path:
    url = settings.database_url
    path = url.split("///", 1)[1] if "///" in url else ""
    if not path or path == ":memory:":
        raise BackupFailed("an in-memory SQLite database cannot be backed up or restored")
    return Path(path)


def _tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return sorted(str(row[0]) for row in rows)


def counts(conn: sqlite3.Connection, tables: list[str]) -> dict[str, int]:
    result = {}
    for table in tables:
        # A name from the database's own catalog, quoted as an identifier.
        quoted = '"' + table.replace('"', '""') + '"'
        query = f"SELECT count(*) FROM {quoted}"  # noqa: S608
        result[table] = int(conn.execute(query).fetchone()[0])
    return result


def dump(source: Path, target: Path) -> tuple[dict[str, int], str | None]:
    """Copy `source` into `target`: (row counts, migration revision) of the copy."""
    if not source.is_file():
        raise BackupFailed(f"no SQLite database at {source}: nothing to back up")
    with (
        closing(sqlite3.connect(source, timeout=BUSY_TIMEOUT_SECONDS)) as live,
        closing(sqlite3.connect(target)) as copy,
    ):
        live.backup(copy)
    with closing(sqlite3.connect(target)) as copy:
        # One self-contained file (the live database is in WAL mode).
        copy.execute("PRAGMA journal_mode=DELETE")
        tables = _tables(copy)
        revision = None
        if "alembic_version" in tables:
            revision = copy.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        return counts(copy, tables), revision


def users_present(path: Path) -> int:
    if not path.is_file():
        return 0
    with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)) as conn:
        if "users" not in _tables(conn):
            return 0
        return int(conn.execute("SELECT count(*) FROM users").fetchone()[0])


def restore(dump_path: Path, target: Path) -> dict[str, int]:
    """Replace `target`'s whole content by the dump's; the row counts it then holds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(dump_path)) as source:
        try:
            integrity = source.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise RestoreRefused(f"the archive's database is not valid SQLite ({exc})") from None
        if integrity != "ok":
            raise RestoreRefused(f"the archive's database fails its integrity check: {integrity}")
        with closing(sqlite3.connect(target, timeout=BUSY_TIMEOUT_SECONDS)) as live:
            # Page by page, in one write transaction: a reader sees the old or the new.
            source.backup(live)
            live.execute("PRAGMA journal_mode=WAL")
            return counts(live, _tables(live))
