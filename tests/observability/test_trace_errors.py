"""A statement that fails leaves a failed span that names the error's type, never the
driver's message: PostgreSQL's quotes the row ("Key (email)=(…) already exists")."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from sqlalchemy.exc import IntegrityError

from gatehouse.runtime import Runtime
from gatehouse.users.models import User
from tests.factories import Api
from tests.observability.support import attribute_text


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def settings_overrides(spans: InMemorySpanExporter) -> dict[str, Any]:
    return {}  # `spans` first: the runtime's engine is instrumented when made


async def test_a_failed_statement_says_its_error_type_and_not_the_row(
    api: Api, runtime: Runtime, spans: InMemorySpanExporter
) -> None:
    taken = await api.create_user()
    spans.clear()

    async def insert_a_copy() -> None:
        async with runtime.db.session() as session:
            session.add(User(email=taken.email, name="Copy Cat", password_hash="-"))
            await session.flush()

    with pytest.raises(IntegrityError):
        await insert_a_copy()

    [failed] = [s for s in spans.get_finished_spans() if s.status.status_code is StatusCode.ERROR]
    assert failed.name.startswith("INSERT")
    assert failed.status.description == "UniqueViolationError"
    assert taken.email not in attribute_text(spans.get_finished_spans())
