from __future__ import annotations

import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from gatehouse.events.schemas import EVENT_TYPES
from gatehouse.kit.fields import Text
from gatehouse.kit.schemas import PageMeta, RequestBody, Schema, not_nullable
from gatehouse.webhooks.targets import MAX_URL_LENGTH, parse_url

ALL_EVENTS = "*"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class DeliveryStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


def _event_type(value: str) -> str:
    if value != ALL_EVENTS and value not in EVENT_TYPES:
        raise ValueError(f"unknown event type; use one of {', '.join(EVENT_TYPES)} or '*'")
    return value


def _target_url(value: str) -> str:
    parse_url(value)
    return value


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value.strip()


EventType = Annotated[Text, AfterValidator(_event_type)]
TargetUrl = Annotated[
    Text,
    StringConstraints(min_length=1, max_length=MAX_URL_LENGTH),
    AfterValidator(_target_url),
    Field(
        description=(
            "http:// or https://, without credentials; the host must resolve to public "
            "addresses unless GATEHOUSE_WEBHOOK_ALLOW_PRIVATE_TARGETS=true"
        ),
        examples=["https://hooks.example.com/gatehouse"],
        # No space or ASCII control anywhere (targets._CONTROL_OR_SPACE), a host, no
        # credentials; whether the host is a valid (IDNA) name is beyond a pattern.
        json_schema_extra={
            "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@\x00-\x20\x7f]+([/?#][^\x00-\x20\x7f]*)?$"
        },
    ),
]
# Either ["*"] or distinct known types: said in JSON Schema too, for generated clients.
_EVENT_TYPES_SCHEMA = {
    "description": 'Event types to deliver, or `["*"]` for every type',
    "examples": [["user.created", "user.deleted"], ["*"]],
    "oneOf": [
        {"type": "array", "items": {"const": ALL_EVENTS}, "minItems": 1, "maxItems": 1},
        {
            "type": "array",
            "items": {"type": "string", "enum": list(EVENT_TYPES)},
            "minItems": 1,
            "maxItems": len(EVENT_TYPES),
            "uniqueItems": True,
        },
    ],
}
EventTypes = Annotated[
    list[EventType],
    Field(min_length=1, max_length=len(EVENT_TYPES) + 1),
    WithJsonSchema(_EVENT_TYPES_SCHEMA),
]
Description = Annotated[
    Text,
    StringConstraints(max_length=255),
    AfterValidator(_no_control),
    Field(examples=["CRM sync"], json_schema_extra={"pattern": r"^[^\x00-\x1f\x7f]*$"}),
]


def _distinct(types: list[str]) -> list[str]:
    if ALL_EVENTS in types and len(types) > 1:
        raise ValueError("'*' already means every event type; give it alone")
    if len(set(types)) != len(types):
        raise ValueError("must not repeat an event type")
    return types


class WebhookCreate(RequestBody):
    url: TargetUrl
    event_types: EventTypes
    description: Description = ""

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        return _distinct(value)


class WebhookPatch(RequestBody):
    """Any of the fields; `enabled: true` also clears the failure that disabled it."""

    model_config = ConfigDict(json_schema_extra=not_nullable)

    url: TargetUrl | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: bool | None = None

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _distinct(value)

    @model_validator(mode="after")
    def _something(self) -> WebhookPatch:
        if not self.model_fields_set:
            raise ValueError("give at least one of url, event_types, description, enabled")
        for field in self.model_fields_set:
            if getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


class WebhookRead(Schema):
    id: uuid.UUID
    url: str = Field(
        examples=["https://hooks.example.com/gatehouse"],
        description="The full URL for admins; for readonly callers its origin only "
        "(`scheme://host:port`): a path or query may hold the receiver's credential",
    )
    description: str = Field(examples=["CRM sync"])
    event_types: list[str] = Field(examples=[["user.created", "user.deleted"]])
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why deliveries stopped, when `enabled` is false",
        examples=["Delivery failed 8 times in a row (last: HTTP 503)"],
    )
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookRead):
    """The subscription and its signing secret, shown only in this response."""

    secret: str = Field(
        description=(
            "Signing secret (Standard Webhooks): keep it; it is never shown again. "
            "Rotate it to get a new one."
        ),
        examples=["whsec_Gdwv6AjKYcJ388Vwff1yPZQxoFpiP0tUMw3xDhjRpuk="],
    )


class WebhookList(BaseModel):
    data: list[WebhookRead]
    meta: PageMeta


class DeliveryRead(Schema):
    id: uuid.UUID
    event_id: uuid.UUID = Field(description="The event's id; also the `webhook-id` header")
    event_type: str = Field(examples=["user.created"])
    status: DeliveryStatus
    attempts: int = Field(description="Attempts made so far")
    last_status_code: int | None = Field(
        description="HTTP status of the last attempt; null if no response came",
        examples=[503],
    )
    last_error: str | None = Field(
        description="Why the last attempt failed", examples=["no response within 10 s"]
    )
    next_attempt_at: datetime | None = Field(description="When it is tried next, while pending")
    created_at: datetime
    finished_at: datetime | None


class DeliveryList(BaseModel):
    data: list[DeliveryRead]
    meta: PageMeta


class ListParams(BaseModel):
    page: int = Field(default=1, ge=1, le=100_000)
    page_size: int = Field(default=20, ge=1, le=100)


class DeliveryParams(ListParams):
    status: DeliveryStatus | None = None
