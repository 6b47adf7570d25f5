"""The shared Redis connection, behind a circuit breaker.

Redis is an accelerator here, never the source of truth: when it is slow or down,
callers get `RedisUnavailable` at once (no request waits on a dead Redis) and fall
back to the database or to a per-process limiter. The breaker probes again after a
pause, so recovery needs no restart.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from gatehouse.config import RedisSettings
from gatehouse.kit import metrics
from gatehouse.observability import tracing

log = structlog.get_logger("gatehouse.redis")
T = TypeVar("T")
MAX_CONNECTIONS = 256  # per process
# How long a call may wait for a free pooled connection: a local queue, not Redis being
# slow, so it gets longer than the socket timeout and never opens the breaker.
POOL_WAIT_SECONDS = 2.0


class RedisUnavailable(Exception):
    """Redis did not answer (or the breaker is open): use the fallback."""


class CircuitBreaker:
    """Closed → open after N failures in a row → one probe after `reset_seconds`."""

    def __init__(
        self, failures: int, reset_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = failures
        self.reset_seconds = reset_seconds
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self._probing else "open"

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        if self._probing or self.clock() - self.opened_at < self.reset_seconds:
            return False
        self._probing = True  # one caller probes; the others keep using the fallback
        return True

    def success(self) -> bool:
        """Record a success; True when this closed an open breaker."""
        recovered = self.opened_at is not None
        self.failures = 0
        self.opened_at = None
        self._probing = False
        return recovered

    def failure(self) -> bool:
        """Record a failure; True when this opened the breaker."""
        self.failures += 1
        if self._probing:
            self._probing = False
            self.opened_at = self.clock()
            return False
        if self.opened_at is None and self.failures >= self.threshold:
            self.opened_at = self.clock()
            return True
        return False


class RedisClient:
    def __init__(self, settings: RedisSettings) -> None:
        assert settings.redis_url is not None  # noqa: S101
        self.prefix = settings.redis_prefix
        # A blocking pool: a burst of concurrent requests waits (up to the timeout) for
        # a free connection. redis-py's default pool raises MaxConnectionsError past
        # 100 connections, which would open the breaker on a healthy Redis.
        pool = BlockingConnectionPool.from_url(
            settings.redis_url.get_secret_value(),
            max_connections=MAX_CONNECTIONS,
            timeout=max(POOL_WAIT_SECONDS, settings.redis_timeout_seconds),
            socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_timeout_seconds,
            health_check_interval=30,
        )
        self.redis: Redis = Redis.from_pool(pool)
        tracing.instrument_redis(self.redis)
        self.breaker = CircuitBreaker(
            settings.redis_breaker_failures, settings.redis_breaker_reset_seconds
        )
        self.stats: Counter[str] = Counter()
        self._recovery_hooks: list[Callable[[], Awaitable[None]]] = []

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(part) for part in parts)

    def on_recovery(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` (once) each time Redis answers again after an outage."""
        self._recovery_hooks.append(hook)

    async def call(self, operation: Callable[[Redis], Awaitable[T]]) -> T:
        # Round trips asked of Redis: what the hot paths' tests count.
        self.stats["calls"] += 1
        if not self.breaker.allow():
            self.stats["short_circuited"] += 1
            raise RedisUnavailable("circuit open")
        try:
            result = await operation(self.redis)
        except RedisConnectionError as exc:
            if _pool_exhausted(exc):
                # Every pooled connection is busy in this process: this call falls back,
                # but Redis itself answered, so the breaker stays as it is.
                self.stats["pool_exhausted"] += 1
                raise RedisUnavailable("pool exhausted") from exc
            self._failed(exc)
            raise RedisUnavailable(type(exc).__name__) from exc
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            raise RedisUnavailable(type(exc).__name__) from exc
        if self.breaker.success():
            self.stats["breaker_closed"] += 1
            metrics.REDIS_BREAKER_OPEN.set(0)
            log.info("redis.recovered")
            for hook in self._recovery_hooks:
                await hook()
        return result

    def _failed(self, exc: BaseException) -> None:
        self.stats["failures"] += 1
        if self.breaker.failure():
            self.stats["breaker_opened"] += 1
            metrics.REDIS_BREAKER_OPEN.set(1)
            log.warning("redis.unavailable", error_type=type(exc).__name__)

    async def close(self) -> None:
        await self.redis.aclose()


def _pool_exhausted(exc: RedisConnectionError) -> bool:
    return "No connection available" in str(exc)
