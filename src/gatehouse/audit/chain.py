"""The audit trail's HMAC chain: how a row's hash is made and how the chain is checked.

hash(row) = HMAC-SHA256(key, prev_hash | canonical JSON of the row's fields), with the
personal data represented by its own keyed digest. The key lives outside the database
(GATEHOUSE_AUDIT_KEY), so a database superuser can alter, remove or insert rows but
cannot make the chain verify again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gatehouse.config import Settings

GENESIS = "0" * 64
KEY_FILE = "audit.key"
# The fields a row's hash covers, in the order they are stored.
HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "action",
    "outcome",
    "reason",
    "actor_id",
    "actor_role",
    "target_type",
    "target_id",
    "request_id",
    "details",
    "pii_digest",
)


def load_key(settings: Settings) -> bytes:
    """The configured key, or on the embedded default one generated into the data dir."""
    if settings.audit.audit_key is not None:
        return settings.audit.audit_key.get_secret_value().encode()
    path = settings.server.data_dir / KEY_FILE
    if path.exists():
        return path.read_text().strip().encode()
    return _generate(path)


def _generate(path: Path) -> bytes:
    key = secrets.token_urlsafe(48)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process made it first; everyone chains with that one.
        for _ in range(50):
            text = path.read_text().strip()
            if text:
                return text.encode()
        raise RuntimeError(f"{path} exists but is empty") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key.encode()


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if value is None or isinstance(value, (int, str, dict, list, bool)):
        return value
    return str(value)


def pii_digest(key: bytes, pii: dict[str, Any] | None) -> str | None:
    if pii is None:
        return None
    return hmac.new(key, canonical(pii).encode(), hashlib.sha256).hexdigest()


def term_digest(key: bytes, term: str) -> dict[str, Any]:
    """What the trail keeps of a search term or other free text typed into a filter: a
    keyed digest of its normalised form (and its length), never the text.

    Normalised as the search matches (trimmed, case-folded), so whoever holds the key can
    still answer "did anyone search for jane@example.com?"; without the key the digest
    names nobody, and erasure need not find it.
    """
    normal = term.strip().casefold()
    digest = hmac.new(key, f"term|{normal}".encode(), hashlib.sha256).hexdigest()
    return {"digest": digest, "length": len(normal)}


def checkpoint_signature(
    key: bytes, seq: int, head_hash: str, row_count: int, created_at: datetime
) -> str:
    """A checkpoint's HMAC: without the key nobody can write one that verifies."""
    content = f"checkpoint|{seq}|{head_hash}|{row_count}|{_text(created_at)}"
    return hmac.new(key, content.encode(), hashlib.sha256).hexdigest()


def row_hash(key: bytes, prev_hash: str, fields: dict[str, Any]) -> str:
    content = canonical({name: _text(fields[name]) for name in HASHED_FIELDS})
    return hmac.new(key, f"{prev_hash}|{content}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Problem:
    seq: int | None
    row_id: int | None
    message: str

    def __str__(self) -> str:
        where = f"row id {self.row_id} (seq {self.seq})" if self.row_id is not None else "chain"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Verdict:
    checked: int
    problem: Problem | None
    # (seq, hash) of the last row that verified: the head, when the chain is whole.
    head: tuple[int, str] | None = None
    # Rows not sealed into the chain yet (the sealer's backlog): not covered by this
    # verdict, nor tamper-evident until sealed.
    unsealed: int = 0
    oldest_unsealed_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


async def verify(
    key: bytes,
    rows: AsyncIterator[dict[str, Any]],
    *,
    anchor: tuple[int, str] | None,
    checkpoint: tuple[int, str] | None = None,
) -> Verdict:
    """Walk rows in seq order; name the first one that was altered, removed or inserted.

    `anchor` is (seq, hash) of the last row the retention job removed, as recorded by
    that job: the first remaining row must follow it exactly. Without one the chain
    starts at seq 1 after GENESIS. `checkpoint` is (seq, hash) of the newest signed
    checkpoint: the chain must reach that row, with that hash (the newest rows were
    removed otherwise: the chain alone cannot tell a shorter chain from a whole one).
    """
    checked = 0
    prev_seq, prev_hash = anchor if anchor else (0, GENESIS)

    def head() -> tuple[int, str] | None:
        return (prev_seq, prev_hash) if checked else None

    async for row in rows:
        seq, row_id = row["seq"], row["id"]
        if seq != prev_seq + 1:
            return Verdict(
                checked,
                Problem(seq, row_id, f"rows {prev_seq + 1}..{seq - 1} of the chain are missing"),
            )
        if row["prev_hash"] != prev_hash:
            return Verdict(
                checked, Problem(seq, row_id, "does not follow the previous row (inserted?)")
            )
        if row["pii"] is not None and pii_digest(key, row["pii"]) != row["pii_digest"]:
            return Verdict(checked, Problem(seq, row_id, "personal data was altered"))
        if row_hash(key, row["prev_hash"], row) != row["hash"]:
            return Verdict(checked, Problem(seq, row_id, "was altered (hash mismatch)"))
        if checkpoint is not None and seq == checkpoint[0] and row["hash"] != checkpoint[1]:
            return Verdict(checked, Problem(seq, row_id, "is not the row the checkpoint saw"))
        prev_seq, prev_hash = seq, row["hash"]
        checked += 1
    if checkpoint is not None and prev_seq < checkpoint[0]:
        missing = f"rows {prev_seq + 1}..{checkpoint[0]} of the chain are missing"
        return Verdict(
            checked,
            Problem(None, None, f"{missing}: the newest rows were removed (truncated)"),
            head(),
        )
    return Verdict(checked, None, head())
