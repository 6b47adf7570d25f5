"""Brute-force protection on login: AUTH-03…AUTH-08 and RL-06.

Every test runs on the in-process store with SQLite (the embedded default), and on Redis
with SQLite and with PostgreSQL (tests/security/lockout/conftest.py). Waits are crossed
with time travel: the protection reads the application clock, so Redis key TTLs (server
time) do not matter here.
Defaults under test: lock at 5 failures per (account, IP), 60 s doubling to 900 s;
account delay after 10 failures, 1 s doubling to 60 s; 100 failed logins per IP and
hour; counters reset after 12 h without a failure.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import bcrypt
import httpx
import pytest
import time_machine
from fastapi import FastAPI

from gatehouse.runtime import Runtime
from tests.factories import Account, Api, assert_envelope

TOKEN = "/api/v1/auth/token"
WRONG = "Not-The-Password-1"
ATTACKER = "203.0.113.66"
OWNER = "198.51.100.20"
RESET = 12 * 3600


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        yield traveller


@pytest.fixture
def bcrypt_checks(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    calls: Counter[str] = Counter()
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls["checkpw"] += 1
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return calls


async def login(api: Api, username: str, password: str, ip: str = ATTACKER) -> httpx.Response:
    return await api.client.post(
        TOKEN,
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": ip},
    )


async def fail(api: Api, account: Account, times: int, ip: str = ATTACKER) -> None:
    for _ in range(times):
        assert_envelope(await login(api, account.email, WRONG, ip), 401, "INVALID_CREDENTIALS")


async def accepted(api: Api, account: Account, ip: str = ATTACKER) -> bool:
    """Log in with the right password: True on 200, False on the wrong-password answer."""
    response = await login(api, account.email, account.password, ip)
    if response.status_code == 200:
        return True
    assert_envelope(response, 401, "INVALID_CREDENTIALS")
    return False


def comparable(response: httpx.Response) -> tuple[int, dict[str, Any], set[str]]:
    error = dict(response.json()["error"])
    del error["request_id"], error["timestamp"]
    return response.status_code, error, set(response.headers)


# AUTH-03


async def test_a_locked_pair_answers_the_right_password_exactly_like_a_wrong_one(
    api: Api, clock: time_machine.Traveller, bcrypt_checks: Counter[str]
) -> None:
    account = await api.create_user()
    wrong = await login(api, account.email, WRONG)
    unknown = await login(api, "nobody-here@example.com", WRONG)
    await fail(api, account, 4)  # 5 failures: locked
    bcrypt_checks.clear()
    locked = await login(api, account.email, account.password)
    assert bcrypt_checks["checkpw"] == 1  # still one check: the same cost as any attempt
    assert comparable(locked) == comparable(wrong) == comparable(unknown)
    assert "retry-after" not in locked.headers
    clock.shift(60)
    assert await accepted(api, account)


# AUTH-04


async def test_the_lock_starts_at_the_fifth_failure(api: Api) -> None:
    account = await api.create_user()
    await fail(api, account, 4)
    assert await accepted(api, account)  # 4 failures: not locked (and the success resets)
    await fail(api, account, 5)
    assert not await accepted(api, account)


async def test_the_wait_doubles_up_to_the_maximum(api: Api, clock: time_machine.Traveller) -> None:
    account = await api.create_user()
    await fail(api, account, 5)
    # After failure 5, 6, ... the pair waits 60, 120, 240, 480, then 900 s (capped).
    for wait in (60, 120, 240, 480, 900, 900):
        clock.shift(wait - 1)
        assert not await accepted(api, account), wait  # one second early: refused
        clock.shift(1)
        await fail(api, account, 1)  # the wait is over: this failure counts again
    clock.shift(899)
    assert not await accepted(api, account)
    clock.shift(1)
    assert await accepted(api, account)


async def test_failures_are_forgotten_after_the_reset_window(
    api: Api, clock: time_machine.Traveller
) -> None:
    early, late = await api.create_user(), await api.create_user()
    await fail(api, early, 4)
    await fail(api, late, 4)
    clock.shift(RESET - 1)
    await fail(api, early, 1)  # 5th failure inside the window: locked
    assert not await accepted(api, early)
    clock.shift(1)
    await fail(api, late, 1)  # the window passed without failures: this is the 1st
    assert await accepted(api, late)


async def test_a_success_resets_the_counter(api: Api) -> None:
    account = await api.create_user()
    await fail(api, account, 4)
    assert await accepted(api, account)
    await fail(api, account, 4)
    assert await accepted(api, account)  # 8 failures in all, but never 5 in a row
    await fail(api, account, 5)
    assert not await accepted(api, account)


# AUTH-05


async def test_failures_during_the_lock_do_not_lengthen_it(
    api: Api, clock: time_machine.Traveller
) -> None:
    account = await api.create_user()
    await fail(api, account, 5)
    for attempt in range(90):  # 90 more attempts while locked, some with the right password
        clock.shift(0.5)
        if attempt % 10 == 0:
            assert not await accepted(api, account)
        else:
            await fail(api, account, 1)
    clock.shift(60 - 45)  # 60 s after the 5th failure: the first wait, not a longer one
    assert await accepted(api, account)


# AUTH-06


async def test_case_and_space_variants_count_against_one_account(
    api: Api, clock: time_machine.Traveller
) -> None:
    account = await api.create_user(email="Alice.Case@Example.com")
    variants = [
        "Alice.Case@Example.com",
        "alice.case@example.com",
        " alice.case@example.com ",
        "ALICE.CASE@EXAMPLE.COM",
        "  aLiCe.CaSe@example.COM",
    ]
    for variant in variants:
        response = await login(api, variant, WRONG)
        assert_envelope(response, 401, "INVALID_CREDENTIALS")
    assert not await accepted(api, account)  # 5 failures on one account: locked
    clock.shift(60)
    for variant in variants:
        response = await login(api, variant, account.password)
        assert response.status_code == 200, (variant, response.text)


# AUTH-07


async def test_one_ip_probing_unknown_accounts_is_throttled_with_bounded_state(
    api: Api, app: FastAPI, runtime: Runtime, bcrypt_checks: Counter[str]
) -> None:
    statuses: Counter[int] = Counter()
    retry_after = set()
    for _ in range(500):
        response = await login(api, f"ghost-{uuid.uuid4().hex}@example.com", WRONG)
        statuses[response.status_code] += 1
        if response.status_code == 429:
            assert_envelope(response, 429, "RATE_LIMITED")
            retry_after.add(int(response.headers["retry-after"]))
    assert statuses == {401: 100, 429: 400}
    assert bcrypt_checks["checkpw"] == 100  # a throttled attempt costs no password check
    assert all(1 <= seconds <= 3600 for seconds in retry_after)

    # State: one pair and one account entry per counted failure, plus the IP window.
    protection = runtime.protection
    assert protection is not None
    if runtime.redis is None:
        assert len(protection.memory) <= 201
    else:
        redis = runtime.redis.redis
        keys = await redis.keys(runtime.redis.prefix + "login:*")
        assert len(keys) <= 201
        ttls = [await redis.ttl(key) for key in keys]
        assert all(0 < ttl <= RESET + 1 for ttl in ttls)  # every key expires

    # Another address is not throttled by it.
    owner = await api.create_user()
    assert await accepted(api, owner, ip=OWNER)


# AUTH-08


async def test_an_attackers_burst_from_one_ip_does_not_lock_out_the_owner(api: Api) -> None:
    account = await api.create_user()
    await fail(api, account, 50, ip=ATTACKER)  # 5 counted, then refused while locked
    assert await accepted(api, account, ip=OWNER)
    assert not await accepted(api, account, ip=ATTACKER)  # the attacker's pair stays locked


async def test_a_patient_attacker_delays_the_owner_by_at_most_a_minute(
    api: Api, clock: time_machine.Traveller
) -> None:
    """50 counted failures from one IP, each as soon as the pair's lock allows (~11 h).

    The account delay then applies from every IP: 60 s after the attacker's latest
    failure. That minute is the whole cost to the owner; an admin need not step in.
    """
    account = await api.create_user()
    for failure in range(1, 51):
        if failure > 5:  # wait out the lock the previous failure set
            clock.shift(min(60 * 2 ** (failure - 6), 900))
        await fail(api, account, 1, ip=ATTACKER)
    assert not await accepted(api, account, ip=OWNER)
    clock.shift(59)
    assert not await accepted(api, account, ip=OWNER)
    clock.shift(1)
    assert await accepted(api, account, ip=OWNER)


# RL-06


@pytest.mark.parametrize("extra_settings", [{"rate_limit_login": "100/hour"}])
async def test_stuffing_one_account_is_stopped_at_the_lock_not_the_general_budget(
    api: Api, runtime: Runtime
) -> None:
    account = await api.create_user()
    budget = int(runtime.settings.rate_limit.rate_limit_login.split("/")[0])
    results = []
    for attempt in range(1, 31):  # the password is right from the 6th attempt on
        password = WRONG if attempt <= 5 else account.password
        response = await login(api, account.email, password)
        results.append(response.status_code)
        # The general login budget (100/h) is still far from spent.
        assert int(response.headers["x-ratelimit-remaining"]) == budget - attempt
    assert results == [401] * 30  # never 200, never 429: the login lock, at 5 attempts


# The switch


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_enabled": False}])
async def test_rate_limit_enabled_false_switches_the_protection_off(api: Api) -> None:
    account = await api.create_user()
    await fail(api, account, 20, ip="127.0.0.1")
    assert await accepted(api, account, ip="127.0.0.1")
