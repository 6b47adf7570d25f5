"""Webhook deliveries end to end: a user change → outbox → dispatcher → a signed POST to a
real HTTP receiver on loopback, verified with the `standardwebhooks` package (an
independent implementation); retries, giving up, disabling, the test event, the
deliveries list. Through the API and the in-process runner, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from gatehouse.kit.time import utcnow
from gatehouse.runtime import Runtime
from gatehouse.webhooks import tasks as webhook_tasks
from gatehouse.webhooks.models import WebhookDelivery
from gatehouse.webhooks.signing import sign
from gatehouse.webhooks.tasks import DELIVERY_RETENTION
from gatehouse.worker.embedded import InProcessRunner
from tests.factories import PASSWORD, Account, Api, assert_envelope
from tests.http_receiver import HttpReceiver, Received
from tests.webhooks.conftest import (
    WEBHOOKS,
    deliveries_of,
    outbox_events,
    subscribe,
    subscription,
)


async def create_user(api: Api, admin: Account, email: str = "jane@example.com") -> str:
    response = await api.client.post(
        "/api/v1/users",
        json={"email": email, "name": "Jane Doe", "password": PASSWORD},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    user_id: str = response.json()["id"]
    return user_id


def verified(secret: str, request: Received) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return payload


async def test_user_created_arrives_signed(
    api: Api, admin: Account, runner: InProcessRunner, receiver: HttpReceiver
) -> None:
    hook = await subscribe(api, admin, receiver.url, "user.created")
    user_id = await create_user(api, admin)
    await runner.drain()

    (request,) = await receiver.wait_for(1)
    payload = verified(hook["secret"], request)
    events = await outbox_events(api.runtime, "user.created")
    (event,) = [e for e in events if str(e.aggregate_id) == user_id]
    assert payload == event.payload
    assert payload["event_type"] == "user.created"
    assert payload["data"]["user_id"] == user_id
    assert payload["data"]["email"] == "jane@example.com"
    assert request.method == "POST"
    assert request.path == "/hook"
    assert request.webhook_id == payload["event_id"]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("Gatehouse-Webhooks/")
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["webhook-signature"].startswith("v1,")
    assert hook["secret"] not in str(request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(request.body + b" ", request.headers)

    listed = await api.client.get(f"{WEBHOOKS}/{hook['id']}/deliveries", headers=admin.headers)
    assert listed.status_code == 200
    (delivery,) = listed.json()["data"]
    assert delivery["event_id"] == payload["event_id"]
    assert delivery["event_type"] == "user.created"
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] == 200
    assert delivery["last_error"] is None
    assert delivery["next_attempt_at"] is None
    assert delivery["finished_at"] is not None


async def test_event_types_filter_and_star(
    api: Api, admin: Account, runner: InProcessRunner, receiver: HttpReceiver
) -> None:
    base = receiver.url.removesuffix("/hook")
    await subscribe(api, admin, f"{base}/deleted", "user.deleted")
    await subscribe(api, admin, f"{base}/changes", "user.updated", "user.deleted")
    await subscribe(api, admin, f"{base}/all", "*")
    user_id = await create_user(api, admin)
    await api.client.patch(f"/api/v1/users/{user_id}", json={"name": "J"}, headers=admin.headers)
    await api.client.delete(f"/api/v1/users/{user_id}", headers=admin.headers)
    await runner.drain()

    await receiver.wait_for(6)
    got: dict[str, list[str]] = {}
    for request in receiver.requests:
        got.setdefault(request.path, []).append(request.json()["event_type"])
    assert sorted(got["/deleted"]) == ["user.deleted"]
    assert sorted(got["/changes"]) == ["user.deleted", "user.updated"]
    assert sorted(got["/all"]) == ["user.created", "user.deleted", "user.updated"]


async def test_after_rotation_only_the_new_secret_verifies(
    api: Api, admin: Account, runner: InProcessRunner, receiver: HttpReceiver
) -> None:
    hook = await subscribe(api, admin, receiver.url, "user.created")
    rotated = await api.client.post(f"{WEBHOOKS}/{hook['id']}/rotate-secret", headers=admin.headers)
    new_secret = rotated.json()["secret"]
    await create_user(api, admin)
    await runner.drain()

    (request,) = await receiver.wait_for(1)
    assert verified(new_secret, request)["event_type"] == "user.created"
    with pytest.raises(WebhookVerificationError):
        verified(hook["secret"], request)


async def test_a_failing_receiver_is_retried_then_disabled(
    api: Api, admin: Account, runner: InProcessRunner, receiver: HttpReceiver
) -> None:
    receiver.respond_with(503)
    hook = await subscribe(api, admin, receiver.url, "user.created")
    await create_user(api, admin)
    await runner.drain()

    # 1 attempt + the 3 retries of the schedule [0, 0, 0], then no more.
    requests = await receiver.wait_for(4)
    assert len({r.webhook_id for r in requests}) == 1
    for request in requests:
        verified(hook["secret"], request)
    (delivery,) = await deliveries_of(api.runtime, hook["id"])
    assert delivery.status == "failed"
    assert delivery.attempts == 4
    assert delivery.last_status_code == 503
    assert delivery.last_error == "HTTP 503"
    assert delivery.finished_at is not None

    read = (await api.client.get(f"{WEBHOOKS}/{hook['id']}", headers=admin.headers)).json()
    assert read["enabled"] is False
    assert read["disabled_reason"] == "Delivery failed 4 times in a row (last: HTTP 503)"
    (disabled,) = await outbox_events(api.runtime, "webhook.disabled")
    assert disabled.aggregate_id is not None
    assert str(disabled.aggregate_id) == hook["id"]
    assert disabled.payload["data"] == {
        "webhook_id": hook["id"],
        "url": receiver.url,
        "reason": read["disabled_reason"],
    }

    # Disabled: a new event owes it nothing, and nothing more is sent.
    await create_user(api, admin, "second@example.com")
    await runner.drain()
    assert len(await deliveries_of(api.runtime, hook["id"])) == 1
    assert len(receiver.requests) == 4

    # Re-enabled: the failure is cleared and new events flow again.
    receiver.respond_with(200)
    enabled = await api.client.patch(
        f"{WEBHOOKS}/{hook['id']}", json={"enabled": True}, headers=admin.headers
    )
    assert enabled.json()["enabled"] is True
    assert enabled.json()["disabled_reason"] is None
    await create_user(api, admin, "third@example.com")
    await runner.drain()
    assert verified(hook["secret"], (await receiver.wait_for(5))[-1])["data"]["email"] == (
        "third@example.com"
    )


async def test_two_failures_then_success_is_one_effect(
    api: Api, admin: Account, runner: InProcessRunner, receiver: HttpReceiver
) -> None:
    receiver.fail_next(2)
    hook = await subscribe(api, admin, receiver.url, "user.created")
    await create_user(api, admin)
    await runner.drain()

    requests = await receiver.wait_for(3)
    assert [r.status for r in requests] == [500, 500, 200]
    assert len({r.webhook_id for r in requests}) == 1
    (delivery,) = await deliveries_of(api.runtime, hook["id"])
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
    assert delivery.last_error is None
    assert (await subscription(api.runtime, hook["id"])).enabled is True


async def _make_due(runtime: Runtime, webhook_id: str) -> None:
    async with runtime.db.session() as session:
        await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.subscription_id == uuid.UUID(webhook_id),
                WebhookDelivery.status == "pending",
            )
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


@pytest.mark.parametrize(
    "settings_overrides",
    [{"webhook_allow_private_targets": True, "webhook_retry_schedule": [3600]}],
)
async def test_retries_wait_for_the_schedule(
    api: Api, admin: Account, runner: InProcessRunner, receiver: HttpReceiver
) -> None:
    receiver.respond_with(500)
    hook = await subscribe(api, admin, receiver.url, "user.created")
    await create_user(api, admin)
    await runner.drain()
    await receiver.wait_for(1)

    (delivery,) = await deliveries_of(api.runtime, hook["id"])
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    wait = delivery.next_attempt_at - utcnow()
    assert timedelta(seconds=3500) < wait <= timedelta(seconds=3600)
    await runner.run_now("maintenance.sweep")
    await runner.drain()
    assert len(receiver.requests) == 1  # not due yet: the sweep leaves it alone

    listed = await api.client.get(f"{WEBHOOKS}/{hook['id']}/deliveries", headers=admin.headers)
    (shown,) = listed.json()["data"]
    assert (shown["status"], shown["attempts"], shown["last_status_code"]) == ("pending", 1, 500)
    assert shown["next_attempt_at"] is not None

    await _make_due(api.runtime, hook["id"])  # an hour later
    await runner.run_now("maintenance.sweep")
    await runner.drain()
    await receiver.wait_for(2)
    (delivery,) = await deliveries_of(api.runtime, hook["id"])
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert (await subscription(api.runtime, hook["id"])).enabled is False


async def test_410_gone_disables_at_once(
    api: Api, admin: Account, runner: InProcessRunner, receiver: HttpReceiver
) -> None:
    receiver.respond_with(410)
    hook = await subscribe(api, admin, receiver.url, "user.created")
    await create_user(api, admin)
    await runner.drain()
    assert len(await receiver.wait_for(1)) == 1
    (delivery,) = await deliveries_of(api.runtime, hook["id"])
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 410)
    sub = await subscription(api.runtime, hook["id"])
    assert (sub.enabled, sub.disabled_reason) == (False, "The receiver answered 410 Gone")


async def test_test_event_goes_to_that_subscription_only(
    api: Api, admin: Account, runner: InProcessRunner, receiver: HttpReceiver
) -> None:
    base = receiver.url.removesuffix("/hook")
    hook = await subscribe(api, admin, f"{base}/tested", "user.deleted")
    await subscribe(api, admin, f"{base}/other", "*")
    response = await api.client.post(f"{WEBHOOKS}/{hook['id']}/test", headers=admin.headers)
    assert response.status_code == 202, response.text
    queued = response.json()
    assert (queued["event_type"], queued["status"], queued["attempts"]) == (
        "webhook.test",
        "pending",
        0,
    )
    await runner.drain()

    (request,) = await receiver.wait_for(1)
    assert request.path == "/tested"
    payload = verified(hook["secret"], request)
    assert payload["event_type"] == "webhook.test"
    assert payload["event_id"] == queued["event_id"] == request.webhook_id
    assert payload["data"]["webhook_id"] == hook["id"]
    assert await outbox_events(api.runtime, "webhook.test") == []

    listed = await api.client.get(f"{WEBHOOKS}/{hook['id']}/deliveries", headers=admin.headers)
    (shown,) = listed.json()["data"]
    assert (shown["id"], shown["status"], shown["attempts"]) == (queued["id"], "succeeded", 1)
    missing = await api.client.post(
        f"{WEBHOOKS}/00000000-0000-0000-0000-000000000000/test", headers=admin.headers
    )
    assert_envelope(missing, 404, "WEBHOOK_NOT_FOUND")


async def test_deliveries_list_newest_first_with_a_status_filter(
    api: Api, admin: Account, runner: InProcessRunner, receiver: HttpReceiver
) -> None:
    hook = await subscribe(api, admin, receiver.url, "user.created")
    await create_user(api, admin, "one@example.com")
    await runner.drain()
    receiver.respond_with(500)
    await create_user(api, admin, "two@example.com")
    await runner.drain()
    path = f"{WEBHOOKS}/{hook['id']}/deliveries"

    listed = (await api.client.get(path, headers=admin.headers)).json()
    assert listed["meta"]["total_count"] == 2
    assert [(d["status"], d["attempts"]) for d in listed["data"]] == [
        ("failed", 4),
        ("succeeded", 1),
    ]
    assert listed["data"][0]["last_error"] == "HTTP 500"
    failed = (await api.client.get(f"{path}?status=failed", headers=admin.headers)).json()
    assert [d["id"] for d in failed["data"]] == [listed["data"][0]["id"]]
    paged = (await api.client.get(f"{path}?page=2&page_size=1", headers=admin.headers)).json()
    assert [d["id"] for d in paged["data"]] == [listed["data"][1]["id"]]


async def test_cleanup_removes_old_finished_deliveries(
    api: Api, admin: Account, runner: InProcessRunner, receiver: HttpReceiver
) -> None:
    hook = await subscribe(api, admin, receiver.url, "user.created")
    for email in ("old@example.com", "new@example.com"):
        await create_user(api, admin, email)
    await runner.drain()
    old, new = await deliveries_of(api.runtime, hook["id"])
    async with api.runtime.db.session() as session:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == old.id)
            .values(finished_at=utcnow() - DELIVERY_RETENTION - timedelta(minutes=1))
        )
    await webhook_tasks.cleanup(api.runtime)
    assert [d.id for d in await deliveries_of(api.runtime, hook["id"])] == [new.id]


def test_our_signature_is_the_standard_one() -> None:
    """signing.sign against the reference implementation, byte for byte."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"event_type":"user.created","name":"Zoë"}'
    moment = 1_767_000_000
    expected = Webhook(secret).sign("msg_1", datetime.fromtimestamp(moment, UTC), body)
    assert sign(secret, "msg_1", moment, body.encode()) == expected
