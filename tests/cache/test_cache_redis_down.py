"""Redis down: requests keep answering from the database, and recovery serves nothing stale.

A redis-server of the test's own on a free port is killed (data lost) or paused (data
kept, like a network partition) mid-run; the machine's shared Redis is never touched.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import Api
from tests.redis_server import DedicatedRedis

ME = "/api/v1/users/me"
PREFIX = "gatehouse-cache-down:"


@pytest.fixture
def settings_overrides(redis_server: DedicatedRedis) -> dict[str, Any]:
    return {
        "redis_url": redis_server.url,
        "redis_prefix": PREFIX,
        "redis_timeout_seconds": 0.2,
        "redis_breaker_failures": 3,
        "redis_breaker_reset_seconds": 5,
    }


class Clock:
    """The breaker's clock, moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(api: Api) -> Clock:
    clock = Clock()
    assert api.runtime.redis is not None
    api.runtime.redis.breaker.clock = clock
    return clock


async def test_requests_keep_answering_from_the_database_while_redis_is_dead(
    api: Api, redis_server: DedicatedRedis, clock: Clock
) -> None:
    redis = api.runtime.redis
    assert redis is not None
    admin = await api.user("admin")
    me = await api.user("user")
    gone = await api.user("user")
    assert (await api.client.post("/api/v1/auth/logout", headers=gone.headers)).status_code == 204
    for _ in range(2):
        assert (await api.client.get(ME, headers=me.headers)).status_code == 200
    assert api.runtime.cache.stats["principal_hits"] >= 1

    redis_server.kill()
    statuses = []
    for _ in range(10):
        statuses.append((await api.client.get(ME, headers=me.headers)).status_code)
        statuses.append((await api.client.get(ME, headers=gone.headers)).status_code)
        statuses.append((await api.client.get(ME)).status_code)
    assert statuses == [200, 401, 401] * 10  # the database answers; never a 500
    assert redis.breaker.state == "open"
    assert redis.stats["breaker_opened"] == 1
    assert redis.stats["short_circuited"] >= 20  # later requests did not wait on Redis
    # Writes still work and are still seen at once.
    edit = await api.client.patch(
        f"/api/v1/users/{me.id}", json={"role": "readonly"}, headers=admin.headers
    )
    assert edit.status_code == 200
    assert (await api.client.get(ME, headers=me.headers)).status_code == 401

    redis_server.start()  # same port, empty
    clock.now += 6  # past the breaker's pause: the next call probes
    await api.login(me)
    for _ in range(3):
        response = await api.client.get(ME, headers=me.headers)
        assert response.status_code == 200
        assert response.json()["role"] == "readonly"
    assert redis.breaker.state == "closed"
    assert redis.stats["breaker_closed"] == 1
    assert api.runtime.cache.stats["principal_hits"] >= 2  # the cache is used again


async def test_an_invalidation_missed_during_an_outage_is_made_before_the_cache_is_used(
    api: Api, redis_server: DedicatedRedis, clock: Clock
) -> None:
    redis = api.runtime.redis
    cache = api.runtime.cache
    assert redis is not None
    admin = await api.user("admin")
    me = await api.user("user")
    for _ in range(2):
        assert (await api.client.get(f"/api/v1/users/{me.id}", headers=admin.headers)).json()
        assert (await api.client.get(ME, headers=me.headers)).status_code == 200
    user_key = cache.user_key(me.id)
    assert redis_server.hget(user_key, "read") is not None

    redis_server.pause()  # unreachable, but its data survives (a partition, a hung host)
    renamed = await api.client.patch(
        f"/api/v1/users/{me.id}", json={"name": "Renamed In Outage"}, headers=admin.headers
    )
    assert renamed.status_code == 200
    assert (await api.client.post("/api/v1/auth/logout", headers=me.headers)).status_code == 204
    assert cache.stats["invalidations_missed"] >= 1
    assert cache.missed == {me.id}
    reads = [await api.client.get(f"/api/v1/users/{me.id}", headers=admin.headers)]
    reads.append(await api.client.get(ME, headers=me.headers))
    assert reads[0].json()["name"] == "Renamed In Outage"
    assert reads[1].status_code == 401
    assert redis.breaker.state == "open"

    redis_server.resume()
    # The stale entries are still in Redis: served, they would undo the outage's writes.
    stale = redis_server.hget(user_key, "read")
    assert stale is not None
    assert "Renamed In Outage" not in stale
    assert redis_server.hget(cache.principal_key(me.id), "role") == "user"
    clock.now += 6
    # First request after recovery: the logged-out token, whose entry is stale in Redis.
    assert (await api.client.get(ME, headers=me.headers)).status_code == 401
    after = await api.client.get(f"/api/v1/users/{me.id}", headers=admin.headers)
    assert after.status_code == 200
    assert after.json()["name"] == "Renamed In Outage"
    assert cache.missed == set()
    assert cache.stats["repairs"] >= 1
    assert redis.breaker.state == "closed"
    again = await api.client.get(f"/api/v1/users/{me.id}", headers=admin.headers)
    assert again.json()["name"] == "Renamed In Outage"
