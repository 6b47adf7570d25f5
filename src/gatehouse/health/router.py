"""Liveness and readiness, for load balancers and orchestrators.

Neither is rate limited (only `/api/` is) nor audited (neither opens a unit of work).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from gatehouse import __version__
from gatehouse.dependencies import RuntimeDep
from gatehouse.health.checks import ReadinessChecks
from gatehouse.health.schemas import (
    READY_EXAMPLES,
    UNAVAILABLE_EXAMPLE,
    DependencyCheck,
    Health,
    Readiness,
)
from gatehouse.kit.openapi import errors

router = APIRouter(tags=["health"])

# The same answer every time: made once, not validated and serialised per probe (a load
# balancer may ask several times a second per instance, and it is the benchmark's
# measure of the stack's fixed cost).
_ALIVE = Health(status="ok", version=__version__).model_dump_json().encode()


@router.get("/health", response_model=Health)
async def health() -> Response:
    """Liveness: the process answers."""
    return Response(_ALIVE, media_type="application/json")


@router.get(
    "/health/ready",
    response_model=Readiness,
    responses={
        200: {
            "description": "Ready: `ok`, or `degraded` while an optional dependency is down",
            "content": {"application/json": {"examples": READY_EXAMPLES}},
        },
        503: {
            "model": Readiness,
            "description": "Not ready: a required dependency (the database) is down",
            "content": {"application/json": {"examples": UNAVAILABLE_EXAMPLE}},
        },
        **errors(500),
    },
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    """Readiness: every configured dependency (database, Redis, broker) answers, checked
    concurrently, each within a short timeout."""
    report = await runtime.part(ReadinessChecks).run()
    body = Readiness(
        status=report.status,
        checks={
            result.name: DependencyCheck(
                status=result.status, latency_ms=result.latency_ms, required=result.required
            )
            for result in report.results
        },
    )
    return JSONResponse(
        body.model_dump(),
        status_code=503 if report.status == "unavailable" else 200,
        # A cached answer would tell a load balancer about a past state.
        headers={"Cache-Control": "no-store"},
    )
