"""Cache lookups, the Redis breaker and the fallbacks from Redis, as requests cause them
and `GET /metrics` shows them. Redis is a server of the test's own where it is killed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import Api
from tests.redis_server import DedicatedRedis
from tests.scrape import scrape

ME = "/api/v1/users/me"
LOOKUPS = "gatehouse_cache_lookups_total"
FALLBACKS = "gatehouse_redis_fallbacks_total"
BREAKER = "gatehouse_redis_breaker_open"


@pytest.fixture
def shared_redis(redis_url: str, redis_prefix: str) -> dict[str, Any]:
    return {"redis_url": redis_url, "redis_prefix": redis_prefix}


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(request.getfixturevalue(request.param))


@pytest.mark.parametrize("settings_overrides", ["shared_redis"], indirect=True)
async def test_a_first_read_misses_and_the_next_hits(api: Api) -> None:
    me = await api.user()
    before = await scrape(api.client)
    assert (await api.client.get(ME, headers=me.headers)).status_code == 200
    middle = await scrape(api.client)
    assert middle.since(before, LOOKUPS, kind="principal", result="miss") == 1
    assert middle.since(before, LOOKUPS, kind="user", result="miss") == 1
    assert middle.since(before, LOOKUPS, result="hit") == 0
    for _ in range(2):
        assert (await api.client.get(ME, headers=me.headers)).status_code == 200
    after = await scrape(api.client)
    assert after.since(middle, LOOKUPS, kind="principal", result="hit") == 2
    assert after.since(middle, LOOKUPS, kind="user", result="hit") == 2
    assert after.since(middle, LOOKUPS, result="miss") == 0


class Clock:
    """The breaker's clock, moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dedicated_redis(redis_server: DedicatedRedis) -> dict[str, Any]:
    return {
        "redis_url": redis_server.url,
        "redis_prefix": "gatehouse-metrics-down:",
        "redis_timeout_seconds": 0.2,
        "redis_breaker_failures": 3,
        "redis_breaker_reset_seconds": 5,
        "rate_limit_enabled": True,
    }


@pytest.mark.parametrize("settings_overrides", ["dedicated_redis"], indirect=True)
async def test_redis_down_opens_the_breaker_and_counts_every_fallback(
    api: Api, redis_server: DedicatedRedis
) -> None:
    redis = api.runtime.redis
    assert redis is not None
    clock = Clock()
    redis.breaker.clock = clock
    me = await api.user()
    assert (await api.client.get(ME, headers=me.headers)).status_code == 200
    before = await scrape(api.client)

    redis_server.kill()
    for _ in range(5):
        assert (await api.client.get(ME, headers=me.headers)).status_code == 200
    wrong = {"username": me.email, "password": "Not-The-Password-1"}
    assert (await api.client.post("/api/v1/auth/token", json=wrong)).status_code == 401
    down = await scrape(api.client)
    assert down.value(BREAKER) == 1
    # Each request's cache lookups went to the database; the limits and the login
    # counters were kept in memory.
    assert down.since(before, FALLBACKS, use="cache") >= 5
    assert down.since(before, FALLBACKS, use="rate_limit") >= 6
    assert down.since(before, FALLBACKS, use="login_protection") >= 1
    assert down.since(before, LOOKUPS) == 0

    redis_server.start()  # same port, empty
    clock.now += 6  # past the breaker's pause: the next call probes, and succeeds
    for _ in range(2):
        assert (await api.client.get(ME, headers=me.headers)).status_code == 200
    back = await scrape(api.client)
    assert back.value(BREAKER) == 0
    assert back.since(down, LOOKUPS) > 0

    redis_server.kill()  # and down again: the gauge goes back to 1 from 0
    for _ in range(5):
        await api.client.get(ME, headers=me.headers)
    assert (await scrape(api.client)).value(BREAKER) == 1
