"""Back up the configured database into an encrypted archive, and restore one.

The CLI calls these; nothing here runs while the server is down or up in particular:
a backup is consistent while the server writes, a restore is meant for a stopped one
(docs/operations.md#backups-and-restore).
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from gatehouse import __version__
from gatehouse.backup import archive, keys, postgres, sqlite
from gatehouse.backup.archive import Manifest
from gatehouse.backup.errors import ArchiveUnreadable, BackupFailed, RestoreRefused
from gatehouse.cache.redis import RedisClient, RedisUnavailable
from gatehouse.cache.store import Cache
from gatehouse.config import Settings
from gatehouse.db import migrate
from gatehouse.db.engine import Database
from gatehouse.errors import GatehouseError
from gatehouse.kit.time import utcnow


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: Manifest
    removed: list[Path]
    # Where a backup key was generated just now (the embedded default's first backup).
    key_generated: Path | None


@dataclass(frozen=True)
class RestoreResult:
    manifest: Manifest
    # The code's head, when the archive is older: `gatehouse migrate` brings it there.
    migrate_to: str | None
    # Redis's cache emptied (True), not reachable (False: flush it by hand), none (None).
    cache_flushed: bool | None = None


@contextmanager
def _database_errors(error: type[GatehouseError] = BackupFailed) -> Iterator[None]:
    """A database that cannot be reached or read is a clear one-line error."""
    try:
        yield
    except (SQLAlchemyError, OSError, sqlite3.Error) as exc:
        cause = getattr(exc, "orig", None) or exc
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise error(f"cannot use the configured database: {first}") from None


def kind(settings: Settings) -> str:
    return "sqlite" if settings.is_sqlite else "postgresql"


def backup_dir(settings: Settings) -> Path:
    return settings.backup.backup_dir or settings.server.data_dir / "backups"


async def create_backup(
    settings: Settings, directory: Path | None = None, keep: int | None = None
) -> BackupResult:
    """Write one archive into `directory`, then keep only the newest `keep` there."""
    keep = keep if keep is not None else settings.backup.backup_keep
    if keep < 1:
        raise BackupFailed("--keep must be at least 1")
    directory = directory or backup_dir(settings)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise BackupFailed(f"cannot create {directory}: {exc.strerror}") from None
    now = utcnow()
    with tempfile.TemporaryDirectory(prefix="gatehouse-backup-") as tmp:
        workdir = Path(tmp)
        if settings.is_sqlite:
            dump = workdir / sqlite.DUMP
            with _database_errors():
                tables, revision = await asyncio.to_thread(
                    sqlite.dump, sqlite.database_path(settings), dump
                )
            versions: dict[str, str] = {}
        else:
            dump = workdir / postgres.DUMP
            db = Database(settings)
            try:
                with _database_errors():
                    tables, revision, versions = await postgres.dump(settings, db.engine, dump)
            finally:
                await db.dispose()
        if revision is None:
            raise BackupFailed(
                "the database is not migrated (no alembic_version): nothing to back up"
            )
        manifest = Manifest(
            gatehouse_version=__version__,
            migration_revision=revision,
            database=kind(settings),
            created_at=now.isoformat(),
            tables=tables,
            dump=dump.name,
            versions=versions,
        )
        # Only now: a failed dump leaves no generated key behind, unannounced.
        key = keys.load_key(settings, create=True)
        target = directory / archive.archive_name(now)
        try:
            await asyncio.to_thread(archive.write, workdir, manifest, dump, target, key)
        except OSError as exc:
            raise BackupFailed(f"cannot write {target}: {exc.strerror or exc}") from None
    removed = archive.prune(directory, keep)
    return BackupResult(target, manifest, removed, key.generated)


def _key_for(settings: Settings, path: Path) -> keys.BackupKey:
    """The key to open the archive at `path` with; a wrong path is said first, before
    which key would open it."""
    if not path.is_file():
        raise ArchiveUnreadable(f"{path}: no such file")
    return keys.load_key(settings, create=False)


def read_manifest(settings: Settings, path: Path) -> Manifest:
    """Decrypt an archive (checking it whole) and return its manifest."""
    key = _key_for(settings, path)
    with tempfile.TemporaryDirectory(prefix="gatehouse-restore-") as tmp:
        manifest, _ = archive.read(path, key, Path(tmp))
    return manifest


async def restore_backup(settings: Settings, path: Path, *, force: bool = False) -> RestoreResult:
    """Replace the configured database's content by the archive's.

    Refused, with nothing changed: a wrong key or an altered archive, an archive of the
    other database kind or of a migration this code does not know, and a target that
    holds users (unless `force`).
    """
    key = _key_for(settings, path)
    with tempfile.TemporaryDirectory(prefix="gatehouse-restore-") as tmp:
        manifest, dump = await asyncio.to_thread(archive.read, path, key, Path(tmp))
        _check_fits(settings, manifest)
        if settings.is_sqlite:
            target = sqlite.database_path(settings)
            with _database_errors():
                _check_empty(await asyncio.to_thread(sqlite.users_present, target), force)
                restored = await asyncio.to_thread(sqlite.restore, dump, target)
        else:
            db = Database(settings)
            try:
                with _database_errors():
                    _check_empty(await postgres.users_present(db.engine), force)
                    dumped_by = int(manifest.versions.get("pg_dump", "0"))
                    await postgres.restore(settings, db.engine, dump, dumped_by)
                    restored = await postgres.counts(db.engine, list(manifest.tables))
            finally:
                await db.dispose()
    wrong = {
        table: (restored.get(table), count)
        for table, count in manifest.tables.items()
        if restored.get(table) != count
    }
    if wrong:
        listed = ", ".join(f"{t}: {got} rows, manifest {want}" for t, (got, want) in wrong.items())
        raise BackupFailed(f"restored, but the rows do not match the archive's manifest: {listed}")
    head = migrate.head_revision()
    migrate_to = head if head != manifest.migration_revision else None
    return RestoreResult(manifest, migrate_to, await _flush_cache(settings))


async def _flush_cache(settings: Settings) -> bool | None:
    """Empty the shared cache: it may hold sessions seen live after the backup was made,
    which the restored database no longer has."""
    if settings.redis.redis_url is None:
        return None
    client = RedisClient(settings.redis)
    cache = Cache(settings.redis, client, memory=False)
    try:
        if cache.backend is not None:
            await cache.backend.flush()
        return True
    except RedisUnavailable:
        return False
    finally:
        await cache.close()
        await client.close()


def _check_fits(settings: Settings, manifest: Manifest) -> None:
    if manifest.database != kind(settings):
        raise RestoreRefused(
            f"the archive is of a {manifest.database} database and the configured one is "
            f"{kind(settings)}: restore it into a {manifest.database} database "
            "(GATEHOUSE_DATABASE_URL)"
        )
    if not migrate.is_known_revision(manifest.migration_revision):
        raise RestoreRefused(
            f"the archive is at migration {manifest.migration_revision}, which this Gatehouse "
            f"({__version__}, at {migrate.head_revision()}) does not know: it was made by a "
            f"newer version ({manifest.gatehouse_version}); restore it with that one"
        )


def _check_empty(users: int, force: bool) -> None:
    if users and not force:
        raise RestoreRefused(
            f"the configured database holds {users} user(s): restoring replaces everything in "
            "it; add --force to do so"
        )
