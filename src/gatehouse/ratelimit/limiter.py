"""The limiter: fixed-window counters from the `limits` library.

Fixed window rather than moving window: one counter per key (an atomic INCR plus an
expiry set on the first hit, in one Lua script), where a moving window keeps one
timestamp per request (up to 1000 list entries per user at the default limit).
It also makes the headers mean exactly what they say: `X-RateLimit-Reset` is the
moment the whole budget comes back, and `Remaining` is the limit minus this
request's place in the window. The known cost is a burst of up to twice the limit
across a window boundary, which these limits (abuse protection, not billing) accept.

With Redis configured the counters are shared by every process (keys under
`<GATEHOUSE_REDIS_PREFIX>ratelimit:`); every Redis call goes through the shared
circuit breaker, so a dead Redis costs no waiting. When Redis fails, the same
limits are counted in this process's memory (logged once per outage and counted
in `gatehouse_redis_fallbacks_total{use="rate_limit"}`), or, with
`GATEHOUSE_RATE_LIMIT_FAIL_CLOSED=true`, `RateLimitUnavailable` turns into a 503.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Self

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from redis.asyncio import Redis

from gatehouse.cache.redis import RedisClient
from gatehouse.config import RateLimitSettings
from gatehouse.kit import metrics

if TYPE_CHECKING:
    from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.ratelimit")


class Policy(StrEnum):
    """One bucket kind each, with its setting `rate_limit_<name>`."""

    anonymous = "anonymous"
    authenticated = "authenticated"
    login = "login"
    register = "register"
    refresh = "refresh"
    password_reset = "password_reset"  # noqa: S105 (a bucket name)
    # Counted by the OpenID provider's endpoints themselves, per client: the middleware
    # limits `/api/` only (gatehouse.oidc.router).
    oauth_token = "oauth_token"  # noqa: S105 (a bucket name)
    oauth_authorize = "oauth_authorize"


class RateLimitUnavailable(Exception):
    """The shared counters cannot be reached and the policy is to fail closed."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: float  # epoch seconds at which the window (the whole budget) comes back

    def retry_after(self, now: float | None = None) -> int:
        """Whole seconds until the advertised reset (itself rounded up): a client that
        waits this long never comes back before the window has ended."""
        return max(1, math.ceil(math.ceil(self.reset) - (time.time() if now is None else now)))

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(math.ceil(self.reset)).encode()),
        ]


class _FixedWindow(FixedWindowRateLimiter):
    async def acquire(self, item: RateLimitItem, *identifiers: str) -> Decision:
        """Count this request and say where it stands, from the count INCR returned
        (so concurrent requests each see their own place, never a shared read)."""
        key = item.key_for(*identifiers)
        storage = self.storage
        if isinstance(storage, _RedisStorage):
            count, reset = await storage.incr_with_reset(key, item.get_expiry())
        else:
            count = await storage.incr(key, item.get_expiry())
            reset = await storage.get_expiry(key)
        return Decision(count <= item.amount, item.amount, max(0, item.amount - count), reset)


# The library's fixed window (INCR, and EXPIRE when the key is new), plus the PTTL the
# reset is computed from: milliseconds, since TTL's whole seconds would make the reset
# wobble between requests and Retry-After come up short.
_INCR_WITH_TTL = """
local count = redis.call("INCR", KEYS[1])
if count == 1 then
    redis.call("EXPIRE", KEYS[1], ARGV[1])
end
return {count, redis.call("PTTL", KEYS[1])}
"""


class _RedisStorage(RedisStorage):
    def __init__(self, client: Redis, key_prefix: str) -> None:
        # The runtime's own connections: same URL, timeouts and credentials (the
        # address comes with the pool, so the URI here names only the scheme).
        super().__init__(
            "async+redis://",
            implementation="redispy",
            key_prefix=key_prefix,
            connection_pool=client.connection_pool,  # type: ignore[arg-type]
        )
        self.client = client
        self._incr_with_ttl = client.register_script(_INCR_WITH_TTL)

    async def incr_with_reset(self, key: str, expiry: int) -> tuple[int, float]:
        """Count a hit and read the window's end in one round trip (every limited
        request makes this call: two round trips were a tenth of a cached request)."""
        count, pttl = await self._incr_with_ttl(keys=[self.bridge.prefixed_key(key)], args=[expiry])
        return int(count), time.time() + max(int(pttl), 0) / 1000

    async def get_expiry(self, key: str) -> float:
        # PTTL rather than the library's TTL: TTL rounds to whole seconds, which would
        # make the reset wobble between requests and Retry-After come up short.
        pttl = int(await self.client.pttl(self.bridge.prefixed_key(key)))
        return time.time() + max(pttl, 0) / 1000


class RateLimiter:
    def __init__(self, settings: RateLimitSettings, redis: RedisClient | None = None) -> None:
        self.items: dict[Policy, RateLimitItem] = {
            policy: parse(getattr(settings, f"rate_limit_{policy.value}")) for policy in Policy
        }
        self.fail_closed = settings.rate_limit_fail_closed
        self.redis = redis
        # The embedded default's counters, and the fallback when Redis is down.
        self.local = _FixedWindow(MemoryStorage())
        self.shared: _FixedWindow | None = None
        if redis is not None:
            self.shared = _FixedWindow(_RedisStorage(redis.redis, redis.key("ratelimit")))
        self.degraded = False

    @classmethod
    def create(cls, runtime: Runtime) -> Self:
        """The process's limiter for the buckets counted outside the middleware (a
        runtime part: `runtime.part(RateLimiter)`)."""
        return cls(runtime.settings.rate_limit, runtime.redis)

    async def aclose(self) -> None:
        return None

    async def hit(self, policy: Policy, identity: str) -> Decision:
        item = self.items[policy]
        shared, redis = self.shared, self.redis
        if shared is None or redis is None:
            return await self.local.acquire(item, policy.value, identity)
        try:
            decision = await redis.call(lambda _: shared.acquire(item, policy.value, identity))
        except Exception as exc:  # RedisUnavailable, or anything the storage raised: never a 500
            return await self._fallback(redis, item, policy, identity, exc)
        if self.degraded:
            self.degraded = False
            log.info("ratelimit.shared_counters_resumed")
        return decision

    async def _fallback(
        self,
        redis: RedisClient,
        item: RateLimitItem,
        policy: Policy,
        identity: str,
        exc: Exception,
    ) -> Decision:
        if not self.degraded:
            self.degraded = True
            log.warning(
                "ratelimit.redis_unavailable",
                error_type=type(exc).__name__,
                fallback="fail closed (503)" if self.fail_closed else "per-process memory",
            )
        if self.fail_closed:
            redis.stats["ratelimit_fail_closed"] += 1
            raise RateLimitUnavailable(type(exc).__name__) from exc
        redis.stats["ratelimit_fallback"] += 1
        metrics.REDIS_FALLBACKS.labels("rate_limit").inc()
        return await self.local.acquire(item, policy.value, identity)
