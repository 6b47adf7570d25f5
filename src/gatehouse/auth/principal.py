"""Who is calling: resolved from the access token and checked against the database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gatehouse.users.models import Role


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    role: Role
    session_id: uuid.UUID
    auth_version: int

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin

    def can_read_users(self) -> bool:
        return self.role in (Role.admin, Role.readonly)
