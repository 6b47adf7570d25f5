"""What `gatehouse restore` refuses, with a clear message and nothing restored, and what
`gatehouse backup` keeps: a wrong key, an altered archive, a database holding users
(without --force), an archive of a newer migration or of the other database kind, a
pg_dump older than the server; retention keeps exactly N archives and nothing else."""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path

import pyrage
import pytest
from pyrage import x25519
from redis.asyncio import Redis

from gatehouse.backup import service
from gatehouse.backup.errors import ArchiveUnreadable, BackupFailed, RestoreRefused
from gatehouse.backup.postgres import check_dump_version, check_restore_version
from gatehouse.db import migrate
from tests.backup.support import Site, add_user, new_backup_key, user_emails

sqlite_only = pytest.mark.parametrize("site", ["sqlite"], indirect=True)
postgres_only = pytest.mark.parametrize("site", ["postgres"], indirect=True)


async def installed(site: Site, *emails: str) -> Path:
    """A migrated database with these users, and an archive of it."""
    await site.migrated()
    for email in emails:
        await add_user(site, email, "admin")
    result = await service.create_backup(site.settings(), site.data_dir.parent / "archives")
    return result.path


def no_database(site: Site) -> bool:
    return not (site.data_dir / "gatehouse.db").exists()


@sqlite_only
async def test_a_wrong_key_or_an_altered_archive_restores_nothing(
    site: Site, tmp_path: Path
) -> None:
    archive = await installed(site, "boss@example.com")
    await site.destroy()

    wrong = await site.cli("restore", str(archive), GATEHOUSE_BACKUP_KEY=new_backup_key())
    assert wrong.code == 1
    assert "was not encrypted with this backup key" in wrong.out
    assert "nothing was restored" in wrong.out

    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    altered = tmp_path / archive.name
    altered.write_bytes(bytes(data))
    refused = await site.cli("restore", str(altered))
    assert refused.code == 1
    assert "is damaged or was altered" in refused.out

    truncated = tmp_path / "truncated.tar.age"
    truncated.write_bytes(archive.read_bytes()[:-40])
    with pytest.raises(ArchiveUnreadable, match="is damaged or was altered"):
        service.read_manifest(site.settings(), truncated)

    for result in (wrong, refused):
        assert "Traceback" not in result.out
    assert no_database(site)


async def test_a_database_holding_users_is_replaced_only_with_force(
    site: Site, redis_url: str, redis_prefix: str
) -> None:
    archive = await installed(site, "boss@example.com")
    await add_user(site, "later@example.com")

    refused = await site.cli("restore", str(archive))
    assert refused.code == 1
    assert "holds 2 user(s)" in refused.out
    assert "--force" in refused.out
    assert await user_emails(site) == {"boss@example.com", "later@example.com"}

    # The shared cache may remember sessions the restored database does not have.
    redis = Redis.from_url(redis_url)
    try:
        await redis.hset(f"{redis_prefix}cache:principal:{uuid.uuid4()}", "s:1", "1")
        await redis.set(f"{redis_prefix}ratelimit:other", "1")
        restored = await service.restore_backup(
            site.settings(redis_url=redis_url, redis_prefix=redis_prefix), archive, force=True
        )
        assert restored.cache_flushed is True
        assert await user_emails(site) == {"boss@example.com"}
        left = {key.decode() async for key in redis.scan_iter(match=f"{redis_prefix}*")}
        assert left == {f"{redis_prefix}ratelimit:other"}
    finally:
        await redis.aclose()


@sqlite_only
async def test_an_archive_from_a_newer_migration_is_refused(site: Site, tmp_path: Path) -> None:
    archive = await installed(site, "boss@example.com")
    # What a newer Gatehouse would have written: the same archive at a migration this
    # code does not have, encrypted with the same key.
    identity = x25519.Identity.from_str(site.backup_key)
    plain = pyrage.decrypt(archive.read_bytes(), [identity])
    repacked = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(plain)) as source,
        tarfile.open(fileobj=repacked, mode="w") as target,
    ):
        for member in source.getmembers():
            body = source.extractfile(member)
            assert body is not None
            content = body.read()
            if member.name == "manifest.json":
                content = content.replace(str(migrate.head_revision()).encode(), b"29991231_0001")
                member.size = len(content)
            target.addfile(member, io.BytesIO(content))
    newer = tmp_path / "gatehouse-backup-29991231T000000000000Z.tar.age"
    newer.write_bytes(pyrage.encrypt(repacked.getvalue(), [identity.to_public()]))
    await site.destroy()

    refused = await site.cli("restore", str(newer))
    assert refused.code == 1
    assert "migration 29991231_0001, which this Gatehouse" in refused.out
    assert "does not know" in refused.out
    assert no_database(site)


@postgres_only
async def test_an_archive_of_the_other_database_kind_is_refused(site: Site, tmp_path: Path) -> None:
    postgres_archive = await installed(site, "boss@example.com")
    sqlite_url = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    into_sqlite = await site.cli(
        "restore", str(postgres_archive), GATEHOUSE_DATABASE_URL=sqlite_url
    )
    assert into_sqlite.code == 1
    assert "the archive is of a postgresql database and the configured one is sqlite" in (
        into_sqlite.out
    )
    assert not (tmp_path / "other.db").exists()

    other = Site("sqlite", tmp_path / "other", sqlite_url, site.signing_key_pem, site.backup_key)
    other.data_dir.mkdir()
    sqlite_archive = await installed(other)
    with pytest.raises(
        RestoreRefused, match="is of a sqlite database and the configured one is postgresql"
    ):
        await service.restore_backup(site.settings(), sqlite_archive)

    with pytest.raises(BackupFailed, match=f"pg_dump not found in {tmp_path}"):
        await service.create_backup(site.settings(backup_pg_bin_dir=tmp_path))


@sqlite_only
async def test_retention_keeps_the_newest_n_archives_and_nothing_else(site: Site) -> None:
    await site.migrated()
    backups = site.data_dir / "backups"  # the default: <data dir>/backups
    backups.mkdir()
    old = [backups / f"gatehouse-backup-2026010{day}T030000000000Z.tar.age" for day in range(1, 6)]
    others = [
        backups / "notes.txt",
        backups / "gatehouse-backup-latest.tar.age",
        backups / "gatehouse-backup-20260101T030000000000Z.tar.age.sha256",
    ]
    for path in (*old, *others):
        path.write_bytes(b"not an archive")

    # The embedded default: no key configured, so the first backup makes one.
    made = await site.ok("backup", "--keep", "3", GATEHOUSE_BACKUP_KEY=None)
    key = site.data_dir / "backup.key"
    assert f"A backup key was generated into {key}" in made.out
    assert key.stat().st_mode & 0o777 == 0o600
    newest = Path(made.last_line)
    assert "Removed 3 older archive(s)" in made.out

    remaining = {path.name for path in backups.iterdir()}
    assert remaining == {newest.name, old[4].name, old[3].name} | {p.name for p in others}
    # The generated key reads the archive it made.
    settings = site.settings(backup_key=None)
    assert service.read_manifest(settings, newest).database == "sqlite"


def test_a_pg_dump_older_than_the_server_is_refused() -> None:
    with pytest.raises(BackupFailed, match="pg_dump 15 cannot dump a PostgreSQL 16 server"):
        check_dump_version(15, 160004)
    check_dump_version(16, 150010)  # an older server: pg_dump reads it
    check_dump_version(15, 150010)
    with pytest.raises(RestoreRefused, match="dumped by pg_dump 17; pg_restore 15 cannot"):
        check_restore_version(15, 17)
    check_restore_version(16, 15)
