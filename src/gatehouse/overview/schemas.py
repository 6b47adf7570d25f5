"""The admin overview's answer: activity per hour and per day, and the state right now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ActivityCounts(BaseModel):
    signups: int = Field(ge=0, description="Self-registrations that created an account")
    signups_failed: int = Field(
        ge=0, description="Refused self-registrations (a taken address, a refused password...)"
    )
    logins: int = Field(ge=0, description="Successful password logins")
    logins_failed: int = Field(
        ge=0, description="Refused password logins (wrong password, unknown user, locked...)"
    )


class ActivityBucket(ActivityCounts):
    start: datetime = Field(description="The bucket's first instant (UTC): an hour or a day")


class Activity(BaseModel):
    since: datetime = Field(description="The first bucket's start (UTC)")
    until: datetime = Field(description="The end of the counted time: the answer's `generated_at`")
    totals: ActivityCounts = Field(description="The buckets added up")
    buckets: list[ActivityBucket] = Field(
        description="Oldest first, one per hour or per UTC day, zero-filled; the last one is "
        "the current hour or day, still going"
    )


class UsersByRole(BaseModel):
    admin: int = Field(ge=0)
    user: int = Field(ge=0)
    readonly: int = Field(ge=0)


class UserCounts(BaseModel):
    total: int = Field(ge=0, description="Live accounts (soft-deleted ones are not counted)")
    by_role: UsersByRole


class SessionCounts(BaseModel):
    active: int = Field(
        ge=0, description="Sessions that can still be refreshed: not ended, not expired"
    )


class OutboxLag(BaseModel):
    pending_dispatch: int = Field(
        ge=0, description="Events whose reactions (webhooks, emails) have not run yet"
    )
    oldest_undispatched_seconds: float | None = Field(
        description="Age of the oldest of them; null when none waits"
    )
    pending_publish: int | None = Field(
        description="Events not yet published to the broker; null without a broker"
    )
    oldest_unpublished_seconds: float | None = Field(
        description="Age of the oldest of them; null when none waits or without a broker"
    )


class WebhookBacklog(BaseModel):
    pending_deliveries: int = Field(
        ge=0, description="Deliveries not yet accepted by their receiver, retries included"
    )
    oldest_pending_seconds: float | None = Field(
        description="Age of the oldest pending delivery; null when none waits"
    )


def _example_buckets(
    first: datetime, step: timedelta, count: int, scale: int
) -> list[dict[str, Any]]:
    """Plausible buckets for the document's example: a daily rhythm, a few failures."""
    buckets = []
    for n in range(count):
        start = first + n * step
        busy = 1 + (start.hour * 7 + start.day * 3) % 5
        buckets.append(
            {
                "start": start.isoformat().replace("+00:00", "Z"),
                "signups": (busy * scale) // 4,
                "signups_failed": 1 if n % 9 == 4 else 0,
                "logins": busy * scale,
                "logins_failed": busy % 3,
            }
        )
    return buckets


def _example_activity(first: datetime, step: timedelta, count: int, scale: int) -> dict[str, Any]:
    buckets = _example_buckets(first, step, count, scale)
    fields = ("signups", "signups_failed", "logins", "logins_failed")
    return {
        "since": buckets[0]["start"],
        "until": "2026-01-15T10:30:00Z",
        "totals": {name: sum(b[name] for b in buckets) for name in fields},
        "buckets": buckets,
    }


EXAMPLE: dict[str, Any] = {
    "generated_at": "2026-01-15T10:30:00Z",
    "last_24_hours": _example_activity(
        datetime(2026, 1, 14, 11, tzinfo=UTC), timedelta(hours=1), 24, 2
    ),
    "last_30_days": _example_activity(
        datetime(2025, 12, 17, tzinfo=UTC), timedelta(days=1), 30, 30
    ),
    "sessions": {"active": 212},
    "users": {"total": 250, "by_role": {"admin": 2, "user": 245, "readonly": 3}},
    "outbox": {
        # No null in this nested example: the document drops nulls (kit/openapi.py).
        "pending_dispatch": 1,
        "oldest_undispatched_seconds": 0.4,
        "pending_publish": 4,
        "oldest_unpublished_seconds": 1.8,
    },
    "webhooks": {"pending_deliveries": 1, "oldest_pending_seconds": 95.0},
}


class Overview(BaseModel):
    """What the admin portal's first screen shows."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    generated_at: datetime = Field(description="When the figures were read (UTC)")
    last_24_hours: Activity = Field(description="Per hour: the current hour and the 23 before")
    last_30_days: Activity = Field(description="Per UTC day: today and the 29 days before")
    sessions: SessionCounts
    users: UserCounts
    outbox: OutboxLag
    webhooks: WebhookBacklog
