"""The keyset cursor of the audit pages: where the next page starts, signed.

A cursor is base64url (unpadded) of the last row's id (8 bytes), its time in
microseconds since the epoch (8 bytes, signed) and a truncated HMAC over both and the
filters it was taken with: a client can neither move it to rows it would not select
nor reuse it with other filters. The format is part of the API (clients keep
`next_cursor` between calls): changing it breaks the cursors they hold.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

from gatehouse.audit.repository import Position
from gatehouse.audit.schemas import AuditFilters
from gatehouse.errors import ValidationFailed

_DOMAIN = b"gatehouse.audit.cursor|"
_MAC_BYTES = 12
_RAW_BYTES = 16
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INVALID = "Invalid cursor: pass next_cursor unchanged, with the same filters"


def _mac(key: bytes, raw: bytes, filters: AuditFilters) -> bytes:
    bound = json.dumps(filters.given(), sort_keys=True, separators=(",", ":"))
    message = _DOMAIN + raw + b"|" + bound.encode()
    return hmac.new(key, message, hashlib.sha256).digest()[:_MAC_BYTES]


def _microseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def encode_cursor(key: bytes, position: Position, filters: AuditFilters) -> str:
    """Where the next page starts, signed and bound to these filters."""
    raw = position.id.to_bytes(8, "big") + _microseconds(position.occurred_at).to_bytes(
        8, "big", signed=True
    )
    return base64.urlsafe_b64encode(raw + _mac(key, raw, filters)).rstrip(b"=").decode()


def decode_cursor(key: bytes, cursor: str, filters: AuditFilters) -> Position:
    """The position a cursor stands for; 400 if it was altered or belongs to other filters."""
    try:
        data = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        data = b""
    raw, mac = data[:_RAW_BYTES], data[_RAW_BYTES:]
    if len(data) == _RAW_BYTES + _MAC_BYTES and hmac.compare_digest(mac, _mac(key, raw, filters)):
        micros = int.from_bytes(raw[8:], "big", signed=True)
        return Position(int.from_bytes(raw[:8], "big"), _EPOCH + timedelta(microseconds=micros))
    raise ValidationFailed({"cursor": [INVALID]})
