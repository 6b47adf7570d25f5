"""GET /api/v1/overview: the admin portal's first screen, in one answer (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from gatehouse.dependencies import AdminUser, RuntimeDep, UowDep
from gatehouse.kit.openapi import AUTHED, errors
from gatehouse.overview.schemas import Overview
from gatehouse.overview.service import OverviewService

router = APIRouter(prefix="/api/v1/overview", tags=["overview"], responses=errors(*AUTHED))


async def get_overview_service(uow: UowDep, runtime: RuntimeDep) -> OverviewService:
    return OverviewService(uow, broker=runtime.settings.broker_url is not None)


OverviewServiceDep = Annotated[OverviewService, Depends(get_overview_service)]


@router.get("", response_model=Overview)
async def read_overview(actor: AdminUser, overview: OverviewServiceDep) -> Overview:
    """Sign-ups and logins per hour (24 h) and per UTC day (30 days), active sessions,
    users by role, and what waits in the outbox and for webhook receivers (admin)."""
    return await overview.overview()
