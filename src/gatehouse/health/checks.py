"""What `GET /health/ready` checks: every dependency this process is configured with.

Each check runs concurrently with the others and within `TIMEOUT_SECONDS`, so a hung
dependency costs the probe that long at most. A required dependency that is down makes
the instance `unavailable` (503: take it out of rotation); an optional one makes it
`degraded` (200: it still serves, on its fallbacks).

Required or not, by what Gatehouse does without it:

- database: nothing works without it (every request reads or writes it): required.
- Redis: the cache is skipped (the database answers), and the rate limits and the
  login protection count in this process's memory: optional. Except with
  GATEHOUSE_RATE_LIMIT_FAIL_CLOSED=true, where every `/api/` request answers 503
  without it: then the instance cannot serve, and Redis is required.
- broker: an API process never waits for it. What a request causes (an event, a mail,
  a webhook delivery) is a database row written in the request's transaction, and the
  job message is only a kick sent afterwards from a thread pool; while the broker is
  down those rows wait, and are sent once it is back. Login, refresh and
  everything else an integrator calls keep working, so taking every instance out of
  rotation for it would turn late mails and events into an outage of every product
  that logs in through Gatehouse: optional.
- read replica: the reads that may use it (admin lists, exports, counts) go to the
  primary while it is down: optional.

Details of a failure go to the log (once per outage and process), never into the answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Self
from urllib.parse import urlsplit

import structlog

from gatehouse.cache.redis import RedisClient
from gatehouse.config import Settings
from gatehouse.health.broker import BrokerProbe
from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.health")

# Short enough that an answer waiting out a hung dependency still fits in a probe
# timeout of 2 s (docs/operations.md); long enough for a new database connection.
TIMEOUT_SECONDS = 1.0

Probe = Callable[[], Awaitable[None]]
CheckStatus = Literal["ok", "unavailable"]
Status = Literal["ok", "degraded", "unavailable"]


async def ping_redis(client: RedisClient) -> None:
    # Straight to Redis, not through the circuit breaker: the question is whether Redis
    # answers, and a probe must not open or close the breaker requests rely on.
    await client.redis.ping()


def _redis(runtime: Runtime) -> Probe | None:
    client = runtime.redis
    return None if client is None else lambda: ping_redis(client)


def _redis_required(settings: Settings) -> bool:
    limits = settings.rate_limit
    return limits.rate_limit_enabled and limits.rate_limit_fail_closed


def _replica(runtime: Runtime) -> Probe | None:
    replica = runtime.db.replica
    return None if replica is None else replica.ping


def _broker(runtime: Runtime) -> Probe | None:
    return runtime.part(BrokerProbe).ping if runtime.settings.broker_url else None


@dataclass(frozen=True)
class Dependency:
    name: str
    # Down: the instance is `unavailable` (503) if required, else `degraded` (200).
    required: bool | Callable[[Settings], bool]
    # This process's check, or None when the dependency is not configured.
    probe: Callable[[Runtime], Probe | None]

    def is_required(self, settings: Settings) -> bool:
        return self.required if isinstance(self.required, bool) else self.required(settings)


# One line per dependency; the name is its key in the answer's `checks`.
DEPENDENCIES = (
    Dependency("database", required=True, probe=lambda runtime: runtime.db.ping),
    Dependency("redis", required=_redis_required, probe=_redis),
    Dependency("broker", required=False, probe=_broker),
    Dependency("replica", required=False, probe=_replica),
)


@dataclass(frozen=True)
class Result:
    name: str
    required: bool
    status: CheckStatus
    latency_ms: float


@dataclass(frozen=True)
class Report:
    status: Status
    results: list[Result]


def overall(results: list[Result]) -> Status:
    down = [result for result in results if result.status != "ok"]
    if any(result.required for result in down):
        return "unavailable"
    return "degraded" if down else "ok"


class ReadinessChecks:
    """A runtime part: runs the checks, and logs each dependency's outage once."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._passwords = _passwords(runtime)
        self._down: set[str] = set()
        self._running: asyncio.Task[Report] | None = None

    @classmethod
    def create(cls, runtime: Runtime) -> Self:
        return cls(runtime)

    async def run(self) -> Report:
        # Probes that arrive while a run is under way share its answer: the endpoint is
        # public and never rate limited, and a flood of it must not multiply into a
        # flood of connections to the database, Redis and the broker.
        task = self._running
        if task is None or task.done():
            task = self._running = asyncio.create_task(self._run())
        # Shielded: a caller that goes away does not cancel the others' answer.
        return await asyncio.shield(task)

    async def _run(self) -> Report:
        configured = [
            (dependency, probe)
            for dependency in DEPENDENCIES
            if (probe := dependency.probe(self.runtime)) is not None
        ]
        results = list(await asyncio.gather(*(self._check(d, p) for d, p in configured)))
        return Report(overall(results), results)

    async def _check(self, dependency: Dependency, probe: Probe) -> Result:
        start = time.perf_counter()
        error = await probe_error(probe, self._passwords)
        latency_ms = round((time.perf_counter() - start) * 1000, 2)
        required = dependency.is_required(self.runtime.settings)
        self._note(dependency.name, required, error)
        status: CheckStatus = "ok" if error is None else "unavailable"
        return Result(dependency.name, required, status, latency_ms)

    def _note(self, name: str, required: bool, error: str | None) -> None:
        if error is not None and name not in self._down:
            self._down.add(name)
            log.warning(
                "health.dependency_unavailable",
                dependency=name,
                required=required,
                error=error,
            )
        elif error is None and name in self._down:
            self._down.discard(name)
            log.info("health.dependency_recovered", dependency=name)

    async def aclose(self) -> None:
        task, self._running = self._running, None
        if task is not None and not task.done():
            # Bounded by the checks' own timeout.
            await asyncio.gather(task, return_exceptions=True)


async def probe_error(
    probe: Probe, passwords: list[str], *, within: float = TIMEOUT_SECONDS
) -> str | None:
    """None when `probe` answered within `within` seconds, else what went wrong (the
    URLs' passwords masked). Also `gatehouse doctor`'s connectivity checks."""
    try:
        async with asyncio.timeout(within):
            await probe()
    except TimeoutError:
        return f"no answer within {within:g}s"
    except Exception as exc:  # any failure means "down"; the caller says what it was
        return _describe(exc, passwords)
    return None


def _passwords(runtime: Runtime) -> list[str]:
    return url_passwords(runtime.settings)


def url_passwords(settings: Settings) -> list[str]:
    """The passwords in the configured URLs, never to be shown in an error."""
    redis_url = settings.redis.redis_url
    replica_url = settings.database.database_replica_url
    urls = (
        settings.database_url,
        replica_url.get_secret_value() if replica_url is not None else None,
        redis_url.get_secret_value() if redis_url is not None else None,
        settings.broker_url,
    )
    return [password for url in urls if url and (password := urlsplit(url).password)]


def _describe(exc: BaseException, passwords: list[str]) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    # A connection error may quote its URL, and the URL carries the password.
    for password in passwords:
        text = text.replace(password, "***")
    return text[:500]
