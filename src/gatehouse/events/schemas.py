"""Every event Gatehouse emits: its `data` model, the envelope, and their JSON Schemas.

The envelope is the event contract's exactly (docs/events.md):
`{event_type, event_id, timestamp, data}`. User events carry the user's row `version`,
so a consumer can drop a stale one; no event ever carries a password, a hash or a token.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gatehouse.users.models import Role

SCHEMA_BASE = "https://gatehouse.dev/schemas/events"
# UTC, to the millisecond: 2026-01-15T10:30:00.000Z
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"


class EventData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UserCreated(EventData):
    """A user account was created (sign-up, admin create, first admin)."""

    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    email_verified: bool
    version: int


class UserChanges(BaseModel):
    """The fields that changed, with their new values; only these fields ever appear."""

    # An update that changed nothing a consumer sees records no event at all.
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"minProperties": 1})

    email: str | None = None
    name: str | None = None
    role: Role | None = None
    email_verified: bool | None = None


class UserUpdated(EventData):
    """A user's profile, role or verification changed."""

    user_id: uuid.UUID
    changes: UserChanges
    version: int


class UserDeleted(EventData):
    """A user account was deleted (soft delete: it can no longer log in)."""

    user_id: uuid.UUID
    version: int


class UserRestored(EventData):
    """A deleted user account was restored by an admin within the erasure grace period."""

    user_id: uuid.UUID
    version: int


class UserErased(EventData):
    """A deleted user's personal data was erased for good: delete your copy of it."""

    user_id: uuid.UUID
    version: int


class UserPasswordChanged(EventData):
    """A user's password was changed or reset; every other session of theirs ended."""

    user_id: uuid.UUID
    reason: Literal["changed", "reset"]
    version: int


class UserMfaEnabled(EventData):
    """A user's first second factor was set up: logins now need it; their other
    sessions ended."""

    user_id: uuid.UUID
    method: Literal["totp", "passkey"]
    version: int


class UserMfaDisabled(EventData):
    """A user removed their last second factor: logins need only the password again."""

    user_id: uuid.UUID
    version: int


class UserMfaReset(EventData):
    """An admin removed every second factor of a user (a lost device); their sessions
    ended."""

    user_id: uuid.UUID
    version: int


class WebhookDisabled(EventData):
    """A webhook subscription was disabled after its deliveries kept failing."""

    webhook_id: uuid.UUID
    url: str
    reason: str


class WebhookTest(EventData):
    """Sent on request to one subscription, to check the receiving end."""

    webhook_id: uuid.UUID
    message: str


ClientField = Literal[
    "name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "scopes",
    "grant_types",
    "trusted",
    "logo_url",
    "enabled",
]


class ClientCreated(EventData):
    """An OAuth client (an application that logs people in with Gatehouse) was registered."""

    id: uuid.UUID
    client_id: str
    name: str
    type: Literal["confidential", "public"]
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    scopes: list[str]
    grant_types: list[str]
    trusted: bool
    logo_url: str | None = None
    enabled: bool
    version: int


class ClientUpdated(ClientCreated):
    """An OAuth client changed (its settings, disabled, enabled): `changed` names the fields."""

    # Field names rather than values: a logo removed (null) is named too, though unset
    # fields are left out of `data`.
    changed: list[ClientField] = Field(min_length=1)


class ClientDeleted(EventData):
    """An OAuth client was deleted, with the consents users had given it."""

    id: uuid.UUID
    client_id: str
    version: int


EVENT_TYPES: dict[str, type[EventData]] = {
    "user.created": UserCreated,
    "user.updated": UserUpdated,
    "user.deleted": UserDeleted,
    "user.restored": UserRestored,
    "user.erased": UserErased,
    "user.password_changed": UserPasswordChanged,
    "user.mfa_enabled": UserMfaEnabled,
    "user.mfa_disabled": UserMfaDisabled,
    "user.mfa_reset": UserMfaReset,
    "webhook.disabled": WebhookDisabled,
    "webhook.test": WebhookTest,
    "client.created": ClientCreated,
    "client.updated": ClientUpdated,
    "client.deleted": ClientDeleted,
}


def event_type_of(data: EventData) -> str:
    for name, model in EVENT_TYPES.items():
        if type(data) is model:
            return name
    raise KeyError(f"{type(data).__name__} is not a registered event")


def format_timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(
    event_type: str, event_id: uuid.UUID, moment: datetime, data: EventData
) -> dict[str, Any]:
    return {
        "event_type": event_type,
        "event_id": str(event_id),
        "timestamp": format_timestamp(moment),
        "data": data.model_dump(mode="json", exclude_none=True),
    }


def json_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one event type's whole envelope."""
    model = EVENT_TYPES[event_type]
    data_schema = model.model_json_schema(mode="serialization")
    defs = data_schema.pop("$defs", {})
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE}/{event_type}.json",
        "title": event_type,
        "description": (model.__doc__ or "").strip(),
        "type": "object",
        "additionalProperties": False,
        "required": ["event_type", "event_id", "timestamp", "data"],
        "properties": {
            "event_type": {"const": event_type},
            "event_id": {"type": "string", "format": "uuid"},
            # What format_timestamp writes; the pattern also checks it where a validator
            # does not assert "format".
            "timestamp": {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN},
            "data": data_schema,
        },
    }
    if defs:
        schema["$defs"] = defs
    return schema


def _strip_nulls(schema: Any) -> Any:
    """None-valued fields are left out of `data`, so the schema need not allow null."""
    if isinstance(schema, dict):
        if "anyOf" in schema:
            options = [o for o in schema["anyOf"] if o != {"type": "null"}]
            if len(options) == 1:
                rest = {k: v for k, v in schema.items() if k not in {"anyOf", "default"}}
                return _strip_nulls({**rest, **options[0]})
        return {k: _strip_nulls(v) for k, v in schema.items() if k != "default" or v is not None}
    if isinstance(schema, list):
        return [_strip_nulls(item) for item in schema]
    return schema


def all_schemas() -> dict[str, dict[str, Any]]:
    return {name: _strip_nulls(json_schema(name)) for name in EVENT_TYPES}


def schema_documents() -> dict[str, str]:
    """`docs/events/schemas/<event_type>.json` file names and their exact text."""
    return {
        f"{name}.json": json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for name, schema in all_schemas().items()
    }
