"""The read replica: whether a read that tolerates lag may run there, and what happens
when the replica fails.

Only reads a route or service chooses explicitly (`UnitOfWork.replica_ok`,
`Database.replica_ok`) come here; everything else, and everything in a writing unit of
work, stays on the primary. Such a read goes to the primary instead when:

- its actor wrote within `GATEHOUSE_DATABASE_REPLICA_STICKY_SECONDS` (read-your-writes:
  a committed writing unit of work marks its actor in `RecentWriters`, shared through
  Redis when configured, so a write on one instance and the next read on another
  agree);
- the replica failed recently (refused, timed out, dropped a connection): for
  `RETRY_SECONDS` no read tries it, then one probe does;
- its last measured lag (at most once a second) is over
  `GATEHOUSE_DATABASE_REPLICA_MAX_LAG_SECONDS`.

A read that fails on the replica for a connection reason is run again on the primary:
the caller gets its answer either way. Fallbacks are counted
(`gatehouse_db_replica_fallbacks_total`) and logged at most once a minute per reason.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import Counter
from typing import Protocol

import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from gatehouse.cache.redis import RedisClient, RedisUnavailable
from gatehouse.config import DatabaseSettings
from gatehouse.kit import metrics

log = structlog.get_logger("gatehouse.db.replica")

# Lag is measured on the replica at most this often (one short query).
LAG_CHECK_SECONDS = 1.0
# After a failure, reads skip the replica this long before one tries it again: a dead
# replica costs one connection attempt per period, not one per request.
RETRY_SECONDS = 5.0
# Shorter than the primary's: a read waits this long at most before it falls back.
CONNECT_TIMEOUT_SECONDS = 2.0
# A fallback that goes on is logged again after this long, with how many there were.
WARN_EVERY_SECONDS = 60.0

# 0 while the replica has replayed all it received (an idle primary sends nothing, and
# the last replay's age would grow without any lag); otherwise the age of the last
# transaction it replayed. A server that is not in recovery is no standby: no lag.
LAG_QUERY = text(
    """
    SELECT CASE
        WHEN NOT pg_is_in_recovery() THEN 0
        WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
        ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
    END
    """
)

# SQLSTATE classes and codes that say the server, not the query, is the problem:
# 08 connection exception, 57 operator intervention (shutdown, starting up, crash),
# 40001 a standby cancelling a query that conflicts with its replay.
_UNAVAILABLE_CLASSES = ("08", "57")
_RECOVERY_CONFLICT = "40001"


def is_unavailable(exc: BaseException) -> bool:
    """True when a replica read failed because of the replica, not because of the read."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    cause = getattr(orig, "__cause__", None)
    if isinstance(cause, OSError | TimeoutError):
        return True
    state = getattr(orig, "sqlstate", None) or getattr(cause, "sqlstate", None)
    if state is None:
        # asyncpg's own errors without a SQLSTATE: "connection is closed" and the like.
        return type(cause).__name__ in {"InterfaceError", "ConnectionDoesNotExistError"}
    state = str(state)
    return state.startswith(_UNAVAILABLE_CLASSES) or state == _RECOVERY_CONFLICT


class RecentWriters(Protocol):
    """Who committed a write within the sticky window."""

    async def mark(self, user_id: uuid.UUID) -> None: ...

    async def is_recent(self, user_id: uuid.UUID) -> bool: ...


class MemoryWriters:
    """This process's own record: right for one process (no Redis to share it through)."""

    # Past this many entries the expired ones are dropped (a burst of many writers).
    PRUNE_AT = 10_000

    def __init__(self, sticky_seconds: float) -> None:
        self.sticky_seconds = sticky_seconds
        self._until: dict[uuid.UUID, float] = {}

    async def mark(self, user_id: uuid.UUID) -> None:
        now = time.monotonic()
        if len(self._until) >= self.PRUNE_AT:
            self._until = {user: until for user, until in self._until.items() if until > now}
        self._until[user_id] = now + self.sticky_seconds

    async def is_recent(self, user_id: uuid.UUID) -> bool:
        until = self._until.get(user_id)
        return until is not None and until > time.monotonic()


class RedisWriters:
    """Shared by every instance: a key per writer that expires with the window.

    While Redis is down a write is kept in this process too, and a read whose answer
    Redis cannot give goes to the primary: never an old state after one's own write.
    """

    def __init__(self, redis: RedisClient, sticky_seconds: float) -> None:
        self.redis = redis
        self.sticky_ms = max(1, math.ceil(sticky_seconds * 1000))
        self.local = MemoryWriters(sticky_seconds)

    async def mark(self, user_id: uuid.UUID) -> None:
        key = self.redis.key("replica-writer", user_id)
        try:
            await self.redis.call(lambda r: r.set(key, b"1", px=self.sticky_ms))
        except RedisUnavailable:
            metrics.REDIS_FALLBACKS.labels(use="replica_writers").inc()
            await self.local.mark(user_id)

    async def is_recent(self, user_id: uuid.UUID) -> bool:
        if await self.local.is_recent(user_id):
            return True
        key = self.redis.key("replica-writer", user_id)
        try:
            found = await self.redis.call(lambda r: r.exists(key))
        except RedisUnavailable:
            metrics.REDIS_FALLBACKS.labels(use="replica_writers").inc()
            return True
        return bool(found)


class Replica:
    """The replica's engine and what this process knows of its health."""

    def __init__(self, engine: AsyncEngine, settings: DatabaseSettings) -> None:
        self.engine = engine
        self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        self.max_lag_seconds = settings.database_replica_max_lag_seconds
        self.sticky_seconds = settings.database_replica_sticky_seconds
        # Replaced by the runtime with the Redis-backed record when Redis is configured.
        self.writers: RecentWriters = MemoryWriters(self.sticky_seconds)
        self.lag: float | None = None
        self._down_until = 0.0
        self._down = False
        self._checked_at = -math.inf
        self._checking = False
        self._warned_at: dict[str, float] = {}
        self._unlogged: Counter[str] = Counter()
        self._error: str | None = None

    async def wrote(self, user_id: uuid.UUID | None) -> None:
        """A writing unit of work of `user_id` committed: their reads stay on the primary."""
        if user_id is not None:
            await self.writers.mark(user_id)

    async def usable_for(self, user_id: uuid.UUID | None) -> bool:
        """Whether a lag-tolerant read of this actor may run on the replica now; a "no"
        for a reason other than the actor's own recent write is counted as a fallback."""
        if user_id is not None and await self.writers.is_recent(user_id):
            return False
        reason = await self._unusable()
        if reason is None:
            return True
        self._fallback(reason)
        return False

    def served(self) -> None:
        metrics.DB_REPLICA_READS.labels(target="replica").inc()
        if self._down:
            self._down = False
            metrics.DB_REPLICA_UNAVAILABLE.set(0)
            log.info("db.replica_recovered")

    def failed(self, exc: BaseException) -> None:
        """A read failed for the replica's sake: it goes to the primary, and so do the
        next ones for `RETRY_SECONDS`."""
        self._mark_down(exc)
        self._fallback("unavailable")

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def _unusable(self) -> str | None:
        now = time.monotonic()
        if now < self._down_until:
            return "unavailable"
        # One probe at a time; reads arriving meanwhile go by the last measure.
        if now - self._checked_at >= LAG_CHECK_SECONDS and not self._checking:
            self._checking = True
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS + 1):
                    self.lag = await self.measure_lag()
            except Exception as exc:  # any failure of a trivial query: the replica is out
                self._mark_down(exc)
                return "unavailable"
            finally:
                self._checking = False
            self._checked_at = time.monotonic()
            metrics.DB_REPLICA_LAG.set(self.lag)
        if self.lag is not None and self.lag > self.max_lag_seconds:
            return "lagging"
        return None

    async def measure_lag(self) -> float:
        async with self.engine.connect() as conn:
            value = await conn.scalar(LAG_QUERY)
        return float(value or 0)

    def _mark_down(self, exc: BaseException) -> None:
        self._error = _describe(exc)
        self._down_until = time.monotonic() + RETRY_SECONDS
        # The next attempt after the pause measures the lag first.
        self._checked_at = -math.inf
        if not self._down:
            self._down = True
            metrics.DB_REPLICA_UNAVAILABLE.set(1)

    def _fallback(self, reason: str) -> None:
        metrics.DB_REPLICA_FALLBACKS.labels(reason=reason).inc()
        self._unlogged[reason] += 1
        now = time.monotonic()
        if now - self._warned_at.get(reason, -math.inf) < WARN_EVERY_SECONDS:
            return
        self._warned_at[reason] = now
        count = self._unlogged.pop(reason)
        detail: dict[str, object] = (
            {"lag_seconds": self.lag, "max_lag_seconds": self.max_lag_seconds}
            if reason == "lagging"
            else {"error": self._error, "retry_seconds": RETRY_SECONDS}
        )
        # `fallbacks`: reads sent to the primary for this reason since the last line.
        log.warning("db.replica_fallback", reason=reason, fallbacks=count, **detail)


def _describe(exc: BaseException) -> str:
    # The driver's error, its first line only: SQLAlchemy's own adds the statement.
    source = getattr(exc, "orig", None) or exc
    lines = str(source).splitlines()
    return f"{type(source).__name__}: {lines[0][:200]}" if lines else type(source).__name__
