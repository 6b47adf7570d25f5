"""User changes reach a RabbitMQ consumer: the right events, in order, as documented.

Through the API and the in-process runner, on SQLite and PostgreSQL: each event is
valid against its committed JSON Schema (docs/events/schemas), persistent, routed by
its type, and carries no secret.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gatehouse.worker.embedded import InProcessRunner
from tests.events.consumer import EventConsumer
from tests.events.support import SECRET_KEYS, outbox_rows
from tests.factories import PASSWORD, Api

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "events" / "schemas"
USERS = "/api/v1/users"


@pytest.fixture
def settings_overrides(broker_overrides: dict[str, Any]) -> dict[str, Any]:
    return broker_overrides


def validator(event_type: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{event_type}.json").read_text())
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def assert_no_secret(value: Any, path: str = "") -> None:
    """No key names a secret, and no value is a password, a bcrypt hash or a JWT."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert not any(word in key.lower() for word in SECRET_KEYS), f"{path}.{key}"
            assert_no_secret(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            assert_no_secret(item, path)
    elif isinstance(value, str):
        assert PASSWORD not in value, path
        assert "$2b$" not in value, path
        assert not value.startswith("eyJ"), path


async def test_create_update_delete_reach_the_consumer_in_order(
    api: Api, runner: InProcessRunner, consumer: EventConsumer
) -> None:
    admin = await api.user("admin")
    email = f"jane-{uuid.uuid4().hex[:8]}@example.com"
    created = await api.client.post(
        USERS,
        json={"email": email, "name": "Jane", "password": PASSWORD},
        headers={**admin.headers, "X-Request-ID": "req-create-1"},
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    patched = await api.client.patch(
        f"{USERS}/{user_id}", json={"name": "Jane Doe", "role": "readonly"}, headers=admin.headers
    )
    assert patched.status_code == 200, patched.text
    deleted = await api.client.delete(f"{USERS}/{user_id}", headers=admin.headers)
    assert deleted.status_code == 204, deleted.text

    await consumer.wait_for(lambda: len(consumer.of_user(user_id)) >= 3, what="3 events")
    await runner.drain()
    got = consumer.of_user(user_id)
    assert [m.routing_key for m in got] == ["user.created", "user.updated", "user.deleted"]
    assert [m.body["data"]["version"] for m in got] == [1, 2, 3]
    rows = {str(row.event_id): row for row in await outbox_rows(api.runtime)}
    for message in got:
        assert message.type == message.routing_key == message.body["event_type"]
        assert message.delivery_mode == 2  # persistent
        assert message.content_type == "application/json"
        assert message.message_id == message.body["event_id"]
        assert message.headers["aggregate_id"] == user_id
        validator(message.routing_key).validate(message.body)
        assert_no_secret(message.body)
        assert_no_secret(message.headers)
        # Exactly the envelope the outbox row holds, and the row is marked published.
        row = rows[message.event_id]
        assert message.body == row.payload
        assert row.published_at is not None
        assert row.dispatched_at is not None
    assert got[0].headers["request_id"] == "req-create-1"
    assert got[0].body["data"] == {
        "user_id": user_id,
        "email": email,
        "name": "Jane",
        "role": "user",
        "email_verified": False,
        "version": 1,
    }
    # Only the fields that changed, with their new values.
    assert got[1].body["data"]["changes"] == {"name": "Jane Doe", "role": "readonly"}
    assert got[2].body["data"] == {"user_id": user_id, "version": 3}
    assert len(consumer.received) == len(consumer.event_ids())  # no duplicate here


async def test_a_change_of_one_field_reports_that_field_only(
    api: Api, runner: InProcessRunner, consumer: EventConsumer
) -> None:
    admin = await api.user("admin")
    account = await api.user("user")
    same = await api.client.patch(
        f"{USERS}/{account.id}", json={"name": "Test Person"}, headers=admin.headers
    )
    assert same.status_code == 200
    email = f"moved-{uuid.uuid4().hex[:8]}@example.com"
    moved = await api.client.patch(
        f"{USERS}/{account.id}", json={"email": email, "name": "Test Person"}, headers=admin.headers
    )
    assert moved.status_code == 200, moved.text
    password = await api.client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "An0ther-Long-Passphrase"},
        headers=account.headers,
    )
    assert password.status_code == 204, password.text

    await consumer.wait_for(lambda: len(consumer.of_user(account.id)) >= 3)
    got = consumer.of_user(account.id)
    # The no-op update announced nothing.
    assert [m.routing_key for m in got] == [
        "user.created",
        "user.updated",
        "user.password_changed",
    ]
    assert got[1].body["data"]["changes"] == {"email": email}
    assert got[2].body["data"]["reason"] == "changed"
    for message in got:
        validator(message.routing_key).validate(message.body)
        assert_no_secret(message.body)
