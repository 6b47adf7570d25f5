"""Fixtures of the webhooks suite: a real HTTP receiver on loopback, an admin, helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from gatehouse.events.models import OutboxEvent
from gatehouse.runtime import Runtime
from gatehouse.webhooks.models import WebhookDelivery, WebhookSubscription
from gatehouse.worker.embedded import InProcessRunner
from tests.factories import Account, Api
from tests.http_receiver import HttpReceiver

WEBHOOKS = "/api/v1/webhooks"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The receiver is on loopback; retries right away so a whole schedule runs in a drain.
    return {
        "webhook_allow_private_targets": True,
        "webhook_retry_schedule": [0, 0, 0],
        "webhook_timeout_seconds": 5.0,
    }


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as started:
        yield started


@pytest.fixture
async def admin(api: Api, runner: InProcessRunner) -> Account:
    """A logged-in admin whose own user.created is dispatched before the test subscribes."""
    account = await api.user("admin")
    await runner.drain()
    return account


async def subscribe(api: Api, admin: Account, url: str, *types: str) -> dict[str, Any]:
    response = await api.client.post(
        WEBHOOKS, json={"url": url, "event_types": list(types) or ["*"]}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def deliveries_of(runtime: Runtime, webhook_id: str) -> list[WebhookDelivery]:
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == uuid.UUID(webhook_id))
            .order_by(WebhookDelivery.created_at)
        )
        return list(rows.all())


async def subscription(runtime: Runtime, webhook_id: str) -> WebhookSubscription:
    async with runtime.db.session(write=False) as session:
        row = await session.get(WebhookSubscription, uuid.UUID(webhook_id))
        assert row is not None
        return row


async def outbox_events(runtime: Runtime, event_type: str) -> list[OutboxEvent]:
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(
            select(OutboxEvent).where(OutboxEvent.event_type == event_type).order_by(OutboxEvent.id)
        )
        return list(rows.all())
