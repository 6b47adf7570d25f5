"""Fixtures of the clients suite: an admin, bodies, and readers of the outbox."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from gatehouse.events.models import OutboxEvent
from gatehouse.runtime import Runtime
from tests.factories import Account, Api

CLIENTS = "/api/v1/clients"
CALLBACK = "https://app.example.com/callback"


def web_app(**changes: Any) -> dict[str, Any]:
    """A confidential server-side web app: code + refresh, OpenID scopes."""
    return {
        "name": "Acme CRM",
        "type": "confidential",
        "redirect_uris": [CALLBACK],
        "post_logout_redirect_uris": ["https://app.example.com/bye"],
        "scopes": ["openid", "profile", "email", "offline_access"],
        "grant_types": ["authorization_code", "refresh_token"],
        **changes,
    }


def spa(**changes: Any) -> dict[str, Any]:
    """A public browser app."""
    return {
        "name": "Acme SPA",
        "type": "public",
        "redirect_uris": ["http://127.0.0.1:5173/callback"],
        "scopes": ["openid", "profile"],
        "grant_types": ["authorization_code"],
        **changes,
    }


@pytest.fixture
async def admin(api: Api) -> Account:
    return await api.user("admin")


async def register(api: Api, admin: Account, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.post(CLIENTS, json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def outbox_events(runtime: Runtime, prefix: str = "client.") -> list[dict[str, Any]]:
    """The payloads of the outbox's events whose type starts with `prefix`, in order."""
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.event_type.startswith(prefix))
            .order_by(OutboxEvent.id)
        )
        return [row.payload for row in rows.all()]
