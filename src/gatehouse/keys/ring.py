"""The process's encryption key ring: configured, or on the embedded default generated
into the data dir on first start (as the signing and audit keys are)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from gatehouse.config import ConfigError, Settings
from gatehouse.kit.encryption import KeyRing, new_entry, parse_keys

KEY_FILE = "encryption.keys"


def load_key_ring(settings: Settings) -> KeyRing:
    """GATEHOUSE_ENCRYPTION_KEYS (validated with the settings), else the data dir's file."""
    configured = settings.encryption.encryption_keys
    if configured is not None:
        return KeyRing.from_text(configured.get_secret_value())
    path = settings.server.data_dir / KEY_FILE
    text = path.read_text() if path.exists() else _generate(path)
    try:
        return KeyRing(parse_keys(text))
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc} (or set GATEHOUSE_ENCRYPTION_KEYS)") from None


def _generate(path: Path) -> str:
    # Same format as the variable: the file can become GATEHOUSE_ENCRYPTION_KEYS_FILE.
    text = new_entry() + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process made it first; everyone encrypts with that one.
        return _read_when_written(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return text


def _read_when_written(path: Path, attempts: int = 50) -> str:
    """The file's content once its writer has finished (it is created, then filled)."""
    for _ in range(attempts):
        text = path.read_text()
        if text.endswith("\n"):
            return text
        time.sleep(0.1)
    return path.read_text()
