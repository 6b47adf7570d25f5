"""The archive: a tar of a manifest and the database dump, encrypted with age.

`gatehouse-backup-<UTC time>.tar.age` holds, once decrypted with the backup key
(`age -d -i backup.key` works too):

- `manifest.json`: what the archive is (format, Gatehouse version, migration revision,
  database kind, when it was made, the row count of every table);
- the dump: `database.pgdump` (`pg_dump -Fc`) or `database.sqlite` (a copy by SQLite's
  online backup).

age (X25519 + ChaCha20-Poly1305 in 64 KiB chunks) authenticates every chunk and the
end of the stream, so a wrong key, a flipped bit or a truncated file is refused; the
plaintext is only ever unpacked into a private temporary directory before anything is
restored.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tarfile
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import pyrage

from gatehouse.backup.errors import ArchiveUnreadable, BackupFailed, RestoreRefused
from gatehouse.backup.keys import BackupKey

FORMAT = 1
MANIFEST = "manifest.json"
PREFIX = "gatehouse-backup-"
SUFFIX = ".tar.age"
# Only files named like this are ever deleted by the retention.
NAME = re.compile(r"^gatehouse-backup-\d{8}T\d{12}Z\.tar\.age$")


@dataclass(frozen=True)
class Manifest:
    gatehouse_version: str
    migration_revision: str
    database: str  # "postgresql" or "sqlite"
    created_at: str
    tables: dict[str, int]
    dump: str
    # pg_dump's and the server's versions (PostgreSQL only).
    versions: dict[str, str] = field(default_factory=dict)
    format: int = FORMAT

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data: dict[str, Any] = json.loads(raw)
        except ValueError:
            raise ArchiveUnreadable("the archive's manifest is not JSON") from None
        version = data.get("format")
        if version != FORMAT:
            raise RestoreRefused(
                f"the archive's format is {version!r}, this Gatehouse reads format {FORMAT}: "
                "restore it with the Gatehouse version that made it "
                f"({data.get('gatehouse_version', 'unknown')}) or a newer one"
            )
        try:
            return cls(**data)
        except TypeError:
            raise ArchiveUnreadable("the archive's manifest is incomplete") from None


def archive_name(now: datetime) -> str:
    # Microseconds: two backups in one second get two names; names sort by time.
    return f"{PREFIX}{now.strftime('%Y%m%dT%H%M%S%f')}Z{SUFFIX}"


def write(workdir: Path, manifest: Manifest, dump: Path, target: Path, key: BackupKey) -> None:
    """Pack and encrypt into `target`, which appears whole or not at all."""
    plain = workdir / "archive.tar"
    with tarfile.open(plain, "w", format=tarfile.PAX_FORMAT) as tar:
        body = manifest.to_json()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(body)
        info.mode = 0o600
        tar.addfile(info, io.BytesIO(body))
        tar.add(dump, arcname=manifest.dump, recursive=False)
    dump.unlink()  # one plaintext copy on disk at a time
    # A dot-name the retention never matches, moved into place once complete.
    partial = target.with_name(f".{target.name}.partial")
    try:
        pyrage.encrypt_file(str(plain), str(partial), [key.recipient])
        os.chmod(partial, 0o600)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        plain.unlink(missing_ok=True)


def read(archive: Path, key: BackupKey, workdir: Path) -> tuple[Manifest, Path]:
    """Decrypt and unpack into `workdir`: the manifest and the dump's path.

    The whole archive is decrypted (and so authenticated) before a byte is used.
    """
    plain = workdir / "archive.tar"
    try:
        pyrage.decrypt_file(str(archive), str(plain), [key.identity])
    except pyrage.DecryptError as exc:
        plain.unlink(missing_ok=True)
        if "no matching keys" in str(exc).lower():
            raise ArchiveUnreadable(
                f"{archive} was not encrypted with this backup key "
                "(GATEHOUSE_BACKUP_KEY / GATEHOUSE_BACKUP_KEY_FILE): nothing was restored"
            ) from None
        raise ArchiveUnreadable(
            f"{archive} is not a readable Gatehouse archive ({exc}): nothing was restored"
        ) from None
    except OSError as exc:
        plain.unlink(missing_ok=True)
        if exc.errno is not None:
            raise ArchiveUnreadable(f"cannot read {archive}: {exc.strerror}") from None
        # age's per-chunk authentication failed: a changed or truncated file.
        raise ArchiveUnreadable(
            f"{archive} is damaged or was altered (its authentication failed): nothing was restored"
        ) from None
    try:
        with tarfile.open(plain, "r:") as tar:
            manifest = Manifest.from_json(_member(tar, MANIFEST).read())
            if manifest.dump not in {"database.pgdump", "database.sqlite"}:
                raise ArchiveUnreadable(f"the archive names an unknown dump {manifest.dump!r}")
            dump = workdir / manifest.dump
            with dump.open("wb") as sink:
                shutil.copyfileobj(_member(tar, manifest.dump), sink, 1024 * 1024)
    except tarfile.TarError as exc:
        raise ArchiveUnreadable(f"{archive} holds no valid tar ({exc})") from None
    finally:
        plain.unlink(missing_ok=True)
    return manifest, dump


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    try:
        handle = tar.extractfile(name)
    except KeyError:
        handle = None
    if handle is None:
        raise ArchiveUnreadable(f"the archive has no {name}")
    return handle


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` archives in `directory`; only archives, by name."""
    if keep < 1:
        raise BackupFailed("--keep must be at least 1")
    archives = sorted(
        (entry for entry in directory.iterdir() if NAME.match(entry.name) and entry.is_file()),
        key=lambda entry: entry.name,
        reverse=True,
    )
    removed = archives[keep:]
    for old in removed:
        old.unlink(missing_ok=True)
    return removed
