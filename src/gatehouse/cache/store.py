"""The cache of what every authenticated request reads: the principal and user reads.

Keys (under the Redis prefix, e.g. `gatehouse:`):

- `cache:principal:{user_id}`: one hash per user, fields `role`, `ver` (auth_version)
  and `s:{session_id}` = "1" for each session seen live. One round trip per lookup
  (HMGET), and one DEL ends every session of the user at once.
- `cache:user:{user_id}`: one hash per user, field `read` = the user read exactly as the
  API serialises it (the JSON of `UserRead`, so a field added to it is cached with no
  other edit) and `ver` = the row version its ETag names. Filled together, deleted
  together. (Entries of the old layout, a field `data`, are never read: they expire.)

TTL per key kind (`cache_principal_ttl_seconds`, `cache_user_ttl_seconds`, default
`cache_ttl_seconds` = 1 h), counted from the first fill; correctness never rests on it.

Correctness first:

- A write registers the user ids it changed on its unit of work (`invalidate_user`, or
  the ORM flush listener below for any `User` row); the invalidation runs only AFTER the
  transaction commits (see `gatehouse.db.engine.after_commit`), never on rollback.
- An invalidation does not just delete a key: it leaves a marker (`~epoch`, a random
  token) in its place. A reader notes the epoch before it reads the database and fills
  the key only if the epoch is unchanged (a Lua compare-and-set), so a reader that read
  the old row before the commit cannot put it back after the invalidation.
- Redis down (or the breaker open): lookups and fills are skipped and the database
  answers; there is no per-process stand-in, which could serve one process a role
  another process has changed. An invalidation that fails is recorded; until it has
  been replayed (on the breaker's recovery, on the next request, or by a background
  retry) this process bypasses the cache, so it never serves what it failed to delete.

Residual risk (for the operations doc): while this process cannot reach Redis
but another process can, the other process may serve the entry this process failed to
invalidate until the replay succeeds (at most about `redis_breaker_reset_seconds` after
Redis answers this process again), or until the TTL if this process dies first.

Without Redis, the cache lives in process memory, and only on SQLite (one process owns
the database). On PostgreSQL without Redis there is no cache at all: several processes
may share the database and nothing would carry an invalidation between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import NamedTuple, Protocol

import structlog
from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import UOWTransaction

from gatehouse.cache.redis import RedisClient, RedisUnavailable
from gatehouse.config import RedisSettings
from gatehouse.db.engine import after_commit
from gatehouse.kit import metrics
from gatehouse.users.models import User

log = structlog.get_logger("gatehouse.cache")

CACHE_INFO_KEY = "gatehouse.cache"
_DIRTY_INFO_KEY = "gatehouse.cache.dirty_users"
EPOCH = "~epoch"
FILLED = "~filled"
USER_FIELDS = ["read", "ver"]
# More missed invalidations than this and the replay flushes the whole namespace instead.
MAX_MISSED = 10_000

# KEYS[1] the hash; ARGV[1] the epoch the reader saw ("" for none), ARGV[2] the TTL,
# ARGV[3..] field, value pairs. Fills only when no invalidation happened in between.
_FILL_SCRIPT = """
local current = redis.call('HGET', KEYS[1], '~epoch')
if not current then current = '' end
if current ~= ARGV[1] then return 0 end
local fresh = redis.call('HEXISTS', KEYS[1], '~filled') == 0
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if fresh then
  redis.call('HSET', KEYS[1], '~filled', '1')
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


class CachedUser(NamedTuple):
    """A user read as serialised JSON, and the row version (the ETag) it was read at."""

    read: str
    version: int


# A hash's asked-for fields and its epoch, as one read found them.
Found = tuple[list[str | None], str]
# Reads made ahead, in another lookup's round trip, for the same request: by key.
Prefetched = dict[str, Found]


class Backend(Protocol):
    async def read(self, key: str, fields: list[str]) -> Found: ...

    async def read_many(self, reads: list[tuple[str, list[str]]]) -> list[Found]: ...

    async def fill(self, key: str, epoch: str, mapping: dict[str, str], ttl: int) -> bool: ...

    async def invalidate(self, keys: list[str], ttl: int) -> None: ...

    async def flush(self) -> None: ...


def _found(raw: Sequence[bytes | str | None]) -> Found:
    values = [v.decode() if isinstance(v, bytes) else v for v in raw]
    return values[:-1], values[-1] or ""


class RedisBackend:
    """Raises `RedisUnavailable` when Redis fails or the breaker is open."""

    def __init__(self, client: RedisClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self._fill = client.redis.register_script(_FILL_SCRIPT)

    async def read(self, key: str, fields: list[str]) -> Found:
        raw = await self.client.call(lambda r: r.hmget(key, [*fields, EPOCH]))
        return _found(raw)

    async def read_many(self, reads: list[tuple[str, list[str]]]) -> list[Found]:
        async def run(r: Redis) -> list[list[bytes | None]]:
            async with r.pipeline(transaction=False) as pipe:
                for key, fields in reads:
                    pipe.hmget(key, [*fields, EPOCH])
                return await pipe.execute()

        return [_found(raw) for raw in await self.client.call(run)]

    async def fill(self, key: str, epoch: str, mapping: dict[str, str], ttl: int) -> bool:
        args: list[str | int] = [epoch, ttl]
        for name, value in mapping.items():
            args += [name, value]
        result = await self.client.call(lambda r: self._fill(keys=[key], args=args, client=r))
        return bool(result)

    async def invalidate(self, keys: list[str], ttl: int) -> None:
        async def run(r: Redis) -> None:
            async with r.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.delete(key)
                    pipe.hset(key, EPOCH, uuid.uuid4().hex)
                    pipe.expire(key, ttl)
                await pipe.execute()

        await self.client.call(run)

    async def flush(self) -> None:
        async def run(r: Redis) -> None:
            batch: list[bytes] = []
            async for key in r.scan_iter(match=f"{self.namespace}*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    await r.unlink(*batch)
                    batch = []
            if batch:
                await r.unlink(*batch)

        await self.client.call(run)


class MemoryBackend:
    """The same semantics in this process's memory (no awaits inside: each call is atomic)."""

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.entries: dict[str, tuple[float, dict[str, str]]] = {}
        self.max_entries = max_entries
        self.clock = clock

    def _get(self, key: str) -> dict[str, str] | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            del self.entries[key]
            return None
        return entry[1]

    def _put(self, key: str, ttl: int, fields: dict[str, str]) -> None:
        self.entries.pop(key, None)
        while len(self.entries) >= self.max_entries:
            del self.entries[next(iter(self.entries))]
        self.entries[key] = (self.clock() + ttl, fields)

    async def read(self, key: str, fields: list[str]) -> Found:
        found = self._get(key) or {}
        return [found.get(name) for name in fields], found.get(EPOCH, "")

    async def read_many(self, reads: list[tuple[str, list[str]]]) -> list[Found]:
        return [await self.read(key, fields) for key, fields in reads]

    async def fill(self, key: str, epoch: str, mapping: dict[str, str], ttl: int) -> bool:
        found = self._get(key)
        if (found or {}).get(EPOCH, "") != epoch:
            return False
        if found is None or FILLED not in found:
            found = {**(found or {}), FILLED: "1"}
            self._put(key, ttl, found)
        found.update(mapping)
        return True

    async def invalidate(self, keys: list[str], ttl: int) -> None:
        for key in keys:
            self._put(key, ttl, {EPOCH: uuid.uuid4().hex})

    async def flush(self) -> None:
        self.entries.clear()


class Cache:
    """Principal and user-read cache; `stats` counts hits, misses and failures."""

    def __init__(self, settings: RedisSettings, redis: RedisClient | None, *, memory: bool):
        self.principal_ttl = settings.cache_principal_ttl_seconds or settings.cache_ttl_seconds
        self.user_ttl = settings.cache_user_ttl_seconds or settings.cache_ttl_seconds
        self.retry_seconds = settings.redis_breaker_reset_seconds
        self.stats: Counter[str] = Counter()
        self.backend: Backend | None = None
        self.namespace = "cache:"
        if redis is not None:
            self.namespace = redis.key("cache:")
            self.backend = RedisBackend(redis, self.namespace)
            redis.on_recovery(self._on_recovery)
        elif memory:
            self.backend = MemoryBackend()
        # Invalidations this process could not make; while any is left, it bypasses the cache.
        self.missed: set[uuid.UUID] = set()
        self.missed_overflow = False
        self._repairing = False
        self._repair_task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.backend is not None

    def principal_key(self, user_id: uuid.UUID) -> str:
        return f"{self.namespace}principal:{user_id}"

    def user_key(self, user_id: uuid.UUID) -> str:
        return f"{self.namespace}user:{user_id}"

    # -- reads ---------------------------------------------------------------------------

    async def principal(
        self,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        load: Callable[[], Awaitable[tuple[str, int] | None]],
        *,
        prefetch_user: Prefetched | None = None,
    ) -> tuple[str, int] | None:
        """(role, auth_version) of a live user in a live session, else None.

        `prefetch_user`: the request will read this user too (their own profile): the
        user's entry is read in the same round trip and left there for `user()`.
        """
        key, live = self.principal_key(user_id), f"s:{session_id}"
        principal_fields = ["role", "ver", live]
        if prefetch_user is None:
            found = await self._read(key, principal_fields)
        else:
            user_key = self.user_key(user_id)
            both = await self._read_many([(key, principal_fields), (user_key, USER_FIELDS)])
            found = None
            if both is not None:
                found, prefetch_user[user_key] = both
        if found is None:
            return await load()
        (role, ver, alive), epoch = found
        if role is not None and ver is not None and alive == "1":
            self.stats["principal_hits"] += 1
            metrics.CACHE_LOOKUPS.labels("principal", "hit").inc()
            return role, int(ver)
        self.stats["principal_misses"] += 1
        metrics.CACHE_LOOKUPS.labels("principal", "miss").inc()
        row = await load()
        if row is not None:
            fields = {"role": row[0], "ver": str(row[1]), live: "1"}
            await self._fill(key, epoch, fields, self.principal_ttl)
        return row

    async def user(
        self,
        user_id: uuid.UUID,
        load: Callable[[], Awaitable[CachedUser | None]],
        prefetched: Prefetched | None = None,
    ) -> CachedUser | None:
        """A live user's serialised read and version, or None for no live user.

        The cache never looks inside the read: what it stores is what `load` serialised.
        `prefetched`: where `principal(prefetch_user=…)` left this request's read of it.
        """
        key = self.user_key(user_id)
        found = prefetched.pop(key, None) if prefetched else None
        if found is None:
            found = await self._read(key, USER_FIELDS)
        if found is None:
            return await load()
        (read, ver), epoch = found
        if read is not None and ver is not None:
            self.stats["user_hits"] += 1
            metrics.CACHE_LOOKUPS.labels("user", "hit").inc()
            return CachedUser(read, int(ver))
        self.stats["user_misses"] += 1
        metrics.CACHE_LOOKUPS.labels("user", "miss").inc()
        fresh = await load()
        if fresh is not None:
            entry = {"read": fresh.read, "ver": str(fresh.version)}
            await self._fill(key, epoch, entry, self.user_ttl)
        return fresh

    async def _read(self, key: str, fields: list[str]) -> Found | None:
        """The fields and the epoch, or None when the cache must be bypassed."""
        found = await self._read_many([(key, fields)])
        return found[0] if found is not None else None

    async def _read_many(self, reads: list[tuple[str, list[str]]]) -> list[Found] | None:
        """Each key's fields and epoch, in one round trip; None when bypassed."""
        if self.backend is None:
            return None
        if (self.missed or self.missed_overflow) and not await self.repair():
            self.stats["bypassed"] += 1
            metrics.REDIS_FALLBACKS.labels("cache").inc()
            return None
        try:
            if len(reads) == 1:
                return [await self.backend.read(*reads[0])]
            return await self.backend.read_many(reads)
        except RedisUnavailable:
            self.stats["bypassed"] += 1
            metrics.REDIS_FALLBACKS.labels("cache").inc()
            return None

    async def _fill(self, key: str, epoch: str, fields: dict[str, str], ttl: int) -> None:
        assert self.backend is not None  # noqa: S101
        try:
            if not await self.backend.fill(key, epoch, fields, ttl):
                self.stats["fills_skipped"] += 1  # invalidated while we read the database
        except RedisUnavailable:
            self.stats["bypassed"] += 1

    # -- invalidation --------------------------------------------------------------------

    async def invalidate(self, user_ids: Collection[uuid.UUID]) -> None:
        """Forget everything cached about these users, for every process. Never raises."""
        if self.backend is None or not user_ids:
            return
        self.stats["invalidations"] += len(user_ids)
        try:
            await self.backend.invalidate(self._keys(user_ids), self._marker_ttl)
        except RedisUnavailable:
            self._record_missed(user_ids)

    @property
    def _marker_ttl(self) -> int:
        return max(self.principal_ttl, self.user_ttl)

    def _keys(self, user_ids: Iterable[uuid.UUID]) -> list[str]:
        return [k for uid in user_ids for k in (self.principal_key(uid), self.user_key(uid))]

    def _record_missed(self, user_ids: Collection[uuid.UUID]) -> None:
        self.stats["invalidations_missed"] += len(user_ids)
        self.missed.update(user_ids)
        if len(self.missed) > MAX_MISSED:
            self.missed.clear()
            self.missed_overflow = True
        log.warning("cache.invalidation_missed", users=len(user_ids), pending=len(self.missed))
        if self._repair_task is None or self._repair_task.done():
            self._repair_task = asyncio.get_running_loop().create_task(self._repair_loop())

    async def repair(self) -> bool:
        """Replay the missed invalidations; True when none is left."""
        if not self.missed and not self.missed_overflow:
            return True
        if self._repairing or self.backend is None:
            return False
        self._repairing = True
        try:
            replay, overflow = set(self.missed), self.missed_overflow
            if overflow:
                await self.backend.flush()
            else:
                await self.backend.invalidate(self._keys(replay), self._marker_ttl)
        except RedisUnavailable:
            return False
        finally:
            self._repairing = False
        self.missed -= replay
        if overflow:
            self.missed_overflow = False
        self.stats["repairs"] += 1
        log.info("cache.repaired", users=len(replay), flushed=overflow)
        return not self.missed and not self.missed_overflow

    async def _repair_loop(self) -> None:
        # Another process may hold the entries this one failed to delete: keep trying even
        # when no request comes to this process.
        while True:
            if await self.repair():
                return
            await asyncio.sleep(self.retry_seconds)

    async def _on_recovery(self) -> None:
        await self.repair()

    async def close(self) -> None:
        if self._repair_task is not None and not self._repair_task.done():
            self._repair_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._repair_task


def invalidate_user(session: AsyncSession | OrmSession, user_id: uuid.UUID) -> None:
    """Invalidate what is cached about this user once the unit of work has committed."""
    info = session.info
    cache = info.get(CACHE_INFO_KEY)
    if not isinstance(cache, Cache) or not cache.enabled:
        return
    dirty: set[uuid.UUID] | None = info.get(_DIRTY_INFO_KEY)
    if dirty is None:
        dirty = info[_DIRTY_INFO_KEY] = set()

        async def run() -> None:
            await cache.invalidate(info.pop(_DIRTY_INFO_KEY, set()))

        after_commit(session, run)
    dirty.add(user_id)


@event.listens_for(OrmSession, "after_flush")
def _users_flushed(session: OrmSession, _: UOWTransaction) -> None:
    # Every ORM change to a user row (role, auth_version, name, email, deletion) reaches
    # the cache without each write having to remember it. Core UPDATEs call
    # `invalidate_user` themselves (see the repositories).
    if CACHE_INFO_KEY not in session.info:
        return
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, User):
            invalidate_user(session, obj.id)
