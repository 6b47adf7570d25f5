"""The rules about webhook subscriptions. Never commits: the caller's unit of work does."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy.orm.exc import StaleDataError

from gatehouse.audit.trail import Entry
from gatehouse.config import WorkerSettings
from gatehouse.errors import ValidationFailed, VersionConflict
from gatehouse.events.models import OutboxEvent
from gatehouse.events.schemas import WebhookTest, envelope
from gatehouse.kit.encryption import KeyRing
from gatehouse.kit.time import utcnow
from gatehouse.uow import UnitOfWork
from gatehouse.webhooks.errors import WebhookInactive, WebhookNotFound
from gatehouse.webhooks.models import WebhookDelivery, WebhookSubscription
from gatehouse.webhooks.repository import WebhookRepository
from gatehouse.webhooks.schemas import (
    ALL_EVENTS,
    DeliveryParams,
    ListParams,
    WebhookCreate,
)
from gatehouse.webhooks.signing import new_secret, seal
from gatehouse.webhooks.targets import TargetRefused, check_url, origin

DELIVER_JOB = "webhooks.deliver"
TEST_EVENT = "webhook.test"
DISABLED_BY_ADMIN = "Disabled by an admin"
# A create or update waits at most this long for DNS to vet the target.
RESOLVE_TIMEOUT_SECONDS = 3.0


def _state(subscription: WebhookSubscription) -> dict[str, Any]:
    """The audited view of a subscription: never its secret, URL path or query."""
    return {
        "url": origin(subscription.url),
        "event_types": list(subscription.event_types),
        "enabled": subscription.enabled,
    }


def wants(subscription: WebhookSubscription, event_type: str) -> bool:
    types = subscription.event_types
    return ALL_EVENTS in types or event_type in types


async def fan_out(uow: UnitOfWork, event: OutboxEvent) -> list[uuid.UUID]:
    """Owe `event` to every enabled subscription that wants it (once each); the new
    deliveries' ids, each kicked after commit."""
    if event.event_type == TEST_EVENT:
        return []  # a test goes to the one subscription it was asked for, never fanned out
    repo = WebhookRepository(uow.session)
    created: list[uuid.UUID] = []
    for subscription in await repo.enabled():
        if not wants(subscription, event.event_type):
            continue
        delivery_id = await repo.add_delivery(
            {
                "subscription_id": subscription.id,
                "event_id": event.event_id,
                "event_type": event.event_type,
                "payload": event.payload,
                "request_id": event.request_id,
                "next_attempt_at": utcnow(),
                "created_at": utcnow(),
            }
        )
        if delivery_id is not None:
            created.append(delivery_id)
            uow.jobs.after_commit(DELIVER_JOB, delivery_id=str(delivery_id))
    return created


class WithSecret(NamedTuple):
    """A subscription and its new signing secret in clear: stored encrypted, this is
    the one moment it is readable without the key ring (shown once to the admin)."""

    subscription: WebhookSubscription
    secret: str


class WebhookService:
    def __init__(self, uow: UnitOfWork, settings: WorkerSettings, encryption: KeyRing) -> None:
        self.uow = uow
        self.session = session = uow.session
        self.settings = settings
        self.encryption = encryption
        self.repo = WebhookRepository(session)

    async def list(self, params: ListParams) -> tuple[Sequence[WebhookSubscription], int]:
        rows, total = await self.repo.page(params.page, params.page_size)
        self._audit(
            "webhook.read",
            None,
            details={"view": "list", "page": params.page, "returned": len(rows)},
        )
        return rows, total

    async def get(self, webhook_id: uuid.UUID) -> WebhookSubscription:
        """Read one subscription (audited as `webhook.read`)."""
        subscription = await self._find(webhook_id)
        self._audit("webhook.read", webhook_id, details={"view": "get"})
        return subscription

    async def _find(self, webhook_id: uuid.UUID) -> WebhookSubscription:
        subscription = await self.repo.get(webhook_id)
        if subscription is None:
            raise WebhookNotFound(webhook_id)
        return subscription

    def _audit(
        self, action: str, webhook_id: uuid.UUID | None, details: dict[str, Any] | None = None
    ) -> None:
        self.uow.audit.record(
            Entry(
                action,
                target_type="webhook",
                target_id=str(webhook_id) if webhook_id is not None else None,
                details=details or {},
            ),
        )

    async def create(self, data: WebhookCreate) -> WithSecret:
        """A new subscription with a fresh secret (read it from the result, once)."""
        await self._check_target(data.url)
        # The id first: the stored secret is bound to its row.
        webhook_id = uuid.uuid4()
        secret = new_secret()
        subscription = WebhookSubscription(
            id=webhook_id,
            url=data.url,
            event_types=data.event_types,
            description=data.description,
            secret=seal(self.encryption, webhook_id, secret),
        )
        self.repo.add(subscription)
        await self._flush()
        self._audit("webhook.create", subscription.id, details=_state(subscription))
        return WithSecret(subscription, secret)

    async def update(
        self, webhook_id: uuid.UUID, changes: dict[str, Any], expected_version: int | None
    ) -> WebhookSubscription:
        subscription = await self._get_for_write(webhook_id, expected_version)
        before = {**_state(subscription), "description": subscription.description}
        before_url = subscription.url
        if changes.get("url") is not None and changes["url"] != subscription.url:
            await self._check_target(str(changes["url"]))
            subscription.url = str(changes["url"])
        if changes.get("event_types") is not None:
            subscription.event_types = list(changes["event_types"])
        if changes.get("description") is not None:
            subscription.description = str(changes["description"])
        enabled = changes.get("enabled")
        if enabled is True and not subscription.enabled:
            subscription.enabled = True
            subscription.disabled_reason = None
            # What waited while it was off is due again now.
            for delivery_id in await self.repo.resume(subscription.id, utcnow()):
                self.uow.jobs.after_commit(DELIVER_JOB, delivery_id=str(delivery_id))
        elif enabled is False and subscription.enabled:
            subscription.enabled = False
            subscription.disabled_reason = DISABLED_BY_ADMIN
        await self._flush()
        self._audit_update(subscription, before, before_url)
        return subscription

    def _audit_update(
        self, subscription: WebhookSubscription, before: dict[str, Any], before_url: str
    ) -> None:
        """Which fields changed, with old and new safe values: the URL as its origin only
        (a changed path shows as a change with equal origins), the description by name
        (free text an admin typed)."""
        after = {**_state(subscription), "description": subscription.description}
        changed = [name for name in after if after[name] != before[name] and name != "url"]
        if subscription.url != before_url:
            changed.insert(0, "url")
        details: dict[str, Any] = {"fields": changed}
        for name in ("url", "event_types", "enabled"):
            if name in changed:
                details[name] = {"from": before[name], "to": after[name]}
        self._audit("webhook.update", subscription.id, details=details)

    async def delete(self, webhook_id: uuid.UUID, expected_version: int | None) -> None:
        """Remove a subscription and its deliveries (pending ones are never sent)."""
        subscription = await self._get_for_write(webhook_id, expected_version)
        state = _state(subscription)
        await self.repo.delete(subscription)
        await self._flush()
        self._audit("webhook.delete", webhook_id, details=state)

    async def rotate_secret(
        self, webhook_id: uuid.UUID, expected_version: int | None
    ) -> WithSecret:
        """A new secret; every attempt from now on is signed with it alone."""
        subscription = await self._get_for_write(webhook_id, expected_version)
        secret = new_secret()
        subscription.secret = seal(self.encryption, subscription.id, secret)
        await self._flush()
        self._audit("webhook.rotate_secret", webhook_id, details={"fields": ["secret"]})
        return WithSecret(subscription, secret)

    async def deliveries(
        self, webhook_id: uuid.UUID, params: DeliveryParams
    ) -> tuple[Sequence[WebhookDelivery], int]:
        await self._find(webhook_id)
        status = params.status.value if params.status is not None else None
        rows, total = await self.repo.deliveries_page(
            webhook_id, params.page, params.page_size, status
        )
        details: dict[str, Any] = {"view": "deliveries", "page": params.page, "returned": len(rows)}
        if status is not None:
            details["status"] = status
        self._audit("webhook.read", webhook_id, details=details)
        return rows, total

    async def send_test(self, webhook_id: uuid.UUID) -> WebhookDelivery:
        """Queue a `webhook.test` delivery for this subscription only."""
        subscription = await self._find(webhook_id)
        if not subscription.enabled:
            raise WebhookInactive()
        event_id = uuid.uuid4()
        now = utcnow()
        data = WebhookTest(
            webhook_id=subscription.id, message="A test event, sent on an admin's request"
        )
        delivery = WebhookDelivery(
            id=uuid.uuid4(),
            subscription_id=subscription.id,
            event_id=event_id,
            event_type=TEST_EVENT,
            payload=envelope(TEST_EVENT, event_id, now, data),
            request_id=self.uow.actor.request_id,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        self.repo.add_delivery_row(delivery)
        await self._flush()
        self._audit(
            "webhook.test",
            webhook_id,
            details={"delivery_id": str(delivery.id), "event_id": str(event_id)},
        )
        self.uow.jobs.after_commit(DELIVER_JOB, delivery_id=str(delivery.id))
        return delivery

    async def _get_for_write(
        self, webhook_id: uuid.UUID, expected_version: int | None
    ) -> WebhookSubscription:
        subscription = await self._find(webhook_id)
        if expected_version is not None and expected_version != subscription.version:
            raise VersionConflict()
        return subscription

    async def _check_target(self, url: str) -> None:
        try:
            await check_url(
                url,
                allow_private=self.settings.webhook_allow_private_targets,
                within=min(RESOLVE_TIMEOUT_SECONDS, self.settings.webhook_timeout_seconds),
            )
        except TargetRefused as exc:
            raise ValidationFailed({"url": [str(exc)]}) from None

    async def _flush(self) -> None:
        try:
            await self.session.flush()
        except StaleDataError:
            raise VersionConflict() from None
