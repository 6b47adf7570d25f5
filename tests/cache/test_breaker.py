"""The circuit breaker opens for a failing Redis, not for this process's own queue."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from gatehouse.cache.redis import RedisClient, RedisUnavailable
from gatehouse.config import RedisSettings


def client() -> RedisClient:
    # Never connects: every operation below fails before reaching a socket.
    return RedisClient(RedisSettings(redis_url="redis://127.0.0.1:1/0", redis_breaker_failures=3))


async def test_a_failing_redis_opens_the_breaker_after_the_threshold() -> None:
    redis = client()

    async def down(_: Redis) -> None:
        raise RedisConnectionError("Connection refused")

    for _ in range(3):
        with pytest.raises(RedisUnavailable):
            await redis.call(down)
    assert redis.breaker.state == "open"
    with pytest.raises(RedisUnavailable, match="circuit open"):
        await redis.call(down)
    assert redis.stats["short_circuited"] == 1
    await redis.close()


async def test_an_exhausted_connection_pool_does_not_open_the_breaker() -> None:
    redis = client()

    async def busy(_: Redis) -> None:
        raise RedisConnectionError("No connection available.")

    for _ in range(10):
        with pytest.raises(RedisUnavailable, match="pool exhausted"):
            await redis.call(busy)
    assert redis.breaker.state == "closed"
    assert redis.stats["pool_exhausted"] == 10
    assert redis.stats["failures"] == 0
    await redis.close()
