"""RL-08: a dedicated redis-server, killed mid-run and restarted.

The machine's shared Redis is never touched: each test starts its own `redis-server`
on a free port. While it is down the general limiter counts in this process's memory
(same limits, one warning per outage, `ratelimit_fallback` counted), or answers 503
when configured to fail closed; never a 500. Restarted, the Redis counters are used
again without restarting the app.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.factories import Api, assert_envelope
from tests.logs import LogCapture
from tests.redis_server import DedicatedRedis

ANON = 5
USERS = "/api/v1/users"
PREFIX = "gatehouse-down:"


@pytest.fixture
def fail_closed() -> bool:
    return False


@pytest.fixture
def settings_overrides(redis_server: DedicatedRedis, fail_closed: bool) -> dict[str, Any]:
    return {
        "rate_limit_enabled": True,
        "rate_limit_anonymous": f"{ANON}/minute",
        "rate_limit_fail_closed": fail_closed,
        "redis_url": redis_server.url,
        "redis_prefix": PREFIX,
        "redis_breaker_failures": 2,
        "redis_breaker_reset_seconds": 0.3,
    }


def remaining(response: httpx.Response) -> int:
    return int(response.headers["X-RateLimit-Remaining"])


async def _until_redis_counts_again(api: Api) -> httpx.Response:
    """Requests until one is counted in Redis again (the breaker probes every 0.3 s)."""
    redis = api.runtime.redis
    assert redis is not None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        before = redis.stats["ratelimit_fallback"]
        response = await api.client.get(USERS)
        assert response.status_code != 500
        if redis.stats["ratelimit_fallback"] == before and response.status_code != 503:
            return response
        await asyncio.sleep(0.1)
    pytest.fail("the limiter never used Redis again after the restart")


async def test_redis_killed_mid_run_falls_back_to_memory_and_recovers(
    api: Api, redis_server: DedicatedRedis, json_logs: LogCapture
) -> None:
    redis = api.runtime.redis
    assert redis is not None
    assert [remaining(await api.client.get(USERS)) for _ in range(2)] == [4, 3]
    assert len(redis_server.keys(f"{PREFIX}*")) == 1, "the counter lives in the dedicated Redis"

    redis_server.kill()
    during = [await api.client.get(USERS) for _ in range(30)]
    statuses = [r.status_code for r in during]
    assert 500 not in statuses
    # The same limit, counted in memory from a fresh window: 5 admitted, then 429.
    assert statuses == [401] * ANON + [429] * 25
    assert [remaining(r) for r in during[:ANON]] == [4, 3, 2, 1, 0]
    assert redis.stats["ratelimit_fallback"] == 30
    assert redis.stats["breaker_opened"] == 1
    warnings = [r for r in json_logs.records() if r["event"] == "ratelimit.redis_unavailable"]
    assert len(warnings) == 1, "one warning per outage, not one per request"
    assert warnings[0]["level"] == "warning"

    redis_server.start()  # same port, empty (no persistence)
    resumed = await _until_redis_counts_again(api)
    assert resumed.status_code == 401
    assert remaining(resumed) == ANON - 1, "a fresh Redis window, counted in Redis"
    assert len(redis_server.keys(f"{PREFIX}*")) == 1
    assert remaining(await api.client.get(USERS)) == ANON - 2
    assert redis.stats["breaker_closed"] >= 1
    events = [r["event"] for r in json_logs.records()]
    assert events.count("ratelimit.shared_counters_resumed") == 1
    assert events.count("ratelimit.redis_unavailable") == 1


@pytest.mark.parametrize("fail_closed", [True])
async def test_fail_closed_answers_503_while_redis_is_down_and_recovers(
    api: Api, redis_server: DedicatedRedis
) -> None:
    redis = api.runtime.redis
    assert redis is not None
    assert remaining(await api.client.get(USERS)) == ANON - 1
    redis_server.kill()
    during = [await api.client.get(USERS) for _ in range(10)]
    for response in during:
        assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
        assert int(response.headers["Retry-After"]) >= 1
    assert redis.stats["ratelimit_fail_closed"] == 10
    # Unlimited paths do not depend on Redis at all.
    assert (await api.client.get("/health")).status_code == 200

    redis_server.start()
    resumed = await _until_redis_counts_again(api)
    assert resumed.status_code == 401
    assert remaining(resumed) == ANON - 1
