"""Email tests: a real SMTP server (aiosmtpd) per test, the in-process runner, the API."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select

from gatehouse.emails.models import EmailMessage as EmailRow
from gatehouse.runtime import Runtime
from tests.smtp import SmtpServer

REGISTER = "/api/v1/auth/register"
VERIFY = "/api/v1/auth/verify-email"
VERIFY_REQUEST = "/api/v1/auth/verify-email/request"
RESET = "/api/v1/auth/password-reset"
RESET_REQUEST = "/api/v1/auth/password-reset/request"
PUBLIC_URL = "https://app.example.test"

_LINK = re.compile(r"(https?://\S+?)\?token=([A-Za-z0-9_\-]+)")


@pytest.fixture
def smtp_options() -> dict[str, Any]:
    """SmtpServer arguments; parametrize to inject a fault."""
    return {}


@pytest.fixture
def smtp_server(smtp_options: dict[str, Any]) -> Iterator[SmtpServer]:
    with SmtpServer(**smtp_options) as server:
        yield server


@pytest.fixture
def settings_overrides(smtp_server: SmtpServer) -> dict[str, Any]:
    return {**smtp_server.settings(), "public_url": PUBLIC_URL}


def signup(email: str | None = None) -> dict[str, str]:
    return {
        "email": email or f"sam-{uuid.uuid4().hex[:8]}@example.com",
        "name": "Sam Signup",
        "password": "amber-Canyon-31-fox",
    }


def link(message: EmailMessage) -> tuple[str, str]:
    """(page URL, token) of the one link in a mail."""
    body = message.get_content()
    found = _LINK.findall(body)
    assert len(found) == 1, body
    page, token = found[0]
    return page, token


def by_subject(messages: list[EmailMessage], word: str) -> list[EmailMessage]:
    return [m for m in messages if word in str(m["Subject"])]


async def email_rows(runtime: Runtime, **where: Any) -> list[EmailRow]:
    async with runtime.db.session(write=False) as session:
        stmt = select(EmailRow).order_by(EmailRow.created_at)
        for name, value in where.items():
            stmt = stmt.where(getattr(EmailRow, name) == value)
        return list((await session.scalars(stmt)).all())
