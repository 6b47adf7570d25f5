from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gatehouse.kit.fields import NAME_SCHEMA, Email, Name, NewPassword, Password, Text
from gatehouse.kit.schemas import PageMeta, RequestBody, Schema, not_nullable
from gatehouse.users.models import Role


class SortField(StrEnum):
    created_at = "created_at"
    updated_at = "updated_at"
    email = "email"
    name = "name"
    role = "role"


class Order(StrEnum):
    asc = "asc"
    desc = "desc"


class UserRead(Schema):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    created_at: datetime
    updated_at: datetime


class UserAdminRead(UserRead):
    """What admins and readonly users see in lists: also when the account was last used."""

    last_login_at: datetime | None
    deleted_at: datetime | None


class UserList(BaseModel):
    data: list[UserAdminRead]
    meta: PageMeta


class UserCreate(RequestBody):
    email: Email
    name: Name = Field(json_schema_extra=NAME_SCHEMA)
    password: NewPassword
    role: Role = Role.user


# An admin moving their own email through the admin routes proves it is them, as on /me.
_ADMIN_CURRENT_PASSWORD = Field(
    default=None,
    description="Your current password: required when you change your own email here",
)


class UserReplace(RequestBody):
    """PUT: name and role are required (the API contract, docs/api.md); email may change too."""

    name: Name = Field(json_schema_extra=NAME_SCHEMA)
    role: Role
    email: Email | None = None
    current_password: Password | None = _ADMIN_CURRENT_PASSWORD


def _patch_schema(schema: dict[str, Any]) -> None:
    not_nullable(schema)
    # The password alone changes nothing: one of the fields that change the user is due.
    schema["anyOf"] = [{"required": [name]} for name in ("name", "role", "email")]


class UserPatch(RequestBody):
    model_config = ConfigDict(json_schema_extra=_patch_schema)

    name: Name | None = Field(default=None, json_schema_extra=NAME_SCHEMA)
    role: Role | None = None
    email: Email | None = None
    current_password: Password | None = _ADMIN_CURRENT_PASSWORD

    @model_validator(mode="after")
    def _something(self) -> UserPatch:
        if not self.model_fields_set - {"current_password"}:
            raise ValueError("give at least one of name, role, email")
        for field in self.model_fields_set:
            if getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


@dataclass(frozen=True, slots=True)
class UserEdit:
    """An admin's edit of a user as the service takes it, from PUT or PATCH alike; None
    leaves a field as it is (neither body lets a client set one to null)."""

    name: str | None = None
    email: str | None = None
    role: Role | None = None
    # Checked only when an admin changes their own email.
    current_password: str | None = None


class MeUpdate(RequestBody):
    """Your own name or email; changing the email needs your current password."""

    # A name or an email, not null: said in JSON Schema too.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["name"], "properties": {"name": {"type": "string"}}},
                {"required": ["email"], "properties": {"email": {"type": "string"}}},
            ]
        }
    )

    name: Name | None = Field(default=None, json_schema_extra=NAME_SCHEMA)
    email: Email | None = None
    current_password: Password | None = None

    @model_validator(mode="after")
    def _something(self) -> MeUpdate:
        if self.name is None and self.email is None:
            raise ValueError("give at least one of name, email")
        return self


class PasswordChange(RequestBody):
    current_password: Password
    new_password: NewPassword


class ListParams(BaseModel):
    page: int = Field(default=1, ge=1, le=100_000)
    page_size: int = Field(default=20, ge=1, le=100)
    sort_by: SortField = SortField.created_at
    order: Order = Order.desc
    # Text: a NUL is refused here (400), PostgreSQL would refuse it with a 500.
    search: Text | None = Field(default=None, max_length=255)
    role: Role | None = None
    include_deleted: bool = False
