"""Which real services this run can reach, and what a missing one means.

With REQUIRE_SERVICES=1 (CI) a missing service fails the run; otherwise its suites
are skipped and the summary says so loudly.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

REQUIRE = os.environ.get("REQUIRE_SERVICES") == "1"
POSTGRES_ADMIN_URL = os.environ.get(
    "GATEHOUSE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)

REDIS_URL = os.environ.get("GATEHOUSE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("GATEHOUSE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")

skipped_suites: dict[str, str] = {}


def reachable(url: str, timeout: float = 1.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout):
            return True
    except OSError:
        return False


def require(name: str, url: str) -> None:
    """Skip (or, under REQUIRE_SERVICES=1, fail) when a service cannot be reached."""
    if reachable(url):
        return
    where = urlsplit(url)
    reason = f"{name} unreachable at {where.hostname}:{where.port}"
    if REQUIRE:
        pytest.fail(f"{reason} and REQUIRE_SERVICES=1", pytrace=False)
    skipped_suites[name] = reason
    pytest.skip(reason)


async def admin_sql(statement: str, url: str = POSTGRES_ADMIN_URL) -> None:
    """One statement outside a transaction (CREATE/DROP DATABASE) on the admin database."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()
