"""Brute-force protection for the password login, in the spirit of Keycloak's detector.

Three layers, checked before the password and counted before it is known whether the
password was right (so concurrent guesses cannot slip past a threshold); a success
clears the account's counters again:

- **per (account, client IP)**: `login_lockout_threshold` failures lock the pair for
  `login_lockout_base_seconds` x 2^(failures - threshold), at most
  `login_lockout_max_seconds`. Another IP is not locked by this layer.
- **per account**, from any IP: after `login_account_delay_threshold` failures every
  further failure makes the account wait a growing but short delay (at most
  `login_account_delay_max_seconds`): the cap on guesses against one account from
  many IPs, without letting one attacker lock the owner out for long.
- **per client IP**: at most `login_ip_failures` failed logins (any account, known or
  not), then 429 RATE_LIMITED. This bounds the state one IP can create.

A refused attempt by the first two layers is answered exactly like a wrong password
(same 401 body, still one bcrypt check in the service): the lock state is never
disclosed. Attempts refused during a lock or delay are not counted, so the wait does
not run away. Counters reset after `login_failure_reset_seconds` without a failure.

Storage: Redis when configured (one Lua script per attempt, atomic), else a bounded
in-process store; when Redis is unavailable the in-process store takes over, so
login throttling never becomes unlimited. The counters live outside the database
transaction, so the failed login's rollback does not undo them. Times come from the
application's wall clock (`time.time`), so every process applies the same policy and
Redis key TTLs only collect garbage.

Client addresses are keyed by `kit.http.address_key` (an IPv6 client by its /64).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import structlog
from limits import parse

from gatehouse.auth.errors import LoginThrottled
from gatehouse.cache.redis import RedisClient, RedisUnavailable
from gatehouse.config import RateLimitSettings
from gatehouse.kit.http import address_key

log = structlog.get_logger("gatehouse.auth.protection")

# In-process entries kept at most (pairs, accounts and IP windows together); the
# oldest are dropped beyond it. The per-IP budget keeps honest traffic far below it.
MEMORY_MAX_ENTRIES = 100_000


class Verdict(IntEnum):
    allowed = 0
    pair_locked = 1
    ip_throttled = 2
    account_delayed = 3


@dataclass(frozen=True)
class Policy:
    ip_limit: int
    ip_window_ms: int
    reset_ms: int
    pair_threshold: int
    pair_base_ms: int
    pair_max_ms: int
    account_threshold: int
    account_base_ms: int
    account_max_ms: int

    @classmethod
    def from_settings(cls, settings: RateLimitSettings) -> Policy:
        ip = parse(settings.login_ip_failures)
        return cls(
            ip_limit=ip.amount,
            ip_window_ms=ip.get_expiry() * 1000,
            reset_ms=settings.login_failure_reset_seconds * 1000,
            pair_threshold=settings.login_lockout_threshold,
            pair_base_ms=settings.login_lockout_base_seconds * 1000,
            pair_max_ms=settings.login_lockout_max_seconds * 1000,
            account_threshold=settings.login_account_delay_threshold,
            account_base_ms=settings.login_account_delay_base_seconds * 1000,
            account_max_ms=settings.login_account_delay_max_seconds * 1000,
        )

    def args(self) -> list[int]:
        return [
            self.ip_limit,
            self.ip_window_ms,
            self.reset_ms,
            self.pair_threshold,
            self.pair_base_ms,
            self.pair_max_ms,
            self.account_threshold,
            self.account_base_ms,
            self.account_max_ms,
        ]


def _wait(failures: int, threshold: int, base: int, cap: int) -> int:
    """The wait after the `failures`-th failure: 0 below the threshold, then doubling."""
    if failures < threshold:
        return 0
    return int(min(base * 2 ** min(failures - threshold, 40), cap))


@dataclass(frozen=True)
class Keys:
    ip_window: str
    pair: str
    account: str


@dataclass
class Attempt:
    """One login attempt as the protection judged it, before the password is checked."""

    verdict: Verdict
    keys: Keys
    on_redis: bool
    retry_after: int = 0

    @property
    def refused(self) -> bool:
        return self.verdict is not Verdict.allowed


@dataclass
class _State:
    failures: int = 0
    last: int = 0
    until: int = 0
    expires: int = 0


class MemoryLoginStore:
    """The in-process store: the embedded default and the fallback when Redis is down.

    Single-threaded under asyncio and without awaits inside, so each call is atomic.
    Entries expire like their Redis counterparts and the store never holds more than
    `max_entries` of them.
    """

    def __init__(self, max_entries: int = MEMORY_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.entries: dict[str, _State] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def _get(self, key: str, now: int) -> _State | None:
        state = self.entries.get(key)
        if state is not None and state.expires <= now:
            del self.entries[key]
            return None
        return state

    def _put(self, key: str, state: _State, now: int) -> None:
        self.entries.pop(key, None)
        self.entries[key] = state  # newest last: eviction drops the oldest first
        if len(self.entries) > self.max_entries:
            for stale in [k for k, v in self.entries.items() if v.expires <= now]:
                del self.entries[stale]
            while len(self.entries) > self.max_entries:
                del self.entries[next(iter(self.entries))]

    def attempt(self, keys: Keys, now: int, policy: Policy) -> Verdict:
        window = self._get(keys.ip_window, now)
        if window is not None and window.failures >= policy.ip_limit:
            return Verdict.ip_throttled
        window_end = (now // policy.ip_window_ms + 1) * policy.ip_window_ms
        window = window or _State(expires=window_end)
        window.failures += 1
        self._put(keys.ip_window, window, now)

        pair = self._current(keys.pair, now, policy)
        account = self._current(keys.account, now, policy)
        if pair.until > now:
            return Verdict.pair_locked
        if account.until > now:
            return Verdict.account_delayed
        pair.failures += 1
        account.failures += 1
        pair_wait = _wait(
            pair.failures, policy.pair_threshold, policy.pair_base_ms, policy.pair_max_ms
        )
        account_wait = _wait(
            account.failures,
            policy.account_threshold,
            policy.account_base_ms,
            policy.account_max_ms,
        )
        expires = now + policy.reset_ms + max(pair_wait, account_wait)
        for key, state, wait in (
            (keys.pair, pair, pair_wait),
            (keys.account, account, account_wait),
        ):
            state.last, state.until, state.expires = now, now + wait, expires
            self._put(key, state, now)
        return Verdict.allowed

    def _current(self, key: str, now: int, policy: Policy) -> _State:
        state = self._get(key, now)
        if state is None or now - state.last >= policy.reset_ms:
            return _State()
        return state

    def refusal(self, keys: Keys, now: int, policy: Policy) -> Verdict | None:
        """A lock or delay this store still holds (read only)."""
        if self._current(keys.pair, now, policy).until > now:
            return Verdict.pair_locked
        if self._current(keys.account, now, policy).until > now:
            return Verdict.account_delayed
        return None

    def succeeded(self, keys: Keys, now: int) -> None:
        self.entries.pop(keys.pair, None)
        self.entries.pop(keys.account, None)
        window = self._get(keys.ip_window, now)
        if window is not None and window.failures > 0:
            window.failures -= 1


# The same transition as MemoryLoginStore.attempt, atomic inside Redis.
# KEYS: ip window, pair, account. ARGV: now (ms), then Policy.args().
_ATTEMPT_LUA = """
local now = tonumber(ARGV[1])
local ip_limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local reset = tonumber(ARGV[4])
local ipn = tonumber(redis.call('GET', KEYS[1]) or '0')
if ipn >= ip_limit then
  return 2
end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], (math.floor(now / window) + 1) * window - now + 1000)
local function load(key)
  local v = redis.call('HMGET', key, 'n', 'last', 'until')
  local last = tonumber(v[2]) or 0
  if now - last >= reset then
    return 0, 0
  end
  return tonumber(v[1]) or 0, tonumber(v[3]) or 0
end
local pn, ptill = load(KEYS[2])
local an, atill = load(KEYS[3])
if ptill > now then
  return 1
end
if atill > now then
  return 3
end
local function wait(n, threshold, base, cap)
  if n < threshold then
    return 0
  end
  local d = base * math.pow(2, math.min(n - threshold, 40))
  if d > cap then
    d = cap
  end
  return math.floor(d)
end
pn = pn + 1
an = an + 1
local pw = wait(pn, tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))
local aw = wait(an, tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]))
local ttl = reset + math.max(pw, aw)
redis.call('HSET', KEYS[2], 'n', pn, 'last', now, 'until', now + pw)
redis.call('HSET', KEYS[3], 'n', an, 'last', now, 'until', now + aw)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
return 0
"""

_SUCCESS_LUA = """
redis.call('DEL', KEYS[2], KEYS[3])
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then
  redis.call('DECR', KEYS[1])
end
return 1
"""


class RedisLoginStore:
    def __init__(self, client: RedisClient) -> None:
        self.client = client
        self._attempt = client.redis.register_script(_ATTEMPT_LUA)
        self._success = client.redis.register_script(_SUCCESS_LUA)

    async def attempt(self, keys: Keys, now: int, policy: Policy) -> Verdict:
        script_keys = [keys.ip_window, keys.pair, keys.account]
        args: list[Any] = [now, *policy.args()]
        result = await self.client.call(lambda r: self._attempt(script_keys, args, client=r))
        return Verdict(int(result))

    async def succeeded(self, keys: Keys) -> None:
        script_keys = [keys.ip_window, keys.pair, keys.account]
        await self.client.call(lambda r: self._success(script_keys, [], client=r))


class LoginProtection:
    """One per process: judges login attempts and remembers their failures."""

    def __init__(
        self,
        settings: RateLimitSettings,
        redis: RedisClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = Policy.from_settings(settings)
        self.ipv6_prefix = settings.rate_limit_ipv6_prefix
        self.memory = MemoryLoginStore()
        self.redis = RedisLoginStore(redis) if redis is not None else None
        self.prefix = redis.prefix if redis is not None else ""
        self.clock = clock
        self.stats: Counter[str] = Counter()
        self._degraded = False

    def keys(self, account: str, ip: str | None, now: int) -> Keys:
        # Accounts by digest: no email addresses in Redis key names.
        digest = hashlib.sha256(account.encode()).hexdigest()[:32]
        address = address_key(ip, self.ipv6_prefix) or "unknown"
        window = now // self.policy.ip_window_ms
        return Keys(
            ip_window=f"{self.prefix}login:ip:{address}:{window}",
            pair=f"{self.prefix}login:pair:{digest}:{address}",
            account=f"{self.prefix}login:account:{digest}",
        )

    def _now(self) -> int:
        return int(self.clock() * 1000)

    async def begin(self, account: str, ip: str | None) -> Attempt:
        """Judge an attempt on `account` (its normalised identifier) from `ip`.

        Raises LoginThrottled (429) when the IP is over its failure budget. Otherwise
        the attempt is counted as a failure until `succeeded` says otherwise; a refused
        attempt must be answered like a wrong password.
        """
        now = self._now()
        keys = self.keys(account, ip, now)
        verdict: Verdict | None = None
        if self.redis is not None:
            try:
                # A lock taken in memory while Redis was down still holds after it is back.
                verdict = self.memory.refusal(keys, now, self.policy) if self.memory else None
                verdict = verdict or await self.redis.attempt(keys, now, self.policy)
            except RedisUnavailable:
                self._fall_back()
            else:
                if self._degraded:
                    self._degraded = False
                    log.info("login_protection.redis_recovered")
        on_redis = verdict is not None
        if verdict is None:
            verdict = self.memory.attempt(keys, now, self.policy)
        self.stats[verdict.name] += 1
        if verdict is Verdict.ip_throttled:
            window_end = (now // self.policy.ip_window_ms + 1) * self.policy.ip_window_ms
            log.info("login_protection.ip_throttled", client_ip=ip)
            raise LoginThrottled(math.ceil((window_end - now) / 1000))
        if verdict is not Verdict.allowed:
            # Visible to operators only; the client gets the wrong-password answer.
            log.info("login_protection.refused", reason=verdict.name, client_ip=ip)
        return Attempt(verdict=verdict, keys=keys, on_redis=on_redis)

    async def succeeded(self, attempt: Attempt) -> None:
        """The password was right: clear the account's counters and the IP's failure."""
        if attempt.on_redis and self.redis is not None:
            try:
                await self.redis.succeeded(attempt.keys)
            except RedisUnavailable:
                self._fall_back()
            else:
                return
        self.memory.succeeded(attempt.keys, self._now())

    def _fall_back(self) -> None:
        self.stats["fallback"] += 1
        if not self._degraded:
            self._degraded = True
            log.warning("login_protection.redis_unavailable", fallback="memory")
