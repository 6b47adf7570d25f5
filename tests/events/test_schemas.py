"""The JSON Schemas in docs/events/schemas are the ones the code generates (CI catches
drift), every event type has one, and they describe payloads that carry no secret
(EVT-14)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gatehouse.events.schemas import (
    EVENT_TYPES,
    UserChanges,
    UserCreated,
    UserUpdated,
    all_schemas,
    envelope,
    schema_documents,
)
from gatehouse.kit.time import utcnow
from gatehouse.users.models import Role
from tests.events.support import SECRET_KEYS

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs" / "events" / "schemas"
DOC = ROOT / "docs" / "events.md"


def committed() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in SCHEMAS.glob("*.json")}


def test_the_committed_schemas_are_the_generated_ones() -> None:
    generated = schema_documents()
    assert sorted(committed()) == sorted(generated), "run `python scripts/export_event_schemas.py`"
    for name, text in generated.items():
        assert committed()[name] == text, (
            f"{name} is out of date: run `python scripts/export_event_schemas.py`"
        )


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_each_schema_is_valid_and_names_no_secret(event_type: str) -> None:
    schema = json.loads((SCHEMAS / f"{event_type}.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["event_type"] == {"const": event_type}

    def property_names(node: Any) -> list[str]:
        if isinstance(node, dict):
            names = list(node.get("properties", {}))
            return names + [n for value in node.values() for n in property_names(value)]
        if isinstance(node, list):
            return [n for value in node for n in property_names(value)]
        return []

    for name in property_names(schema):
        assert not any(word in name.lower() for word in SECRET_KEYS), name
    if event_type.startswith("user."):
        # EVT-14: the aggregate and its version, for ordering and deduplication.
        assert {"user_id", "version"} <= set(schema["properties"]["data"]["required"])


def test_the_schemas_accept_what_gatehouse_emits_and_refuse_the_rest() -> None:
    schemas = all_schemas()
    user_id = uuid.uuid4()
    created = envelope(
        "user.created",
        uuid.uuid4(),
        utcnow(),
        UserCreated(
            user_id=user_id, email="a@example.com", name="A", role=Role.user,
            email_verified=False, version=1,
        ),
    )  # fmt: skip
    updated = envelope(
        "user.updated",
        uuid.uuid4(),
        utcnow(),
        UserUpdated(user_id=user_id, changes=UserChanges(name="B"), version=2),
    )
    check = Draft202012Validator.FORMAT_CHECKER
    Draft202012Validator(schemas["user.created"], format_checker=check).validate(created)
    Draft202012Validator(schemas["user.updated"], format_checker=check).validate(updated)

    wrong = [
        {**updated, "data": {**updated["data"], "changes": {}}},  # an empty change
        {**updated, "data": {**updated["data"], "changes": {"password": "x"}}},
        {**updated, "data": {**updated["data"], "changes": {"name": None}}},
        {**created, "data": {**created["data"], "password_hash": "$2b$..."}},
        {**created, "timestamp": "2026-01-15 10:30:00"},
        {**created, "event_id": "not-a-uuid"},
        {**created, "event_type": "user.updated"},
    ]
    for payload in wrong:
        schema = schemas["user.updated" if "changes" in payload["data"] else "user.created"]
        validator = Draft202012Validator(schema, format_checker=check)
        assert not validator.is_valid(payload), payload


def test_the_integrator_docs_link_every_schema_and_their_examples_validate() -> None:
    text = DOC.read_text(encoding="utf-8")
    for event_type in EVENT_TYPES:
        assert f"events/schemas/{event_type}.json" in text, event_type
    schemas = all_schemas()
    examples = [
        json.loads(block)
        for block in re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
        if '"event_type"' in block
    ]
    assert len(examples) >= 4
    for example in examples:
        validator = Draft202012Validator(
            schemas[example["event_type"]], format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        validator.validate(example)
