"""Small helpers to make users and log in, through the real services and API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from gatehouse.kit.time import utcnow
from gatehouse.recovery.repository import ActionTokenRepository
from gatehouse.runtime import Runtime
from gatehouse.users.models import Role
from gatehouse.users.schemas import UserCreate
from gatehouse.users.service import UserService

PASSWORD = "Tr1cky-Horse-Battery"


@dataclass
class Account:
    id: uuid.UUID
    email: str
    password: str
    role: Role
    access_token: str = ""
    refresh_token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class Api:
    def __init__(self, client: httpx.AsyncClient, runtime: Runtime) -> None:
        self.client = client
        self.runtime = runtime

    async def create_user(
        self,
        role: Role | str = Role.user,
        *,
        email: str | None = None,
        name: str = "Test Person",
        password: str = PASSWORD,
    ) -> Account:
        """A user made through the service (as an admin would), not yet logged in."""
        email = email or f"{Role(role).value}-{uuid.uuid4().hex[:8]}@example.com"
        async with self.runtime.unit_of_work() as uow:
            service = UserService(uow, self.runtime.settings.auth, self.runtime.hasher)
            user = await service.create(
                UserCreate(email=email, name=name, password=password, role=Role(role))
            )
        return Account(id=user.id, email=user.email, password=password, role=Role(role))

    async def login(self, account: Account, **headers: str) -> Account:
        response = await self.client.post(
            "/api/v1/auth/token",
            json={"username": account.email, "password": account.password},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        account.access_token = body["access_token"]
        account.refresh_token = body["refresh_token"]
        return account

    async def user(self, role: Role | str = Role.user, **kwargs: Any) -> Account:
        """A logged-in user of the given role."""
        return await self.login(await self.create_user(role, **kwargs))

    async def reset_password(self, account: Account, new_password: str) -> None:
        """Reset the password as the mailed link does: a token minted by the real
        repository, spent at the API. The account carries the new password afterwards."""
        async with self.runtime.db.session() as session:
            token = await ActionTokenRepository(session).issue(
                account.id, "password_reset", account.email, 3600, utcnow()
            )
        reset = await self.client.post(
            "/api/v1/auth/password-reset", json={"token": token, "new_password": new_password}
        )
        assert reset.status_code == 204, reset.text
        account.password = new_password


def assert_envelope(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """The response is the error envelope of docs/api.md, with the request id echoed."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details", "timestamp", "request_id"}, error
    assert error["request_id"] == response.headers["x-request-id"]
    assert error["timestamp"].endswith("Z")
    if code is not None:
        assert error["code"] == code, error
    result: dict[str, Any] = error
    return result
