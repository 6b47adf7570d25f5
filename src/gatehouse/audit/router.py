"""Admin API over the audit trail: filtered keyset pages and an NDJSON export.

Both reads are audited themselves (`audit.read`, `audit.export`): who looked at the
trail, with which filters, is part of the trail.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from gatehouse.audit import trail
from gatehouse.audit.cursor import decode_cursor, encode_cursor
from gatehouse.audit.repository import AuditRepository, Position
from gatehouse.audit.schemas import (
    EXAMPLE_EVENT,
    AuditEventRead,
    AuditFilters,
    AuditPage,
    AuditPageParams,
)
from gatehouse.auth.principal import Principal
from gatehouse.dependencies import AdminUser, RuntimeDep, UowDep
from gatehouse.errors import ValidationFailed
from gatehouse.kit.openapi import AUTHED, errors
from gatehouse.uow import UnitOfWork

# Responses per route: the export's errors are JSON while its success is NDJSON, and
# FastAPI would document router-wide error models in the route's media type.
router = APIRouter(prefix="/api/v1/audit-events", tags=["audit"])

EXPORT_BATCH = 1000
NDJSON = "application/x-ndjson"
# Filter values of this shape (ids, dotted actions, timestamps) go into the audit row's
# safe details; anything else (an email typed as target_id...) may be personal data and
# goes into its `pii`, which erasure nulls.
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._:+-]{1,100}$")


class NDJSONResponse(StreamingResponse):
    media_type = NDJSON


def _audit_read(
    uow: UnitOfWork, actor: Principal, action: str, filters: AuditFilters, **extra: Any
) -> None:
    safe: dict[str, str] = {}
    personal: dict[str, str] = {}
    for name, value in filters.given().items():
        (safe if _SAFE_VALUE.match(value) else personal)[name] = value
    uow.audit.record(
        trail.Entry(
            action=action,
            target_type="audit",
            actor_id=actor.user_id,
            actor_role=actor.role.value,
            details={"filters": safe, **extra},
            pii={"filters": personal} if personal else {},
        ),
    )


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
    uow: UowDep,
    runtime: RuntimeDep,
    params: Annotated[AuditPageParams, Query()],
) -> AuditPage:
    """Audit events, newest first, filtered, one keyset page at a time (admin)."""
    page_max = runtime.settings.audit.audit_page_max
    if params.limit > page_max:
        raise ValidationFailed({"limit": [f"must be at most {page_max}"]})
    filters = params.filters()
    after = None
    if params.cursor is not None:
        after = decode_cursor(runtime.audit_key, params.cursor, filters)
    rows = await AuditRepository(uow.session).page(filters, after=after, limit=params.limit)
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    next_cursor = None
    if more:
        next_cursor = encode_cursor(runtime.audit_key, Position.of(rows[-1]), filters)
    _audit_read(uow, actor, "audit.read", filters, returned=len(rows))
    return AuditPage(items=[AuditEventRead.of(row) for row in rows], next_cursor=next_cursor)


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
    uow: UowDep,
    runtime: RuntimeDep,
    filters: Annotated[AuditFilters, Query()],
) -> NDJSONResponse:
    """Every audit event matching the filters, as NDJSON, oldest first (admin)."""
    through = await AuditRepository(uow.session).last_id()
    # Recorded in the request's unit of work, which commits before the first byte is
    # sent: an export that was started is audited, even if the client hangs up.
    _audit_read(uow, actor, "audit.export", filters, through_id=through)
    database = runtime.db

    async def lines() -> AsyncIterator[bytes]:
        if through is None:
            return
        after: Position | None = None
        while True:
            # A short read transaction per batch: nothing is held open while the client
            # reads slowly, and the `through` bound keeps the export a fixed range.
            async with database.session(write=False) as reader:
                rows = await AuditRepository(reader).batch(
                    filters, after=after, through=through, size=EXPORT_BATCH
                )
            if rows:
                yield b"".join(
                    AuditEventRead.of(row).model_dump_json().encode() + b"\n" for row in rows
                )
            if len(rows) < EXPORT_BATCH:
                return
            after = Position.of(rows[-1])

    return NDJSONResponse(lines())
