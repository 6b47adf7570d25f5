"""The long-lived parts of one process: settings, database, hasher, token keys, Redis,
cache, login protection, the job queue and the clients of background work.

The API, the CLI and the worker each build one and pass it to the services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Self, TypeVar

from gatehouse.audit.chain import load_key
from gatehouse.audit.trail import AUDIT_KEY_INFO
from gatehouse.auth.passwords import PasswordHasher
from gatehouse.auth.protection import LoginProtection
from gatehouse.auth.tokens import SigningKey, TokenService
from gatehouse.cache.redis import RedisClient
from gatehouse.cache.store import CACHE_INFO_KEY, Cache
from gatehouse.config import Settings
from gatehouse.db.engine import Database
from gatehouse.kit.jobs import JOBS_INFO_KEY, JobQueue, NoJobQueue


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
    redis: RedisClient | None = None
    # Keys the audit trail's HMAC chain (gatehouse.audit.chain).
    audit_key: bytes = b""
    cache: Cache = field(init=False)
    # Brute-force protection for logins; None when GATEHOUSE_RATE_LIMIT_ENABLED=false.
    protection: LoginProtection | None = field(init=False)
    # How this process runs background jobs; the API and worker replace the default.
    jobs: JobQueue = field(default_factory=NoJobQueue)
    _parts: dict[type[Any], Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        # In memory only on SQLite (one process); see gatehouse.cache.store.
        self.cache = Cache(self.settings.redis, self.redis, memory=self.settings.is_sqlite)
        self.db.info[CACHE_INFO_KEY] = self.cache
        self.db.info[JOBS_INFO_KEY] = self.jobs
        self.db.info[AUDIT_KEY_INFO] = self.audit_key
        limits = self.settings.rate_limit
        self.protection = LoginProtection(limits, self.redis) if limits.rate_limit_enabled else None

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        settings.server.data_dir.mkdir(parents=True, exist_ok=True)
        return cls(
            settings=settings,
            db=Database(settings),
            hasher=PasswordHasher(settings.auth.bcrypt_rounds, settings.auth.password_hash_threads),
            tokens=TokenService(settings, SigningKey.load(settings)),
            redis=RedisClient(settings.redis) if settings.redis.redis_url else None,
            audit_key=load_key(settings),
        )

    def use_jobs(self, jobs: JobQueue) -> None:
        self.jobs = jobs
        self.db.info[JOBS_INFO_KEY] = jobs

    def part(self, kind: type[P]) -> P:
        """This process's one instance of `kind`, created on first use, closed with us."""
        existing = self._parts.get(kind)
        if existing is None:
            existing = self._parts[kind] = kind.create(self)
        return existing

    async def close(self) -> None:
        for part in list(self._parts.values())[::-1]:
            await part.aclose()
        self._parts.clear()
        await self.cache.close()
        if self.redis is not None:
            await self.redis.close()
        await self.db.dispose()
