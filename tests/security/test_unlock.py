"""`gatehouse unlock --email`, and the audit rows of locks and unlocks.

The API runs in-process (its login protection on the in-process store or on Redis, its
database SQLite or PostgreSQL); the operator runs the real `gatehouse` command beside
it, on the same database, Redis and data directory.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gatehouse.audit.models import AuditEvent
from gatehouse.runtime import Runtime
from tests.factories import Account, Api, assert_envelope

GATEHOUSE = str(Path(sys.executable).parent / "gatehouse")
TOKEN = "/api/v1/auth/token"
WRONG = "Not-The-Password-1"
ATTACKER = "203.0.113.9"
STRANGER = "198.51.100.77"  # the owner on an address the account has never used
THRESHOLD = 3


@pytest.fixture(params=["memory", "redis"])
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "rate_limit_enabled": True,
        "rate_limit_login": "100000/hour",
        "trusted_proxies": ["127.0.0.1/32"],
        # Both layers arm on the same failure, for a minute: far longer than the test.
        "login_lockout_threshold": THRESHOLD,
        "login_lockout_base_seconds": 60,
        "login_account_delay_threshold": THRESHOLD,
        "login_account_delay_base_seconds": 60,
    }
    if request.param == "redis":
        overrides["redis_url"] = request.getfixturevalue("redis_url")
        overrides["redis_prefix"] = request.getfixturevalue("redis_prefix")
    return overrides


async def login(client: httpx.AsyncClient, account: Account, password: str, ip: str) -> int:
    response = await client.post(
        TOKEN,
        json={"username": account.email, "password": password},
        headers={"X-Forwarded-For": ip},
    )
    if response.status_code != 200:
        assert_envelope(response, 401, "INVALID_CREDENTIALS")
    return response.status_code


async def gatehouse(runtime: Runtime, *args: str) -> tuple[int, str]:
    """The operator's command, configured like the running service."""
    settings = runtime.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env |= {
        "GATEHOUSE_DATA_DIR": str(settings.server.data_dir),
        "GATEHOUSE_DATABASE_URL": settings.database_url,
        "GATEHOUSE_LOG_FORMAT": "json",
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    if settings.redis.redis_url is not None:
        env["GATEHOUSE_REDIS_URL"] = settings.redis.redis_url.get_secret_value()
        env["GATEHOUSE_REDIS_PREFIX"] = settings.redis.redis_prefix
    proc = await asyncio.create_subprocess_exec(
        GATEHOUSE,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def audit_rows(runtime: Runtime, action: str, account: Account) -> list[AuditEvent]:
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == action, AuditEvent.target_id == str(account.id))
            .order_by(AuditEvent.id)
        )
        return list(rows)


async def lock_out(api: Api, account: Account) -> None:
    """Wrong passwords from one address until both layers hold, then more while they do."""
    for _ in range(THRESHOLD + 2):
        assert await login(api.client, account, WRONG, ATTACKER) == 401
    # The right password is refused now, from the attacker's address (the pair's lock)
    # and from an address the account never used (the account delay).
    assert await login(api.client, account, account.password, ATTACKER) == 401
    assert await login(api.client, account, account.password, STRANGER) == 401


async def test_a_lock_is_audited_once_whatever_the_refused_attempts_after_it(
    api: Api, runtime: Runtime
) -> None:
    account = await api.create_user()
    await lock_out(api, account)

    locks = await audit_rows(runtime, "auth.lock", account)
    assert sorted(row.details["scope"] for row in locks) == ["account", "account_ip"]
    for row in locks:
        assert row.outcome == "success"
        assert row.reason == "too_many_failures"
        assert row.details["seconds"] == 60
        assert row.actor_id is None
        assert row.pii is not None
        assert row.pii["ip"] == ATTACKER
        assert row.pii["identifier"] == account.email
    # Every attempt has its login row; the lock only the one.
    failures = await audit_rows(runtime, "auth.login", account)
    assert [row.reason for row in failures] == (
        ["invalid_password"] * THRESHOLD + ["locked"] * 3 + ["delayed_right_password"]
    )


async def test_unlock_lets_the_right_password_in_at_once_and_is_audited(
    api: Api, runtime: Runtime, settings_overrides: dict[str, Any]
) -> None:
    account = await api.create_user()
    await lock_out(api, account)

    code, out = await gatehouse(runtime, "unlock", "--email", account.email.upper())

    if "redis_url" not in settings_overrides:
        # Each serving process counts in its own memory: this command cannot reach it,
        # and says so rather than claim an unlock that did not happen.
        assert code == 1, out
        assert "nothing was unlocked" in out
        assert "GATEHOUSE_REDIS_URL" in out
        assert "Traceback" not in out
        assert await login(api.client, account, account.password, ATTACKER) == 401
        assert await audit_rows(runtime, "auth.unlock", account) == []
        return
    assert code == 0, out
    assert f"{account.email.upper()}: login locks and delay ended" in out
    assert await login(api.client, account, account.password, ATTACKER) == 200
    assert await login(api.client, account, account.password, STRANGER) == 200
    (row,) = await audit_rows(runtime, "auth.unlock", account)
    assert row.outcome == "success"
    assert row.actor_id is None
    assert row.actor_role == "system"
    assert row.pii is not None
    assert row.pii["email"] == account.email

    # A new attack locks the account again: the unlock was no standing exemption.
    for _ in range(THRESHOLD):
        assert await login(api.client, account, WRONG, ATTACKER) == 401
    assert await login(api.client, account, account.password, ATTACKER) == 401

    if not runtime.settings.is_sqlite:
        return  # the unknown address once: it is answered before any store is touched
    code, out = await gatehouse(runtime, "unlock", "--email", "nobody@example.com")
    assert code == 1
    assert "No account has the address 'nobody@example.com'" in out
    assert "Traceback" not in out
