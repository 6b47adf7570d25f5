"""The age identity that encrypts the archives: configured, or generated into the data
dir on the embedded default's first backup.

The key is never written into an archive; without it an archive cannot be read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pyrage import IdentityError, x25519

from gatehouse.backup.errors import ArchiveUnreadable
from gatehouse.config import Settings
from gatehouse.kit.time import utcnow

KEY_FILE = "backup.key"


@dataclass(frozen=True)
class BackupKey:
    identity: x25519.Identity
    # The file a key was generated into just now (the operator must copy it elsewhere).
    generated: Path | None = None

    @property
    def recipient(self) -> x25519.Recipient:
        return self.identity.to_public()


def key_file(settings: Settings) -> Path:
    return settings.server.data_dir / KEY_FILE


def load_key(settings: Settings, *, create: bool) -> BackupKey:
    """The configured key; else the data dir's, generated there if `create`."""
    configured = settings.backup.backup_key
    if configured is not None:
        return BackupKey(_parse(configured.get_secret_value(), "GATEHOUSE_BACKUP_KEY"))
    path = key_file(settings)
    if path.exists():
        return BackupKey(_parse(_key_line(path.read_text()), str(path)))
    if not create:
        raise ArchiveUnreadable(
            f"no backup key: set GATEHOUSE_BACKUP_KEY or GATEHOUSE_BACKUP_KEY_FILE to the key "
            f"the archive was made with (the embedded default keeps it in {path})"
        )
    return BackupKey(_generate(path), generated=path)


def _key_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip().startswith("AGE-SECRET-KEY-1"):
            return line.strip()
    return text.strip()


def _parse(text: str, source: str) -> x25519.Identity:
    try:
        return x25519.Identity.from_str(text)
    except IdentityError:
        raise ArchiveUnreadable(f"{source} is not a valid age identity") from None


def _generate(path: Path) -> x25519.Identity:
    identity = x25519.Identity.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    # age-keygen's own layout, so `age -d -i backup.key` reads the archives too.
    content = (
        f"# created: {utcnow().isoformat(timespec='seconds')}\n"
        f"# public key: {identity.to_public()}\n"
        f"{identity}\n"
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another backup made it first: use that one.
        return _parse(_key_line(path.read_text()), str(path))
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    return identity
