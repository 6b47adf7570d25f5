"""HTTP ↔ service for GDPR: data export and the restore of a deleted account."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from gatehouse.dependencies import AdminUser, CurrentUser, RuntimeDep, UowDep
from gatehouse.kit.http import etag
from gatehouse.kit.openapi import AUTHED, ETAG_HEADER, errors
from gatehouse.privacy.schemas import UserExport
from gatehouse.privacy.service import PrivacyService
from gatehouse.users.schemas import UserAdminRead

router = APIRouter(prefix="/api/v1/users", tags=["privacy"], responses=errors(*AUTHED))


async def get_privacy_service(uow: UowDep, runtime: RuntimeDep) -> PrivacyService:
    return PrivacyService(uow, runtime.settings)


PrivacyServiceDep = Annotated[PrivacyService, Depends(get_privacy_service)]
ATTACHMENT = {
    "Content-Disposition": {
        "description": "attachment; filename=gatehouse-export-<user id>-<UTC time>.json",
        "schema": {"type": "string"},
    }
}


def _attachment(document: UserExport, response: Response) -> UserExport:
    stamp = document.exported_at.strftime("%Y%m%dT%H%M%SZ")
    name = f"gatehouse-export-{document.user.id}-{stamp}.json"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return document


# Declared before /{user_id}/export, which would otherwise take "me" for an id.
@router.get("/me/export", response_model=UserExport, responses={200: {"headers": ATTACHMENT}})
async def export_me(
    actor: CurrentUser, privacy: PrivacyServiceDep, response: Response
) -> UserExport:
    """Download everything Gatehouse holds about you, as one JSON document."""
    return _attachment(await privacy.export(actor, actor.user_id), response)


@router.get(
    "/{user_id}/export",
    response_model=UserExport,
    responses={**errors(404), 200: {"headers": ATTACHMENT}},
)
async def export_user(
    user_id: uuid.UUID, actor: CurrentUser, privacy: PrivacyServiceDep, response: Response
) -> UserExport:
    """Download everything held about a user (admin; deleted users too, until erased)."""
    return _attachment(await privacy.export(actor, user_id), response)


@router.post(
    "/{user_id}/restore",
    response_model=UserAdminRead,
    responses={**errors(404, 409), 200: {"headers": ETAG_HEADER}},
)
async def restore_user(
    user_id: uuid.UUID, actor: AdminUser, privacy: PrivacyServiceDep, response: Response
) -> UserAdminRead:
    """Restore a deleted user within the erasure grace period (admin)."""
    user = await privacy.restore(actor, user_id)
    response.headers["ETag"] = etag(user.version)
    return UserAdminRead.model_validate(user)
