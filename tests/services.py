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


# Marks a skip for the summary; under pytest-xdist the skip happens in a worker and the
# controller learns of it from the test's report (conftest.pytest_runtest_logreport).
SUITE_SKIP = "suite not run: "


def skip_suite(name: str, reason: str) -> None:
    """Skip (or, under REQUIRE_SERVICES=1, fail) a test whose suite cannot run here."""
    if REQUIRE:
        pytest.fail(f"{name}: {reason} and REQUIRE_SERVICES=1", pytrace=False)
    skipped_suites[name] = reason
    pytest.skip(f"{SUITE_SKIP}{name}: {reason}")


def note_skip(message: str) -> None:
    """Record a suite skipped in another process, from its skip message."""
    start = message.find(SUITE_SKIP)
    if start >= 0:
        name, _, reason = message[start + len(SUITE_SKIP) :].partition(": ")
        skipped_suites.setdefault(name, reason)


def require(name: str, url: str) -> None:
    """Skip (or, under REQUIRE_SERVICES=1, fail) when a service cannot be reached."""
    if reachable(url):
        return
    where = urlsplit(url)
    skip_suite(name, f"{name} unreachable at {where.hostname}:{where.port}")


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
