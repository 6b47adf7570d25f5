"""The first admin: generated on the embedded default, explicit everywhere else."""

from __future__ import annotations

import secrets

from pydantic import ValidationError

from gatehouse.errors import EmailTaken, ValidationFailed
from gatehouse.runtime import Runtime
from gatehouse.users.models import Role
from gatehouse.users.repository import UserRepository
from gatehouse.users.schemas import UserCreate
from gatehouse.users.service import UserService

DEFAULT_ADMIN_EMAIL = "admin@example.com"


async def has_admin(runtime: Runtime) -> bool:
    async with runtime.db.session(write=False) as session:
        return await UserRepository(session).has_live_admin()


async def create_admin(runtime: Runtime, *, email: str, name: str, password: str) -> str:
    """Create an admin through the same rules as the API (policy, unique email)."""
    try:
        data = UserCreate(email=email, name=name, password=password, role=Role.admin)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc.errors()) from None
    async with runtime.unit_of_work() as uow:
        user = await UserService(uow, runtime.settings.auth, runtime.hasher).create(data)
        return str(user.id)


async def first_admin(runtime: Runtime) -> tuple[str, str | None] | None:
    """On the first start outside production, create an admin with a one-time password.

    Returns (email, password shown once) when it created one; None when users exist
    or in production, where `gatehouse create-admin` is the only way.
    """
    settings = runtime.settings
    if settings.is_production:
        return None
    async with runtime.db.session(write=False) as session:
        if await UserRepository(session).has_users():
            return None
    email = settings.auth.admin_email or DEFAULT_ADMIN_EMAIL
    configured = settings.auth.admin_password
    password = configured.get_secret_value() if configured else secrets.token_urlsafe(15)
    try:
        await create_admin(runtime, email=email, name="Administrator", password=password)
    except EmailTaken:
        # Another process starting at the same moment made it: theirs is the first admin.
        return None
    return email, None if configured else password
