"""The audit pages' keyset cursor on its own: it comes back as the position it was made
from, only with the filters it was made with, and anything else is the API's 400 on
`cursor`. The HTTP side of the same refusals is in test_query.py."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from gatehouse.audit.cursor import decode_cursor, encode_cursor
from gatehouse.audit.repository import Position
from gatehouse.audit.schemas import AuditFilters, Outcome
from gatehouse.errors import ValidationFailed

KEY = b"k" * 32
ACTOR = uuid.UUID("aaaaaaaa-0000-4000-8000-000000000001")
FILTERS = AuditFilters(actor_id=ACTOR, since=datetime(2025, 3, 1, 10, 0, tzinfo=UTC))
POSITION = Position(81234, datetime(2025, 3, 2, 10, 0, 0, 123456, tzinfo=UTC))
# Made by the router before the cursor had a module of its own: clients hold cursors
# like these between calls, so the format must not change under them.
ISSUED = "AAAAAAABPVIABi9ZGk0qQGoNHlqZryVCFgMFOg"


def refused(cursor: str, filters: AuditFilters = FILTERS, key: bytes = KEY) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(key, cursor, filters)
    assert caught.value.status == 400
    assert caught.value.code == "VALIDATION_ERROR"
    assert set(caught.value.details) == {"cursor"}


@pytest.mark.parametrize(
    ("position", "filters"),
    [
        (POSITION, FILTERS),
        (Position(1, datetime(2025, 1, 1, tzinfo=UTC)), AuditFilters()),
        # Before the epoch (a travelled clock): the time is stored signed.
        (Position(7, datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)), AuditFilters()),
        (
            Position(2**63 - 1, datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
            AuditFilters(action="auth.", outcome=Outcome.failure, target_id="jane@example.com"),
        ),
    ],
)
def test_a_cursor_comes_back_as_its_position(position: Position, filters: AuditFilters) -> None:
    cursor = encode_cursor(KEY, position, filters)
    # What AuditPageParams accepts: URL-safe, unpadded, short.
    assert cursor.replace("-", "").replace("_", "").isalnum()
    assert len(cursor) <= 100
    assert decode_cursor(KEY, cursor, filters) == position


def test_the_format_is_the_one_clients_hold() -> None:
    assert encode_cursor(KEY, POSITION, FILTERS) == ISSUED
    assert decode_cursor(KEY, ISSUED, FILTERS) == POSITION


def test_the_filters_bind_by_value_not_by_spelling() -> None:
    # The same filters parsed from the query string: another offset, the same instant.
    same = AuditFilters.model_validate(
        {"actor_id": str(ACTOR).upper(), "since": "2025-03-01T12:00:00+02:00"}
    )
    assert decode_cursor(KEY, ISSUED, same) == POSITION


def test_a_tampered_cursor_is_refused() -> None:
    raw = base64.urlsafe_b64decode(ISSUED + "==")
    for at in range(len(raw)):
        altered = bytearray(raw)
        altered[at] ^= 0x01
        refused(base64.urlsafe_b64encode(bytes(altered)).rstrip(b"=").decode())
    refused(ISSUED[:-2])
    refused(ISSUED + "AAAA")


def test_a_cursor_reused_with_other_filters_is_refused() -> None:
    for other in (
        AuditFilters(),
        AuditFilters(actor_id=ACTOR),
        AuditFilters(actor_id=uuid.uuid4(), since=FILTERS.since),
        AuditFilters(actor_id=ACTOR, since=FILTERS.since, action="auth."),
    ):
        refused(ISSUED, other)


def test_a_cursor_signed_with_another_key_is_refused() -> None:
    refused(ISSUED, key=b"another key")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "!!!",
        "abc",
        "A",
        "====",
        "AAAA",
        "A" * 38,
        "é",
        "AAAAAAABPVIABi9ZGk0qQGoNHlqZryVCFgMFO=",
    ],
)
def test_garbage_is_refused(garbage: str) -> None:
    refused(garbage)
