"""Admin API over the audit trail: filtered keyset pages and an NDJSON export.

The reading, the cursors and the audit of each read are `gatehouse.audit.queries`'.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from gatehouse.audit.queries import AuditExport, AuditQueries
from gatehouse.audit.schemas import (
    EXAMPLE_EVENT,
    AuditFilters,
    AuditPage,
    AuditPageParams,
)
from gatehouse.dependencies import AdminUser, RuntimeDep, UowDep
from gatehouse.kit.openapi import AUTHED, errors

# Responses per route: the export's errors are JSON while its success is NDJSON, and
# FastAPI would document router-wide error models in the route's media type.
router = APIRouter(prefix="/api/v1/audit-events", tags=["audit"])

NDJSON = "application/x-ndjson"


class NDJSONResponse(StreamingResponse):
    media_type = NDJSON


async def get_audit_queries(uow: UowDep, runtime: RuntimeDep) -> AuditQueries:
    return AuditQueries(
        uow,
        database=runtime.db,
        key=runtime.audit_key,
        page_max=runtime.settings.audit.audit_page_max,
    )


AuditQueriesDep = Annotated[AuditQueries, Depends(get_audit_queries)]


def _json_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    schema = {"$ref": "#/components/schemas/ErrorResponse"}
    return {
        code: {
            "description": doc["description"],
            "content": {"application/json": {"schema": schema}},
        }
        for code, doc in errors(*codes).items()
    }


@router.get("", response_model=AuditPage, responses=errors(*AUTHED))
async def list_audit_events(
    actor: AdminUser,
    queries: AuditQueriesDep,
    params: Annotated[AuditPageParams, Query()],
) -> AuditPage:
    """Audit events, newest first, filtered, one keyset page at a time (admin)."""
    return await queries.page(actor, params)


_EXPORT_EXAMPLE = "".join(
    json.dumps({**EXAMPLE_EVENT, "id": n, "seq": n}) + "\n" for n in (81234, 81235)
)


@router.get(
    "/export",
    response_class=NDJSONResponse,
    responses={
        **_json_errors(*AUTHED),
        200: {
            "description": (
                "One `AuditEventRead` JSON object per line (NDJSON), oldest first, as of "
                "the request: events recorded while the export streams are not in it"
            ),
            "content": {NDJSON: {"example": _EXPORT_EXAMPLE}},
        },
    },
)
async def export_audit_events(
    actor: AdminUser,
    queries: AuditQueriesDep,
    filters: Annotated[AuditFilters, Query()],
) -> NDJSONResponse:
    """Every audit event matching the filters, as NDJSON, oldest first (admin)."""
    export = await queries.export(actor, filters)
    return NDJSONResponse(_ndjson(export))


async def _ndjson(export: AuditExport) -> AsyncIterator[bytes]:
    async for batch in export.batches:
        yield b"".join(item.model_dump_json().encode() + b"\n" for item in batch)
