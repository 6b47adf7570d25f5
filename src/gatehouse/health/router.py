"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from gatehouse import __version__
from gatehouse.dependencies import RuntimeDep
from gatehouse.kit.openapi import errors

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, Literal["ok", "unavailable"]]


@router.get("/health", response_model=Health)
async def health() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok", version=__version__)


@router.get(
    "/health/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is down"}, **errors(500)},
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    """Readiness: the database answers."""
    try:
        await runtime.db.ping()
        checks: dict[str, Literal["ok", "unavailable"]] = {"database": "ok"}
    except Exception:  # any failure means "not ready"; details go to the log only
        checks = {"database": "unavailable"}
    ok = all(value == "ok" for value in checks.values())
    body = Readiness(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
