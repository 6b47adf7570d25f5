"""AUD-07: an admin change and its audit row commit together or not at all.

The audit append is made to fail in the middle of an admin change: the change must be
rolled back with it (fail closed: no change without its row), no event may leave
through the outbox, and the caller gets the 5xx envelope with its request id, never a
traceback.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gatehouse.audit import trail
from gatehouse.audit.models import AuditEvent
from gatehouse.audit.service import verify_chain
from gatehouse.events.models import OutboxEvent
from gatehouse.runtime import Runtime
from gatehouse.users.models import User
from gatehouse.webhooks.models import WebhookSubscription
from tests.factories import PASSWORD, Account, Api, assert_envelope

FAILURE = "audit store unavailable (injected)"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"webhook_allow_private_targets": True}


async def broken_append(*_: Any, **__: Any) -> None:
    raise RuntimeError(FAILURE)


async def count(runtime: Runtime, model: Any, *where: Any) -> int:
    async with runtime.db.session(write=False) as session:
        found: int | None = await session.scalar(
            select(func.count()).select_from(model).where(*where)
        )
        return found or 0


async def snapshot(runtime: Runtime, user_id: uuid.UUID) -> tuple[Any, ...]:
    async with runtime.db.session(write=False) as session:
        user = await session.get(User, user_id)
        assert user is not None
        return (user.email, user.name, user.role, user.deleted_at, user.version)


CHANGES: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "rename": ("PATCH", "/api/v1/users/{id}", {"name": "Never Stored"}),
    "role change": ("PATCH", "/api/v1/users/{id}", {"role": "admin"}),
    "delete": ("DELETE", "/api/v1/users/{id}", None),
    "end sessions": ("DELETE", "/api/v1/users/{id}/sessions", None),
    "create user": (
        "POST",
        "/api/v1/users",
        {"email": "never-stored@example.com", "name": "Never Stored", "password": PASSWORD},
    ),
    "create webhook": (
        "POST",
        "/api/v1/webhooks",
        {"url": "https://hooks.example.com/never", "event_types": ["*"]},
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
async def test_a_failing_audit_append_rolls_the_change_back(
    api: Api, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    runtime = api.runtime
    admin = await api.user("admin")
    target: Account = await api.user()
    before = await snapshot(runtime, target.id)
    rows_before = await count(runtime, AuditEvent)
    events_before = await count(runtime, OutboxEvent)
    method, path, body = CHANGES[change]

    with monkeypatch.context() as patch:
        patch.setattr(trail, "append", broken_append)
        response = await api.client.request(
            method, path.format(id=target.id), json=body, headers=admin.headers
        )
    error = assert_envelope(response, 500, "INTERNAL_ERROR")
    request_id = response.headers["x-request-id"]
    assert request_id in error["message"]
    assert "Traceback" not in response.text
    assert FAILURE not in response.text

    # Nothing of the request was stored: not the change, not an event, not a row.
    assert await snapshot(runtime, target.id) == before
    assert await count(runtime, User, User.email == "never-stored@example.com") == 0
    assert await count(runtime, WebhookSubscription) == 0
    assert await count(runtime, OutboxEvent) == events_before
    assert await count(runtime, OutboxEvent, OutboxEvent.request_id == request_id) == 0
    assert await count(runtime, AuditEvent) == rows_before
    await still_logged_in(api, target)
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.ok, verdict.problem


async def still_logged_in(api: Api, account: Account) -> None:
    """The target's sessions were not ended (a rolled-back delete or session kill)."""
    response: httpx.Response = await api.client.get("/api/v1/users/me", headers=account.headers)
    assert response.status_code == 200, response.text
