"""The long-lived parts of one process: settings, database, hasher, token keys, the
encryption key ring, Redis, cache, login protection, the job queue and the clients of
background work.

The API, the CLI and the worker each build one and pass it to the services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, TypeVar

from gatehouse.audit.chain import load_key
from gatehouse.auth.passwords import PasswordHasher
from gatehouse.auth.protection import LoginProtection
from gatehouse.auth.tokens import SigningKey, TokenService
from gatehouse.cache.redis import RedisClient
from gatehouse.cache.store import Cache
from gatehouse.config import Environment, Settings
from gatehouse.db.engine import Database
from gatehouse.db.replica import RedisWriters
from gatehouse.keys.ring import load_key_ring
from gatehouse.kit.context import Actor
from gatehouse.kit.encryption import KeyRing
from gatehouse.kit.jobs import JobQueue, no_queue
from gatehouse.uow import UnitOfWork


class Part(Protocol):
    """A per-process client built on first use (the event publisher, the mailer...)."""

    @classmethod
    def create(cls, runtime: Runtime) -> Self: ...

    async def aclose(self) -> None: ...


P = TypeVar("P", bound=Part)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    hasher: PasswordHasher
    tokens: TokenService
    # Encrypts the secrets stored for reading back (gatehouse.kit.encryption).
    encryption: KeyRing
    redis: RedisClient | None = None
    # Keys the audit trail's HMAC chain (gatehouse.audit.chain).
    audit_key: bytes = b""
    cache: Cache = field(init=False)
    # Brute-force protection for logins; None when GATEHOUSE_RATE_LIMIT_ENABLED=false.
    protection: LoginProtection | None = field(init=False)
    # How this process runs background jobs, given by the API, the worker or the CLI
    # (`use_jobs`); None until then, and a job asked for meanwhile is reported.
    jobs: JobQueue | None = None
    _parts: dict[type[Any], Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        # In memory only on SQLite (one process); see gatehouse.cache.store.
        self.cache = Cache(self.settings.redis, self.redis, memory=self.settings.is_sqlite)
        limits = self.settings.rate_limit
        self.protection = LoginProtection(limits, self.redis) if limits.rate_limit_enabled else None
        replica = self.db.replica
        if replica is not None and self.redis is not None:
            # Shared: a write through one instance keeps the writer's reads through
            # every other on the primary too.
            replica.writers = RedisWriters(self.redis, replica.sticky_seconds)

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        settings.server.data_dir.mkdir(parents=True, exist_ok=True)
        return cls(
            settings=settings,
            db=Database(settings),
            hasher=PasswordHasher(settings.auth.bcrypt_rounds, settings.auth.password_hash_threads),
            tokens=TokenService(settings, SigningKey.load(settings)),
            encryption=load_key_ring(settings),
            redis=RedisClient(settings.redis) if settings.redis.redis_url else None,
            audit_key=load_key(settings),
        )

    def use_jobs(self, jobs: JobQueue) -> None:
        self.jobs = jobs

    @property
    def strict_jobs(self) -> bool:
        # In tests a job asked for with no queue fails; elsewhere it is logged.
        return self.settings.server.env is Environment.test

    def enqueue(self, name: str, **kwargs: str) -> None:
        """Ask for a job now, outside any unit of work (a sweep found due rows)."""
        if self.jobs is None:
            no_queue(name, strict=self.strict_jobs)
            return
        self.jobs.enqueue(name, **kwargs)

    @asynccontextmanager
    async def unit_of_work(
        self, *, write: bool = True, actor: Actor | None = None
    ) -> AsyncIterator[UnitOfWork]:
        """A unit of work on this process's parts: committed once when the block ends."""
        async with self.db.session(write=write) as session:
            yield UnitOfWork.open(
                session,
                database=self.db,
                actor=actor or Actor.system(),
                cache=self.cache,
                jobs=self.jobs,
                audit_key=self.audit_key,
                write=write,
                strict_jobs=self.strict_jobs,
            )

    def part(self, kind: type[P]) -> P:
        """This process's one instance of `kind`, created on first use, closed with us."""
        existing = self._parts.get(kind)
        if existing is None:
            existing = self._parts[kind] = kind.create(self)
        return existing

    async def close(self) -> list[str]:
        """Close every part, the last made first; what was closed, for the long-lived
        processes' last log line (a CLI command's output is not the place for it)."""
        closed = [type(part).__name__ for part in self._parts.values()][::-1]
        for part in list(self._parts.values())[::-1]:
            await part.aclose()
        self._parts.clear()
        self.hasher.close()
        await self.cache.close()
        if self.redis is not None:
            await self.redis.close()
            closed.append("redis")
        await self.db.dispose()
        closed.append("database")
        return closed
