"""The audit query API's parameters and answers."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from gatehouse.audit.models import AuditEvent
from gatehouse.kit.fields import Text

# RFC 3339 `date-time`: a full date, a time and an explicit offset. A bare date, a
# naive time or an epoch number would be guessed at, and a guessed time range audits
# the wrong hours.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)
# JSON Schema says it too, so that a client (or a fuzzer) knows a NUL is refused.
_NO_NUL = r"^[^\x00]*$"
# The absolute bound of `limit`; the configured GATEHOUSE_AUDIT_PAGE_MAX is lower.
PAGE_HARD_MAX = 5000


def _rfc3339(value: object) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:  # from our own code
        return value.astimezone(UTC)
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2026-01-15T10:30:00Z")
    try:
        moment = datetime.fromisoformat(value.upper())
    except ValueError:
        raise ValueError("is not a real date and time") from None
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:00:00-05:00 is after every UTC instant we can store, and
        # 0001-01-01T01:00:00+05:00 before every one: the bound still means what it says.
        return _LATEST if moment.year > 1 else _EARLIEST


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]


class Outcome(StrEnum):
    success = "success"
    failure = "failure"
    denied = "denied"


class AuditFilters(BaseModel):
    """What the list and the export select; every given filter must match (AND)."""

    # A misspelt filter (`actor=`) must not silently widen the answer to every row.
    model_config = ConfigDict(extra="forbid")

    actor_id: uuid.UUID | None = Field(
        default=None,
        description="Who acted: a user id",
        examples=["3f1c2b9e-8d7a-4c1e-9a51-2b0d5e6f7a80"],
    )
    target_id: Text | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=_NO_NUL,
        # Pydantic drops `pattern` from an optional field's schema; said again here.
        json_schema_extra={"pattern": _NO_NUL},
        description="What was acted on, exactly (a user id, a webhook id...)",
        examples=["3f1c2b9e-8d7a-4c1e-9a51-2b0d5e6f7a80"],
    )
    target_type: Text | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        pattern=_NO_NUL,
        # Pydantic drops `pattern` from an optional field's schema; said again here.
        json_schema_extra={"pattern": _NO_NUL},
        description="The kind of target, exactly: `user`, `session`, `webhook`, `audit`",
        examples=["user"],
    )
    action: Text | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=_NO_NUL,
        # Pydantic drops `pattern` from an optional field's schema; said again here.
        json_schema_extra={"pattern": _NO_NUL},
        description=(
            "Action prefix, case-sensitive: `auth.` selects every authentication event, "
            "`auth.login` the logins. `%` and `_` are plain characters."
        ),
        examples=["auth."],
    )
    outcome: Outcome | None = Field(default=None, description="success, failure or denied")
    since: Timestamp | None = Field(
        default=None,
        description="From this instant, inclusive (RFC 3339 with an offset)",
        examples=["2026-01-01T00:00:00Z"],
    )
    until: Timestamp | None = Field(
        default=None,
        description="Up to this instant, exclusive (RFC 3339 with an offset)",
        examples=["2026-02-01T00:00:00Z"],
    )
    request_id: Text | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=_NO_NUL,
        # Pydantic drops `pattern` from an optional field's schema; said again here.
        json_schema_extra={"pattern": _NO_NUL},
        description="The X-Request-ID of the request that caused the events",
        examples=["3f1c2b9e-8d7a-4c1e-9a51-2b0d5e6f7a80"],
    )

    def given(self) -> dict[str, str]:
        """The filters that were set, as JSON-ready text (for the audit row and the cursor)."""
        values = self.model_dump(mode="json", exclude_none=True, include=set(FILTER_NAMES))
        return {name: str(value) for name, value in values.items()}


FILTER_NAMES = (
    "actor_id",
    "target_id",
    "target_type",
    "action",
    "outcome",
    "since",
    "until",
    "request_id",
)


class AuditPageParams(AuditFilters):
    limit: int = Field(
        default=100,
        ge=1,
        le=PAGE_HARD_MAX,
        description="Page size: at most GATEHOUSE_AUDIT_PAGE_MAX (default 500), else 400",
        # The document states the default maximum: what a deployment answers unless it
        # raised the setting.
        json_schema_extra={"maximum": 500},
    )
    cursor: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_-]+$",
        description=(
            "`next_cursor` of the previous page, with the same filters; anything else "
            "(altered, or from other filters) is refused with 400"
        ),
    )

    def filters(self) -> AuditFilters:
        return AuditFilters.model_validate(self.model_dump(include=set(FILTER_NAMES)))


class PersonalData(BaseModel):
    """Personal data recorded with the event: null once the person was erased."""

    model_config = ConfigDict(extra="allow")

    ip: str | None = Field(default=None, examples=["203.0.113.7"])
    user_agent: str | None = Field(default=None, examples=["Mozilla/5.0"])


_INTERNAL_PII = frozenset({"salt"})


EXAMPLE_EVENT: dict[str, Any] = {
    "id": 81234,
    "seq": 81234,
    "occurred_at": "2026-01-15T10:30:00.123456Z",
    "action": "user.role_change",
    "outcome": "success",
    "reason": None,
    "actor_id": "3f1c2b9e-8d7a-4c1e-9a51-2b0d5e6f7a80",
    "actor_role": "admin",
    "target_type": "user",
    "target_id": "9b2e4c1a-7f3d-4e8b-a2c6-5d1f0e9a8b7c",
    "request_id": "5e0c7d2a-1b3f-4a6e-8c9d-0f1e2a3b4c5d",
    "details": {"fields": ["role"], "from": "user", "to": "admin"},
    "pii": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0"},
}


class AuditEventRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_EVENT]})

    id: int = Field(description="Increasing with time; the keyset of the pages")
    seq: int | None = Field(
        description="Position in the tamper-evident chain; null until the row is sealed "
        "into it, seconds after it was recorded"
    )
    occurred_at: datetime
    action: str = Field(description="From the fixed vocabulary in docs/audit.md")
    outcome: str = Field(description="success, failure or denied")
    reason: str | None = Field(description="Why it failed or was denied, as a code")
    actor_id: uuid.UUID | None = Field(description="Who acted; null when anonymous")
    actor_role: str | None
    target_type: str | None
    target_id: str | None
    request_id: str | None
    details: dict[str, Any] = Field(description="Safe details: changed field names, roles")
    pii: PersonalData | None = Field(
        description="Personal data (IP, user agent, identifiers); null once erased"
    )

    @classmethod
    def of(cls, row: AuditEvent) -> AuditEventRead:
        personal = None
        if row.pii is not None:
            personal = PersonalData.model_validate(
                {k: v for k, v in row.pii.items() if k not in _INTERNAL_PII}
            )
        return cls(
            id=row.id,
            seq=row.seq,
            occurred_at=row.occurred_at,
            action=row.action,
            outcome=row.outcome,
            reason=row.reason,
            actor_id=row.actor_id,
            actor_role=row.actor_role,
            target_type=row.target_type,
            target_id=row.target_id,
            request_id=row.request_id,
            details=row.details,
            pii=personal,
        )


class AuditPage(BaseModel):
    items: list[AuditEventRead] = Field(description="Newest first")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page"
    )
