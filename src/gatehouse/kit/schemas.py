"""Base schemas: strict request bodies and the shared envelope/pagination shapes."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RequestBody(BaseModel):
    """Unknown fields are refused: no mass assignment of role, id or password_hash."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def not_nullable(schema: dict[str, Any]) -> None:
    """For a PATCH body (`json_schema_extra`): absent means unchanged and null is refused,
    so the schema offers no null, and an empty body is not a change."""
    schema["minProperties"] = 1
    for prop in schema.get("properties", {}).values():
        options = [o for o in prop.get("anyOf", []) if o != {"type": "null"}]
        if len(options) == 1:
            del prop["anyOf"]
            prop.update(options[0])


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PageMeta(BaseModel):
    page: int
    page_size: int
    total_count: int
    total_pages: int

    @classmethod
    def build(cls, page: int, page_size: int, total: int) -> PageMeta:
        return cls(
            page=page,
            page_size=page_size,
            total_count=total,
            total_pages=math.ceil(total / page_size) if total else 0,
        )


class ErrorBody(BaseModel):
    code: str = Field(examples=["VALIDATION_ERROR"])
    message: str = Field(examples=["Invalid input"])
    details: dict[str, Any] = Field(examples=[{"email": ["Email already exists"]}])
    timestamp: str = Field(examples=["2026-01-15T10:30:00Z"])
    request_id: str | None = Field(examples=["3f1c2b9e-8d7a-4c1e-9a51-2b0d5e6f7a80"])


class ErrorResponse(BaseModel):
    """The error envelope of every non-2xx answer."""

    error: ErrorBody
