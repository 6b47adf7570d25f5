"""The answers of `/health` and `/health/ready`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class DependencyCheck(BaseModel):
    status: Literal["ok", "unavailable"]
    latency_ms: float = Field(
        ge=0, description="How long the check took, in milliseconds (at most about its timeout)"
    )
    required: bool = Field(
        description="Down, a required dependency makes the instance `unavailable` (503); "
        "an optional one makes it `degraded` (200)"
    )


class Readiness(BaseModel):
    status: Literal["ok", "degraded", "unavailable"] = Field(
        description="`ok`: every configured dependency answered; `degraded`: an optional "
        "one (Redis, the broker, the read replica) did not, and the instance serves on its "
        "fallbacks; "
        "`unavailable`: a required one (the database) did not"
    )
    checks: dict[str, DependencyCheck] = Field(
        description="One entry per configured dependency: `database` always, `redis` with "
        "GATEHOUSE_REDIS_URL, `broker` with GATEHOUSE_BROKER_URL, `replica` with "
        "GATEHOUSE_DATABASE_REPLICA_URL"
    )


def _example(status: str, **checks: tuple[str, float, bool]) -> dict[str, object]:
    return {
        "status": status,
        "checks": {
            name: {"status": state, "latency_ms": latency, "required": required}
            for name, (state, latency, required) in checks.items()
        },
    }


READY_EXAMPLES = {
    "ok": {
        "summary": "Every dependency answered",
        "value": _example(
            "ok",
            database=("ok", 1.84, True),
            redis=("ok", 0.41, False),
            broker=("ok", 0.93, False),
        ),
    },
    "degraded": {
        "summary": "Redis is down: the instance serves on its fallbacks",
        "value": _example(
            "degraded",
            database=("ok", 1.62, True),
            redis=("unavailable", 250.7, False),
            broker=("ok", 0.88, False),
        ),
    },
}
UNAVAILABLE_EXAMPLE = {
    "unavailable": {
        "summary": "The database does not answer",
        "value": _example(
            "unavailable",
            database=("unavailable", 1000.4, True),
            redis=("ok", 0.39, False),
            broker=("ok", 0.9, False),
        ),
    }
}
