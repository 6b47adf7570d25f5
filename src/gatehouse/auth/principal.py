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
    # The access token's `amr`: how the session's login was made (RFC 8176).
    amr: tuple[str, ...] = ("pwd",)

    @property
    def second_factor(self) -> bool:
        """The token says its login used a second factor."""
        return "mfa" in self.amr

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin

    def can_read_users(self) -> bool:
        return self.role in (Role.admin, Role.readonly)
