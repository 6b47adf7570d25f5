"""Admin API for webhook subscriptions: admins manage them, readonly users may look."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from gatehouse.auth.principal import Principal
from gatehouse.dependencies import AdminUser, RuntimeDep, StaffUser, UowDep
from gatehouse.kit.http import etag, parse_if_match
from gatehouse.kit.openapi import AUTHED, ETAG_HEADER, IfMatch, errors
from gatehouse.kit.schemas import PageMeta
from gatehouse.webhooks.models import WebhookDelivery, WebhookSubscription
from gatehouse.webhooks.repository import PENDING
from gatehouse.webhooks.schemas import (
    DeliveryList,
    DeliveryParams,
    DeliveryRead,
    ListParams,
    WebhookCreate,
    WebhookList,
    WebhookPatch,
    WebhookRead,
    WebhookWithSecret,
)
from gatehouse.webhooks.service import WebhookService, WithSecret
from gatehouse.webhooks.targets import origin

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], responses=errors(*AUTHED))


async def get_webhook_service(uow: UowDep, runtime: RuntimeDep) -> WebhookService:
    return WebhookService(uow, runtime.settings.worker, runtime.encryption)


WebhookServiceDep = Annotated[WebhookService, Depends(get_webhook_service)]


def _with_secret(issued: WithSecret, response: Response) -> WebhookWithSecret:
    # The secret in clear from the service: the row holds it encrypted.
    response.headers["ETag"] = etag(issued.subscription.version)
    read = WebhookRead.model_validate(issued.subscription)
    return WebhookWithSecret(**read.model_dump(), secret=issued.secret)


def _read(
    subscription: WebhookSubscription, response: Response, actor: Principal | None = None
) -> WebhookRead:
    response.headers["ETag"] = etag(subscription.version)
    return _shown(subscription, actor)


def _shown(subscription: WebhookSubscription, actor: Principal | None) -> WebhookRead:
    """The read model for this caller: a receiver's path and query often carry its
    credential (a token in the URL), so readonly callers see the origin alone."""
    read = WebhookRead.model_validate(subscription)
    if actor is not None and not actor.is_admin:
        read.url = origin(read.url)
    return read


def _delivery(row: WebhookDelivery) -> DeliveryRead:
    read = DeliveryRead.model_validate(row)
    if row.status != PENDING:
        read.next_attempt_at = None
    return read


@router.post(
    "",
    response_model=WebhookWithSecret,
    status_code=status.HTTP_201_CREATED,
    responses={201: {"headers": ETAG_HEADER}},
)
async def create_webhook(
    body: WebhookCreate, _: AdminUser, webhooks: WebhookServiceDep, response: Response
) -> WebhookWithSecret:
    """Subscribe a URL to events (admin); the signing `secret` is shown only here."""
    issued = await webhooks.create(body)
    response.headers["Location"] = f"/api/v1/webhooks/{issued.subscription.id}"
    return _with_secret(issued, response)


@router.get("", response_model=WebhookList)
async def list_webhooks(
    actor: StaffUser, webhooks: WebhookServiceDep, params: Annotated[ListParams, Query()]
) -> WebhookList:
    """List webhook subscriptions, newest first (admin, readonly: `url` is its origin)."""
    rows, total = await webhooks.list(params)
    return WebhookList(
        data=[_shown(row, actor) for row in rows],
        meta=PageMeta.build(params.page, params.page_size, total),
    )


@router.get(
    "/{webhook_id}",
    response_model=WebhookRead,
    responses={**errors(404), 200: {"headers": ETAG_HEADER}},
)
async def get_webhook(
    webhook_id: uuid.UUID, actor: StaffUser, webhooks: WebhookServiceDep, response: Response
) -> WebhookRead:
    """Read one subscription, without its secret (admin, readonly: `url` is its origin)."""
    return _read(await webhooks.get(webhook_id), response, actor)


@router.patch("/{webhook_id}", response_model=WebhookRead, responses=errors(404, 409))
async def update_webhook(
    webhook_id: uuid.UUID,
    body: WebhookPatch,
    _: AdminUser,
    webhooks: WebhookServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> WebhookRead:
    """Change the URL, event types, description, or enable/disable it (admin)."""
    subscription = await webhooks.update(
        webhook_id, body.model_dump(exclude_unset=True), parse_if_match(if_match)
    )
    return _read(subscription, response)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404, 409))
async def delete_webhook(
    webhook_id: uuid.UUID, _: AdminUser, webhooks: WebhookServiceDep, if_match: IfMatch = None
) -> None:
    """Delete a subscription and its delivery history (admin)."""
    await webhooks.delete(webhook_id, parse_if_match(if_match))


@router.post(
    "/{webhook_id}/rotate-secret", response_model=WebhookWithSecret, responses=errors(404, 409)
)
async def rotate_secret(
    webhook_id: uuid.UUID,
    _: AdminUser,
    webhooks: WebhookServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> WebhookWithSecret:
    """Replace the signing secret (admin); the new one is shown only here."""
    issued = await webhooks.rotate_secret(webhook_id, parse_if_match(if_match))
    return _with_secret(issued, response)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList, responses=errors(404))
async def list_deliveries(
    webhook_id: uuid.UUID,
    _: StaffUser,
    webhooks: WebhookServiceDep,
    params: Annotated[DeliveryParams, Query()],
) -> DeliveryList:
    """Recent deliveries of a subscription, newest first (admin, readonly)."""
    rows, total = await webhooks.deliveries(webhook_id, params)
    return DeliveryList(
        data=[_delivery(row) for row in rows],
        meta=PageMeta.build(params.page, params.page_size, total),
    )


@router.post(
    "/{webhook_id}/test",
    response_model=DeliveryRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors(404, 409),
)
async def send_test(
    webhook_id: uuid.UUID, _: AdminUser, webhooks: WebhookServiceDep
) -> DeliveryRead:
    """Send a signed `webhook.test` event to this subscription only (admin)."""
    return _delivery(await webhooks.send_test(webhook_id))
