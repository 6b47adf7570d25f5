"""Delivering one webhook: claim the due row, send it signed, record what happened.

No transaction stays open while the receiver is called. The claim counts the attempt
and leases the row (`next_attempt_at` moves past the attempt's time limit), so no
other worker or sweep takes it meanwhile; the outcome is then recorded only if the
row still carries that attempt. A worker that dies mid-attempt leaves the lease to
expire and the sweep to try again with the same `webhook-id`: at least once, and the
receiver deduplicates. Counting at the claim also means a delivery that kills its
worker every time still runs out of attempts.

The secret is decrypted for each attempt, outside the transactions: a secret that
cannot be decrypted (its key was removed from GATEHOUSE_ENCRYPTION_KEYS) fails the
attempt, says so in the delivery's `last_error`, and is retried on the schedule.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import structlog

from gatehouse.config import WorkerSettings
from gatehouse.events import outbox
from gatehouse.events.schemas import WebhookDisabled
from gatehouse.kit import metrics
from gatehouse.kit.encryption import EncryptionError
from gatehouse.kit.time import utcnow
from gatehouse.observability import tracing
from gatehouse.runtime import Runtime
from gatehouse.uow import UnitOfWork
from gatehouse.webhooks.delivery import Outcome, WebhookSender
from gatehouse.webhooks.models import WebhookDelivery
from gatehouse.webhooks.repository import FAILED, PENDING, SUCCEEDED, WebhookRepository
from gatehouse.webhooks.service import DELIVER_JOB
from gatehouse.webhooks.signing import sign, unseal

log = structlog.get_logger("gatehouse.webhooks")

# Beyond the attempt's own time limit, for the commits around it.
LEASE_MARGIN_SECONDS = 5.0
INTERRUPTED = "The last attempt was interrupted before its outcome was recorded"
UNDECRYPTABLE = "Not sent: the signing secret cannot be decrypted (see the server's log)"
# What became of an attempt (gatehouse_webhook_deliveries_total): delivered, failed and
# to be retried, or failed for good.
Result = Literal["delivered", "failed", "dead"]


@dataclass(frozen=True, slots=True)
class Claim:
    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    url: str
    # As stored: encrypted (or, saved before encryption, in clear).
    stored_secret: str
    message_id: str
    body: bytes
    attempt: int


def encode(payload: dict[str, Any]) -> bytes:
    """The request body: the event envelope, compact JSON in UTF-8 (what is signed)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def max_attempts(settings: WorkerSettings) -> int:
    return len(settings.webhook_retry_schedule) + 1


def shown_url(url: str) -> str:
    """The URL without query or fragment, which may hold a receiver's token."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def signed_headers(claim: Claim, secret: str, timestamp: int) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "webhook-id": claim.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, claim.message_id, timestamp, claim.body),
    }
    # With tracing on, the receiver can join the trace of the change (not signed: it
    # says nothing about the event).
    tracing.inject(headers)
    return headers


async def deliver(runtime: Runtime, delivery_id: uuid.UUID) -> None:
    """Make the delivery's next attempt if it is due; a no-op otherwise."""
    settings = runtime.settings.worker
    async with runtime.unit_of_work() as uow:
        claim = await claim_attempt(uow, settings, delivery_id)
    if claim is None:
        return
    started = time.perf_counter()
    try:
        secret = unseal(runtime.encryption, claim.subscription_id, claim.stored_secret)
    except EncryptionError:
        # Logged with its kid by the key ring; nothing is sent unsigned.
        outcome = Outcome(None, UNDECRYPTABLE)
    else:
        headers = signed_headers(claim, secret, int(time.time()))
        outcome = await runtime.part(WebhookSender).send(claim.url, claim.body, headers)
    elapsed = time.perf_counter() - started
    log.info(
        "webhooks.attempt",
        delivery_id=str(claim.delivery_id),
        webhook_id=str(claim.subscription_id),
        attempt=claim.attempt,
        status_code=outcome.status_code,
        error=outcome.error,
    )
    async with runtime.unit_of_work() as uow:
        result = await record_outcome(uow, settings, claim, outcome)
    if result is not None:
        metrics.WEBHOOK_DELIVERIES.labels(result).inc()
        metrics.WEBHOOK_DURATION.labels(result).observe(elapsed)


async def claim_attempt(
    uow: UnitOfWork, settings: WorkerSettings, delivery_id: uuid.UUID
) -> Claim | None:
    """Count and lease the next attempt; None if the delivery is not due (or taken)."""
    repo = WebhookRepository(uow.session)
    now = utcnow()
    found = await repo.claim_due(delivery_id, now)
    if found is None:
        return None
    delivery, subscription = found
    if not subscription.enabled:
        return None  # it waits: re-enabling the subscription makes it due again
    if delivery.attempts >= max_attempts(settings):
        delivery.last_status_code = None
        delivery.last_error = INTERRUPTED
        await give_up(uow, delivery, INTERRUPTED, now)
        metrics.WEBHOOK_DELIVERIES.labels("dead").inc()
        return None
    delivery.attempts += 1
    delivery.next_attempt_at = now + timedelta(
        seconds=settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS
    )
    return Claim(
        delivery_id=delivery.id,
        subscription_id=subscription.id,
        url=subscription.url,
        stored_secret=subscription.secret,
        message_id=str(delivery.event_id),
        body=encode(delivery.payload),
        attempt=delivery.attempts,
    )


async def record_outcome(
    uow: UnitOfWork, settings: WorkerSettings, claim: Claim, outcome: Outcome
) -> Result | None:
    """Store the attempt's outcome: done, retried per the schedule, or given up (None: a
    later attempt owns the row now)."""
    delivery = await WebhookRepository(uow.session).lock_delivery(claim.delivery_id)
    if delivery is None or delivery.status != PENDING or delivery.attempts != claim.attempt:
        # Deleted, or the lease expired and a later attempt owns the row now.
        log.info("webhooks.outcome_superseded", delivery_id=str(claim.delivery_id))
        return None
    now = utcnow()
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error
    if outcome.succeeded:
        delivery.status = SUCCEEDED
        delivery.finished_at = now
        return "delivered"
    if outcome.gone:
        await give_up(uow, delivery, "The receiver answered 410 Gone", now)
        return "dead"
    schedule = settings.webhook_retry_schedule
    if delivery.attempts < max_attempts(settings):
        delay = schedule[delivery.attempts - 1]
        delivery.next_attempt_at = now + timedelta(seconds=delay)
        if delay == 0:
            uow.jobs.after_commit(DELIVER_JOB, delivery_id=str(delivery.id))
        # Later retries are found by the sweep once due.
        return "failed"
    reason = f"Delivery failed {delivery.attempts} times in a row (last: {outcome.error})"
    await give_up(uow, delivery, reason, now)
    return "dead"


async def give_up(uow: UnitOfWork, delivery: WebhookDelivery, reason: str, now: datetime) -> None:
    """The delivery failed for good: so does its subscription, and an event says so."""
    delivery.status = FAILED
    delivery.finished_at = now
    subscription = await WebhookRepository(uow.session).get(delivery.subscription_id, lock=True)
    if subscription is None or not subscription.enabled:
        return
    reason = reason if len(reason) <= 255 else reason[:254] + "…"
    subscription.enabled = False
    subscription.disabled_reason = reason
    await outbox.record(
        uow,
        WebhookDisabled(webhook_id=subscription.id, url=shown_url(subscription.url), reason=reason),
        aggregate_id=subscription.id,
    )
    log.warning("webhooks.disabled", webhook_id=str(subscription.id), reason=reason)
