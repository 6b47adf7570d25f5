"""Login protection on Redis: the per-account hourly cap, counters shared by processes,
and Redis dying mid-run (AUTH-04's "at most 100 failures/hour", RL-08's "login
throttling never becomes unlimited").

The behaviours of tests/security/lockout/test_lockout.py already run on Redis too; these are
the parts only a shared store or its loss can show.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import time_machine
from redis.asyncio import Redis

from gatehouse.auth.protection import LoginProtection, Verdict
from gatehouse.cache.redis import RedisClient
from gatehouse.config import RateLimitSettings, RedisSettings
from tests.factories import Api, assert_envelope
from tests.redis_server import DedicatedRedis

TOKEN = "/api/v1/auth/token"
WRONG = "Not-The-Password-1"
HOUR = 3600


# AUTH-04: at most 100 failures an hour on one account


async def guesses_per_hour(protection: LoginProtection, clock: list[float]) -> int:
    """A distributed attacker: one guess a second on one account, each from a new IP,
    for two hours. Returns the most guesses let through in any one hour."""
    allowed: list[int] = []
    for second in range(2 * HOUR):
        clock[0] = 1_700_000_000.0 + second
        ip = f"10.{second // 65536}.{second // 256 % 256}.{second % 256}"
        attempt = await protection.begin("victim@example.com", ip)
        if attempt.verdict is Verdict.allowed:
            allowed.append(second)
    return max(sum(1 for s in allowed if start <= s < start + HOUR) for start in allowed)


async def test_the_account_layer_caps_guesses_at_100_an_hour_in_memory() -> None:
    clock = [0.0]
    protection = LoginProtection(RateLimitSettings(), clock=lambda: clock[0])
    assert await guesses_per_hour(protection, clock) == 74  # defaults: 10 + 6 + 58


async def test_the_account_layer_caps_guesses_at_100_an_hour_on_redis(
    redis_url: str, redis_prefix: str
) -> None:
    clock = [0.0]
    client = RedisClient(RedisSettings(redis_url=redis_url, redis_prefix=redis_prefix))
    try:
        protection = LoginProtection(RateLimitSettings(), client, clock=lambda: clock[0])
        assert await guesses_per_hour(protection, clock) == 74
        assert protection.stats["fallback"] == 0  # every verdict came from Redis
    finally:
        await client.close()


# Two processes on one Redis share the counters


async def test_two_processes_share_one_lock(redis_url: str, redis_prefix: str) -> None:
    settings = RedisSettings(redis_url=redis_url, redis_prefix=redis_prefix)
    first, second = RedisClient(settings), RedisClient(settings)
    try:
        one = LoginProtection(RateLimitSettings(), first)
        two = LoginProtection(RateLimitSettings(), second)
        for protection in (one, two, one, two, one):  # 5 failures across the two
            attempt = await protection.begin("shared@example.com", "192.0.2.1")
            assert attempt.verdict is Verdict.allowed
        for protection in (one, two):
            attempt = await protection.begin("shared@example.com", "192.0.2.1")
            assert attempt.verdict is Verdict.pair_locked
    finally:
        await first.close()
        await second.close()


# RL-08 (login part): Redis killed mid-run


@pytest.fixture
def settings_overrides(redis_server: DedicatedRedis) -> dict[str, Any]:
    return {
        "rate_limit_enabled": True,
        "rate_limit_login": "100000/hour",
        "trusted_proxies": ["127.0.0.1/32"],
        "redis_url": redis_server.url,
        "redis_breaker_reset_seconds": 0.3,
    }


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        yield traveller


async def login(api: Api, email: str, password: str, ip: str) -> httpx.Response:
    return await api.client.post(
        TOKEN, json={"username": email, "password": password}, headers={"X-Forwarded-For": ip}
    )


async def login_keys(server: DedicatedRedis) -> list[bytes]:
    client = Redis.from_url(server.url)
    try:
        keys = await client.keys("gatehouse:login:*")
        return [key if isinstance(key, bytes) else key.encode() for key in keys]
    finally:
        await client.aclose()


async def test_login_throttling_survives_redis_dying_and_resumes_on_redis(
    api: Api, redis_server: DedicatedRedis, clock: time_machine.Traveller
) -> None:
    attacker = "203.0.113.9"
    victim, bystander = await api.create_user(), await api.create_user()
    for _ in range(3):
        assert_envelope(await login(api, victim.email, WRONG, attacker), 401)
    assert await login_keys(redis_server)  # the counters are in Redis

    redis_server.kill()
    statuses = []
    for _ in range(5):  # 5 more failures: counted by the in-process fallback
        statuses.append((await login(api, victim.email, WRONG, attacker)).status_code)
    locked = await login(api, victim.email, victim.password, attacker)
    statuses.append(locked.status_code)
    assert statuses == [401] * 6  # no 500, and the right password is refused: locked
    assert_envelope(locked, 401, "INVALID_CREDENTIALS")
    other = await login(api, bystander.email, bystander.password, "198.51.100.1")
    assert other.status_code == 200, other.text  # everyone else still logs in

    redis_server.start()
    await asyncio.sleep(0.35)  # the breaker's pause (monotonic time: no travel for it)
    relocked = await login(api, victim.email, victim.password, attacker)
    assert_envelope(relocked, 401, "INVALID_CREDENTIALS")  # the fallback's lock still holds
    clock.shift(60)
    assert (await login(api, victim.email, WRONG, attacker)).status_code == 401
    assert await login_keys(redis_server)  # counting is back on Redis
    assert (await login(api, victim.email, victim.password, attacker)).status_code == 200
