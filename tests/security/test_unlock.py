"""`gatehouse unlock --email`, and the audit rows of locks and unlocks.

On Redis, the API runs in-process and the operator runs the real `gatehouse` command
beside it, on the same database, Redis and data directory. Without Redis, where each
serving process keeps its locks in its own memory, a real `gatehouse serve` process
holds them and the command reaches it through the database only.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import time_machine
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from gatehouse.audit.models import AuditEvent
from gatehouse.auth.service import unlock
from gatehouse.runtime import Runtime
from tests.factories import Account, Api, assert_envelope
from tests.processes import ServerProcess, serve, stop

GATEHOUSE = str(Path(sys.executable).parent / "gatehouse")
TOKEN = "/api/v1/auth/token"
WRONG = "Not-The-Password-1"
ATTACKER = "203.0.113.9"
STRANGER = "198.51.100.77"  # the owner on an address the account has never used
ELSEWHERE = "192.0.2.55"  # and on another
THRESHOLD = 3


PROTECTION: dict[str, Any] = {
    "rate_limit_enabled": True,
    "rate_limit_login": "100000/hour",
    "trusted_proxies": ["127.0.0.1/32"],
    # Both layers arm on the same failure, for a minute: far longer than the test.
    "login_lockout_threshold": THRESHOLD,
    "login_lockout_base_seconds": 60,
    "login_account_delay_threshold": THRESHOLD,
    "login_account_delay_base_seconds": 60,
}
# The in-process API with its login protection in memory, or on Redis.
STORES = pytest.mark.parametrize("settings_overrides", ["memory", "redis"], indirect=True)


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    overrides = dict(PROTECTION)
    if getattr(request, "param", "memory") == "redis":
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


def service_env(runtime: Runtime, signing_key_pem: str) -> dict[str, str]:
    """The environment of the service `runtime` stands for (its database, data directory,
    Redis and login protection), for a `gatehouse` process."""
    settings = runtime.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env |= {
        "GATEHOUSE_ENV": "test",
        "GATEHOUSE_DATA_DIR": str(settings.server.data_dir),
        "GATEHOUSE_DATABASE_URL": settings.database_url,
        "GATEHOUSE_JWT_PRIVATE_KEY": signing_key_pem,
        "GATEHOUSE_BCRYPT_ROUNDS": "4",
        "GATEHOUSE_LOG_FORMAT": "json",
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    env |= {f"GATEHOUSE_{name.upper()}": str(value) for name, value in PROTECTION.items()}
    env["GATEHOUSE_TRUSTED_PROXIES"] = ",".join(PROTECTION["trusted_proxies"])
    if settings.redis.redis_url is not None:
        env["GATEHOUSE_REDIS_URL"] = settings.redis.redis_url.get_secret_value()
        env["GATEHOUSE_REDIS_PREFIX"] = settings.redis.redis_prefix
    return env


async def gatehouse(env: dict[str, str], *args: str) -> tuple[int, str]:
    """The operator's command, in a process of its own."""
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


async def lock_out(client: httpx.AsyncClient, account: Account) -> None:
    """Wrong passwords from one address until both layers hold, then more while they do."""
    for _ in range(THRESHOLD + 2):
        assert await login(client, account, WRONG, ATTACKER) == 401
    # The right password is refused now, from the attacker's address (the pair's lock)
    # and from an address the account never used (the account delay).
    assert await login(client, account, account.password, ATTACKER) == 401
    assert await login(client, account, account.password, STRANGER) == 401


def assert_unlock_audited(row: AuditEvent, account: Account) -> None:
    assert row.outcome == "success"
    assert row.actor_id is None
    assert row.actor_role == "system"
    assert row.pii is not None
    assert row.pii["email"] == account.email


@STORES
async def test_a_lock_is_audited_once_whatever_the_refused_attempts_after_it(
    api: Api, runtime: Runtime
) -> None:
    account = await api.create_user()
    await lock_out(api.client, account)

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


@pytest.mark.parametrize("settings_overrides", ["redis"], indirect=True)
async def test_unlock_on_redis_lets_the_right_password_in_at_once_and_is_audited(
    api: Api, runtime: Runtime, signing_key_pem: str
) -> None:
    account = await api.create_user()
    await lock_out(api.client, account)
    env = service_env(runtime, signing_key_pem)

    code, out = await gatehouse(env, "unlock", "--email", account.email.upper())

    assert code == 0, out
    assert f"{account.email.upper()}: login locks and delay ended" in out
    assert await login(api.client, account, account.password, ATTACKER) == 200
    assert await login(api.client, account, account.password, STRANGER) == 200
    (row,) = await audit_rows(runtime, "auth.unlock", account)
    assert_unlock_audited(row, account)

    # A new attack locks the account again: the unlock was no standing exemption.
    for _ in range(THRESHOLD):
        assert await login(api.client, account, WRONG, ATTACKER) == 401
    assert await login(api.client, account, account.password, ATTACKER) == 401

    if not runtime.settings.is_sqlite:
        return  # the unknown address once: it is answered before any store is touched
    code, out = await gatehouse(env, "unlock", "--email", "nobody@example.com")
    assert code == 1
    assert "No account has the address 'nobody@example.com'" in out
    assert "Traceback" not in out


@pytest.fixture
async def server(
    runtime: Runtime, signing_key_pem: str, tmp_path: Path
) -> AsyncIterator[tuple[ServerProcess, dict[str, str]]]:
    """A real `gatehouse serve` without Redis on the test's database: its login locks
    live in its own memory. With the environment it runs in."""
    env = service_env(runtime, signing_key_pem)
    assert "GATEHOUSE_REDIS_URL" not in env
    process = await serve(env, tmp_path / "serve.log")
    try:
        yield process, env
    finally:
        await stop(process)


async def test_unlock_reaches_a_server_without_redis_through_the_database(
    api: Api, runtime: Runtime, server: tuple[ServerProcess, dict[str, str]]
) -> None:
    process, env = server
    alice, bob = await api.create_user(), await api.create_user()
    async with httpx.AsyncClient(base_url=process.url, timeout=30) as http:
        for account in (alice, bob):
            for _ in range(THRESHOLD):
                assert await login(http, account, WRONG, ATTACKER) == 401
        # Bob's right password is refused: the pair's lock, and the account delay from
        # an address the account never used. (Alice's is not tried before her unlock:
        # the server asks the database at most once a second per account, and the
        # command may take less than that.)
        assert await login(http, bob, bob.password, ATTACKER) == 401
        assert await login(http, bob, bob.password, STRANGER) == 401

        code, out = await gatehouse(env, "unlock", "--email", alice.email)

        assert code == 0, out
        said = " ".join(out.split())  # as wrapped to the terminal's width
        assert f"{alice.email}: unlocked (user {alice.id})" in said
        assert "applies it at the account's next login attempt" in said
        assert "Traceback" not in out
        # At once, from an address the account never used (the delay has ended) and
        # from the attacker's (so has the pair's lock).
        assert await login(http, alice, alice.password, STRANGER) == 200
        assert await login(http, alice, alice.password, ATTACKER) == 200
        # Bob was not unlocked: his locks hold, looking for an unlock opened nothing.
        assert await login(http, bob, bob.password, ATTACKER) == 401
        assert await login(http, bob, bob.password, STRANGER) == 401
        # Nor is Alice's unlock a standing exemption: a new lock, after it, holds. (Her
        # browser's device cookie and the stranger's address are known sources now, which
        # the delay lets through: the attacker has neither, nor does this address.)
        http.cookies.clear()
        for _ in range(THRESHOLD):
            assert await login(http, alice, WRONG, ATTACKER) == 401
        assert await login(http, alice, alice.password, ATTACKER) == 401
        assert await login(http, alice, alice.password, ELSEWHERE) == 401

    (row,) = await audit_rows(runtime, "auth.unlock", alice)
    assert_unlock_audited(row, alice)
    assert await audit_rows(runtime, "auth.unlock", bob) == []
    # Two locks of Alice's (before and after the unlock), one of Bob's: both layers each.
    for account, locks in ((alice, 2), (bob, 1)):
        scopes = [row.details["scope"] for row in await audit_rows(runtime, "auth.lock", account)]
        assert sorted(scopes) == sorted(["account", "account_ip"] * locks)
    logins = await audit_rows(runtime, "auth.login", alice)
    assert [row.outcome for row in logins].count("success") == 2


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_refused_attempts_look_for_an_unlock_once_a_second_per_account(
    api: Api, runtime: Runtime
) -> None:
    """An attack's refused attempts, however many, cost the database one look a second
    per account (the in-process store, the clock frozen)."""
    looks: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "max(audit_events.occurred_at)" in statement:
            looks.append(statement)

    account = await api.create_user()
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        for _ in range(THRESHOLD):
            assert await login(api.client, account, WRONG, ATTACKER) == 401
        event.listen(Engine, "before_cursor_execute", count)
        try:
            for ip in (ATTACKER, STRANGER) * 5:
                assert await login(api.client, account, account.password, ip) == 401
            assert len(looks) == 1
            clock.shift(0.5)
            async with runtime.unit_of_work() as uow:
                await unlock(uow, runtime.protection, account.email)
            # Within the second, the last answer (no unlock) stands.
            assert await login(api.client, account, account.password, STRANGER) == 401
            assert len(looks) == 1
            clock.shift(0.5)
            assert await login(api.client, account, account.password, STRANGER) == 200
            assert len(looks) == 2
        finally:
            event.remove(Engine, "before_cursor_execute", count)
