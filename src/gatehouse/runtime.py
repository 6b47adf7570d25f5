"""The long-lived parts of one process: settings, database, hasher, token keys, Redis,
cache and login protection.

The API, the CLI and (later) the worker each build one and pass it to the services.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gatehouse.auth.passwords import PasswordHasher
from gatehouse.auth.protection import LoginProtection
from gatehouse.auth.tokens import SigningKey, TokenService
from gatehouse.cache.redis import RedisClient
from gatehouse.cache.store import CACHE_INFO_KEY, Cache
from gatehouse.config import Settings
from gatehouse.db.engine import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database
    hasher: PasswordHasher
    tokens: TokenService
    redis: RedisClient | None = None
    cache: Cache = field(init=False)
    # Brute-force protection for logins; None when GATEHOUSE_RATE_LIMIT_ENABLED=false.
    protection: LoginProtection | None = field(init=False)

    def __post_init__(self) -> None:
        # In memory only on SQLite (one process); see gatehouse.cache.store.
        self.cache = Cache(self.settings.redis, self.redis, memory=self.settings.is_sqlite)
        self.db.info[CACHE_INFO_KEY] = self.cache
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
        )

    async def close(self) -> None:
        await self.cache.close()
        if self.redis is not None:
            await self.redis.close()
        await self.db.dispose()
