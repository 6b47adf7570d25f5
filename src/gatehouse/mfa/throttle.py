"""The per-account bound on second-factor guesses, across mfa_tokens and step-ups.

Each mfa_token dies after a few wrong codes, but logging in again (the password is
known to whoever guesses) makes a new one: what bounds the guesses is this counter, per
account and password, in fixed windows of the `limits` library (GATEHOUSE_MFA_RATE_LIMIT,
10 an hour and 30 a day by default). Every code check counts, right or wrong, and is
counted before the code is looked at, so concurrent guesses cannot slip past the bound.

Keyed by the account *and a digest of its password hash*: a thief who knows the
password can spend the budget and keep the owner out with it, but a password reset
(which the owner can do by mail, the thief not without the mailbox) starts a fresh
budget that the old password cannot reach.

Counters live in Redis when configured (shared by every process, the rate limiter's
storage), else in this process's memory; when Redis fails, memory takes over, so the
bound never disappears (each process then counts on its own, from nothing: one warning
per outage, `gatehouse_redis_fallbacks_total{use="mfa_throttle"}` per check). Redis
answering again, the shared counters are used again.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from typing import Self

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter

from gatehouse.cache.redis import RedisClient
from gatehouse.config import MfaSettings
from gatehouse.kit import metrics
from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.mfa.throttle")


def account_key(user_id: uuid.UUID, password_hash: str) -> str:
    return f"{user_id}:{hashlib.sha256(password_hash.encode()).hexdigest()[:16]}"


class MfaThrottle:
    def __init__(self, settings: MfaSettings, redis: RedisClient | None = None) -> None:
        self.items: list[RateLimitItem] = parse_many(settings.mfa_rate_limit)
        self.redis = redis
        self.local = FixedWindowRateLimiter(MemoryStorage())
        self.shared: FixedWindowRateLimiter | None = None
        if redis is not None:
            self.shared = FixedWindowRateLimiter(
                RedisStorage(
                    "async+redis://",
                    implementation="redispy",
                    key_prefix=redis.key("mfa"),
                    connection_pool=redis.redis.connection_pool,  # type: ignore[arg-type]
                )
            )
        self.degraded = False

    @classmethod
    def create(cls, runtime: Runtime) -> Self:
        return cls(runtime.settings.mfa, runtime.redis)

    async def aclose(self) -> None:
        return None

    async def check(self, key: str) -> int | None:
        """Count one code check for the account; None when it is within the bound, else
        the seconds until the exhausted window ends (the check must then be refused)."""
        limiter = self.local
        shared, redis = self.shared, self.redis
        if shared is not None and redis is not None:
            try:
                refused = await redis.call(lambda _: self._count(shared, key))
            except Exception as exc:  # RedisUnavailable or the storage's own: never unbounded
                if not self.degraded:
                    self.degraded = True
                    log.warning("mfa_throttle.redis_unavailable", error_type=type(exc).__name__)
                metrics.REDIS_FALLBACKS.labels("mfa_throttle").inc()
            else:
                if self.degraded:
                    # One warning per outage: the next one is reported again.
                    self.degraded = False
                    log.info("mfa_throttle.shared_counters_resumed")
                return refused
        return await self._count(limiter, key)

    async def _count(self, limiter: FixedWindowRateLimiter, key: str) -> int | None:
        refused: int | None = None
        for item in self.items:
            if not await limiter.hit(item, "mfa", key):
                stats = await limiter.get_window_stats(item, "mfa", key)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                refused = max(refused or 0, wait)
        return refused
