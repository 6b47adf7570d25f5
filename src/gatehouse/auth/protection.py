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
not run away. Counters reset after `login_failure_reset_seconds` without a failure,
and when the password is reset (`cleared`).

**Known sources** keep the account delay from being a weapon: wrong passwords from
enough addresses keep it armed around the clock, which would refuse the owner's right
password too. So a source that logged in to the account successfully within
`login_known_source_days` (its client address, or its device token: the browser's
`gatehouse_device` cookie) is not held back by the delay; it still has its own
(account, address) lock and per-IP budget. At most `KNOWN_SOURCES_MAX` per account are
remembered (the least recently used goes), keyed by digest only. A right password the
delay refuses from an unknown source is the service's to report to the owner.

Client addresses are keyed by `kit.http.address_key` (an IPv6 client by its /64).

Storage: Redis when configured (one Lua script per attempt, atomic), else a bounded
in-process store; when Redis is unavailable the in-process store takes over, so
login throttling never becomes unlimited. An operator's unlock (`gatehouse unlock`,
another process) reaches the in-process store through the database: before refusing
an attempt, it looks (at most once a second per account) for an `auth.unlock` audit
row newer than the lock (`reconsider`). The counters live outside the database
transaction, so the failed login's rollback does not undo them. Times come from the
application's wall clock (`time.time`), so every process applies the same policy and
Redis key TTLs only collect garbage.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

import structlog
from limits import parse

from gatehouse.auth.errors import LoginThrottled
from gatehouse.cache.redis import RedisClient, RedisUnavailable
from gatehouse.config import RateLimitSettings
from gatehouse.kit import metrics
from gatehouse.kit.http import address_key

log = structlog.get_logger("gatehouse.auth.protection")

# In-process entries kept at most (pairs, accounts and IP windows together); the
# oldest are dropped beyond it. The per-IP budget keeps honest traffic far below it.
MEMORY_MAX_ENTRIES = 100_000
# Known sources (addresses and devices together) remembered per account: a handful of
# devices and the networks they roam over, as Keycloak and Kratos cap theirs.
KNOWN_SOURCES_MAX = 20
# A refusal by the in-process store asks the database whether an operator unlocked the
# account at most this often per account: an attack's refused attempts, however many,
# cost the database one look a second per account (the unlock waits that long at most).
UNLOCK_LOOK_MS = 1000
# A device token as minted here: 32 random bytes, URL-safe base64. Anything else a
# client sends is ignored (a fresh one is minted on its next success).
_DEVICE_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


class Verdict(IntEnum):
    allowed = 0
    pair_locked = 1
    ip_throttled = 2
    account_delayed = 3


@dataclass(frozen=True)
class Judged:
    """A store's answer to one attempt: the verdict, whether the source is known, and
    the lock and delay (ms) this attempt's failure armed, 0 when it armed none (so the
    audit trail gets one row per lock, not one per refused attempt)."""

    verdict: Verdict
    known: bool = False
    locked_ms: int = 0
    delayed_ms: int = 0


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
    known_ms: int

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
            known_ms=settings.login_known_source_days * 86_400_000,
        )

    @property
    def cleared_ms(self) -> int:
        """How long a password reset's mark must outlive: any lock or delay it ends."""
        return self.reset_ms + max(self.pair_max_ms, self.account_max_ms)

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
            self.known_ms,
            KNOWN_SOURCES_MAX,
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
    # The account's known sources, and when its password was last reset.
    known: str
    cleared: str
    # Fields in `known`: this attempt's address and device token (digests).
    address_field: str
    device_field: str | None


def new_device_token() -> str:
    return secrets.token_urlsafe(32)


def valid_device_token(value: str | None) -> str | None:
    return value if value and _DEVICE_TOKEN.match(value) else None


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


@dataclass
class Attempt:
    """One login attempt as the protection judged it, before the password is checked."""

    verdict: Verdict
    keys: Keys
    on_redis: bool
    retry_after: int = 0
    # The source logged in to this account before (the account delay let it through).
    known: bool = False
    # The client's device token, if it sent a well-formed one.
    device: str | None = None
    # The (account, address) lock and the account delay this attempt armed (ms), if it
    # turns out a failure; a success clears them again.
    locked_ms: int = 0
    delayed_ms: int = 0

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
    `max_entries` of them (known-source lists counted apart, with the same bound).
    """

    def __init__(self, max_entries: int = MEMORY_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.entries: dict[str, _State] = {}
        # Account → {source field: last successful login (ms)}, least recent first.
        self.known: dict[str, dict[str, int]] = {}

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

    def is_known(self, keys: Keys, now: int, policy: Policy) -> bool:
        sources = self.known.get(keys.known, {})
        fields = [keys.address_field, keys.device_field]
        return any(
            field and field in sources and now - sources[field] < policy.known_ms
            for field in fields
        )

    def attempt(self, keys: Keys, now: int, policy: Policy) -> Judged:
        window = self._get(keys.ip_window, now)
        if window is not None and window.failures >= policy.ip_limit:
            return Judged(Verdict.ip_throttled)
        window_end = (now // policy.ip_window_ms + 1) * policy.ip_window_ms
        window = window or _State(expires=window_end)
        window.failures += 1
        self._put(keys.ip_window, window, now)
        return self._judge(keys, now, policy)

    def _judge(self, keys: Keys, now: int, policy: Policy) -> Judged:
        """The account's layers (the pair lock, the account delay) on an attempt the
        IP's budget already counted."""
        known = self.is_known(keys, now, policy)
        pair = self._current(keys.pair, keys, now, policy)
        account = self._current(keys.account, keys, now, policy)
        if pair.until > now:
            return Judged(Verdict.pair_locked, known)
        if account.until > now and not known:
            return Judged(Verdict.account_delayed, known)
        # A known source's failure may count while the delay holds: it arms nothing new.
        delay_held = account.until > now
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
            # A known source's failure counts, but never shortens a delay in force.
            state.last, state.until, state.expires = now, max(state.until, now + wait), expires
            self._put(key, state, now)
        return Judged(Verdict.allowed, known, pair_wait, 0 if delay_held else account_wait)

    def _current(self, key: str, keys: Keys, now: int, policy: Policy) -> _State:
        state = self._get(key, now)
        cleared = self._get(keys.cleared, now)
        if (
            state is None
            or now - state.last >= policy.reset_ms
            or (cleared is not None and state.last <= cleared.last)
        ):
            return _State()
        return state

    def refusal(self, keys: Keys, now: int, policy: Policy) -> Verdict | None:
        """A lock or delay this store still holds (read only)."""
        if self._current(keys.pair, keys, now, policy).until > now:
            return Verdict.pair_locked
        if self._current(keys.account, keys, now, policy).until > now and not self.is_known(
            keys, now, policy
        ):
            return Verdict.account_delayed
        return None

    def succeeded(self, keys: Keys, now: int, policy: Policy) -> None:
        self.entries.pop(keys.pair, None)
        self.entries.pop(keys.account, None)
        window = self._get(keys.ip_window, now)
        if window is not None and window.failures > 0:
            window.failures -= 1
        self.remember(keys, now, policy)

    def remember(self, keys: Keys, now: int, policy: Policy) -> None:
        sources = self.known.pop(keys.known, {})
        self.known[keys.known] = sources  # most recently used account last
        for field in (keys.address_field, keys.device_field):
            if field:
                sources.pop(field, None)
                sources[field] = now
        for field in [f for f, seen in sources.items() if now - seen >= policy.known_ms]:
            del sources[field]
        while len(sources) > KNOWN_SOURCES_MAX:
            del sources[next(iter(sources))]
        while len(self.known) > self.max_entries:
            del self.known[next(iter(self.known))]

    def clear(self, keys: Keys, now: int, policy: Policy) -> None:
        self.entries.pop(keys.account, None)
        self._put(keys.cleared, _State(last=now, expires=now + policy.cleared_ms), now)

    def unlocked(self, keys: Keys, at: int, now: int, policy: Policy) -> Judged:
        """An operator unlocked the account at `at` (ms, not after `now`): the locks and
        the delay from failures up to then end, by the mark a password reset leaves
        (those from failures after it hold), and the refused attempt is judged again."""
        mark = self._get(keys.cleared, now)
        if mark is None or mark.last < at:
            self._put(keys.cleared, _State(last=at, expires=at + policy.cleared_ms), now)
        return self._judge(keys, now, policy)


# The same transition as MemoryLoginStore.attempt, atomic inside Redis.
# KEYS: ip window, pair, account, known sources, cleared mark.
# ARGV: now (ms), Policy.args(), then the address's and the device's field ('' if none).
# Returns {verdict, known, lock armed (ms), delay armed (ms)}.
_ATTEMPT_LUA = """
local now = tonumber(ARGV[1])
local ip_limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local reset = tonumber(ARGV[4])
local known_ms = tonumber(ARGV[11])
local ipn = tonumber(redis.call('GET', KEYS[1]) or '0')
if ipn >= ip_limit then
  return {2, 0, 0, 0}
end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], (math.floor(now / window) + 1) * window - now + 1000)
local known = 0
for _, field in ipairs({ARGV[13], ARGV[14]}) do
  if field ~= '' then
    local seen = tonumber(redis.call('HGET', KEYS[4], field) or '')
    if seen and now - seen < known_ms then
      known = 1
    end
  end
end
local cleared = tonumber(redis.call('GET', KEYS[5]) or '-1')
local function load(key)
  local v = redis.call('HMGET', key, 'n', 'last', 'until')
  local last = tonumber(v[2]) or 0
  if now - last >= reset or last <= cleared then
    return 0, 0
  end
  return tonumber(v[1]) or 0, tonumber(v[3]) or 0
end
local pn, ptill = load(KEYS[2])
local an, atill = load(KEYS[3])
if ptill > now then
  return {1, known, 0, 0}
end
if atill > now and known == 0 then
  return {3, known, 0, 0}
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
redis.call('HSET', KEYS[2], 'n', pn, 'last', now, 'until', math.max(ptill, now + pw))
redis.call('HSET', KEYS[3], 'n', an, 'last', now, 'until', math.max(atill, now + aw))
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
local armed_delay = aw
if atill > now then
  armed_delay = 0
end
return {0, known, pw, armed_delay}
"""

# A success: the counters go, the source is remembered (the least recent beyond the cap
# and the expired are dropped). KEYS: ip window, pair, account, known sources.
# ARGV: now, known_ms, known_max, address field, device field ('' if none).
_SUCCESS_LUA = """
redis.call('DEL', KEYS[2], KEYS[3])
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then
  redis.call('DECR', KEYS[1])
end
local now = tonumber(ARGV[1])
local known_ms = tonumber(ARGV[2])
for _, field in ipairs({ARGV[4], ARGV[5]}) do
  if field ~= '' then
    redis.call('HSET', KEYS[4], field, now)
  end
end
local all = redis.call('HGETALL', KEYS[4])
local seen = {}
for i = 1, #all, 2 do
  local at = tonumber(all[i + 1])
  if now - at >= known_ms then
    redis.call('HDEL', KEYS[4], all[i])
  else
    table.insert(seen, {all[i], at})
  end
end
local extra = #seen - tonumber(ARGV[3])
if extra > 0 then
  table.sort(seen, function(a, b) return a[2] < b[2] end)
  for i = 1, extra do
    redis.call('HDEL', KEYS[4], seen[i][1])
  end
end
redis.call('PEXPIRE', KEYS[4], known_ms)
return 1
"""

# A password reset: the account's delay goes, and every pair lock older than the mark.
# KEYS: account, cleared mark. ARGV: now, the mark's lifetime.
_CLEAR_LUA = """
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
"""


class RedisLoginStore:
    def __init__(self, client: RedisClient) -> None:
        self.client = client
        self._attempt = client.redis.register_script(_ATTEMPT_LUA)
        self._success = client.redis.register_script(_SUCCESS_LUA)
        self._clear = client.redis.register_script(_CLEAR_LUA)

    async def attempt(self, keys: Keys, now: int, policy: Policy) -> Judged:
        script_keys = [keys.ip_window, keys.pair, keys.account, keys.known, keys.cleared]
        args: list[Any] = [now, *policy.args(), keys.address_field, keys.device_field or ""]
        result = await self.client.call(lambda r: self._attempt(script_keys, args, client=r))
        return Judged(Verdict(int(result[0])), bool(int(result[1])), *map(int, result[2:4]))

    async def succeeded(self, keys: Keys, now: int, policy: Policy) -> None:
        script_keys = [keys.ip_window, keys.pair, keys.account, keys.known]
        args: list[Any] = [
            now,
            policy.known_ms,
            KNOWN_SOURCES_MAX,
            keys.address_field,
            keys.device_field or "",
        ]
        await self.client.call(lambda r: self._success(script_keys, args, client=r))

    async def clear(self, keys: Keys, now: int, policy: Policy) -> None:
        script_keys = [keys.account, keys.cleared]
        args: list[Any] = [now, policy.cleared_ms]
        await self.client.call(lambda r: self._clear(script_keys, args, client=r))


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
        # Account key -> (when the database was last asked for its unlocks (ms), the
        # newest one it had then (ms), or None); entries older than UNLOCK_LOOK_MS go.
        self._unlock_looks: dict[str, tuple[int, int | None]] = {}

    def keys(self, account: str, ip: str | None, now: int, device: str | None = None) -> Keys:
        # Accounts and devices by digest: no email address or usable token in Redis.
        digest = _digest(account)
        address = address_key(ip, self.ipv6_prefix) or "unknown"
        window = now // self.policy.ip_window_ms
        return Keys(
            ip_window=f"{self.prefix}login:ip:{address}:{window}",
            pair=f"{self.prefix}login:pair:{digest}:{address}",
            account=f"{self.prefix}login:account:{digest}",
            known=f"{self.prefix}login:known:{digest}",
            cleared=f"{self.prefix}login:cleared:{digest}",
            # "unknown" (no address at all) is nobody's known address.
            address_field="a:" + _digest(address) if ip is not None else "",
            device_field="d:" + _digest(device) if device is not None else None,
        )

    def _now(self) -> int:
        return int(self.clock() * 1000)

    async def begin(self, account: str, ip: str | None, device: str | None = None) -> Attempt:
        """Judge an attempt on `account` (its normalised identifier) from `ip`, with the
        device token the client sent (`gatehouse_device`), if any.

        Raises LoginThrottled (429) when the IP is over its failure budget. Otherwise
        the attempt is counted as a failure until `succeeded` says otherwise; a refused
        attempt must be answered like a wrong password.
        """
        now = self._now()
        device = valid_device_token(device)
        keys = self.keys(account, ip, now, device)
        judged: Judged | None = None
        if self.redis is not None:
            try:
                # A lock taken in memory while Redis was down still holds after it is back.
                held = self.memory.refusal(keys, now, self.policy) if self.memory else None
                if held is not None:
                    judged = Judged(held)
                else:
                    judged = await self.redis.attempt(keys, now, self.policy)
            except RedisUnavailable:
                self._fall_back()
            else:
                if self._degraded:
                    self._degraded = False
                    log.info("login_protection.redis_recovered")
        on_redis = judged is not None
        if judged is None:
            judged = self.memory.attempt(keys, now, self.policy)
        verdict = judged.verdict
        self.stats[verdict.name] += 1
        if verdict is Verdict.ip_throttled:
            window_end = (now // self.policy.ip_window_ms + 1) * self.policy.ip_window_ms
            log.info("login_protection.ip_throttled", client_ip=ip)
            raise LoginThrottled(math.ceil((window_end - now) / 1000))
        if verdict is not Verdict.allowed:
            # Visible to operators only; the client gets the wrong-password answer.
            log.info("login_protection.refused", reason=verdict.name, client_ip=ip)
        return Attempt(
            verdict=verdict,
            keys=keys,
            on_redis=on_redis,
            known=judged.known,
            device=device,
            locked_ms=judged.locked_ms,
            delayed_ms=judged.delayed_ms,
        )

    async def reconsider(
        self,
        attempt: Attempt,
        newest_unlock: Callable[[datetime], Awaitable[datetime | None]],
    ) -> Attempt:
        """Before a lock or the account delay of the in-process store refuses `attempt`
        (of an account that exists): did an operator unlock the account since?

        `gatehouse unlock` runs in another process, which cannot reach this one's
        memory; what it leaves where every process looks is its `auth.unlock` audit
        row. `newest_unlock(since)` is when the newest such row for the account was
        written, if after `since`. An unlock after the failures that armed the lock
        ends it and the delay here (as a reset does) and the attempt goes on as if there
        had been none; one before them changes nothing. A rare path (non-refused
        attempts never come here), and at most one look per account per UNLOCK_LOOK_MS,
        whatever the number of refused attempts. On Redis, the unlock already cleared
        the shared counters: nothing to look for.
        """
        if attempt.on_redis or attempt.verdict not in (
            Verdict.pair_locked,
            Verdict.account_delayed,
        ):
            return attempt
        now = self._now()
        account = attempt.keys.account
        look = self._unlock_looks.get(account)
        if look is None or now - look[0] >= UNLOCK_LOOK_MS:
            # Taken before the query: the refusals arriving while it runs use the last
            # answer instead of asking again.
            self._note_look(account, now, look[1] if look else None)
            # A lock or delay in force started at most the longest wait ago.
            since = now - max(self.policy.pair_max_ms, self.policy.account_max_ms)
            found = await newest_unlock(datetime.fromtimestamp(since / 1000, UTC))
            look = (now, int(found.timestamp() * 1000) if found is not None else None)
            self._note_look(account, *look)
        if look[1] is None:
            return attempt
        now = self._now()
        # Never later than now: another host's clock ahead must not clear failures to come.
        judged = self.memory.unlocked(attempt.keys, min(look[1], now), now, self.policy)
        if judged.verdict is not Verdict.allowed:
            return attempt  # failures after the unlock armed what refuses it
        self.stats["unlocked"] += 1
        log.info("login_protection.unlocked", reason=attempt.verdict.name)
        return replace(
            attempt,
            verdict=judged.verdict,
            known=judged.known,
            locked_ms=judged.locked_ms,
            delayed_ms=judged.delayed_ms,
        )

    def _note_look(self, account: str, at: int, unlocked: int | None) -> None:
        looks = self._unlock_looks
        looks.pop(account, None)
        looks[account] = (at, unlocked)  # newest last
        if len(looks) > MEMORY_MAX_ENTRIES:
            for stale in [k for k, (seen, _) in looks.items() if at - seen >= UNLOCK_LOOK_MS]:
                del looks[stale]
            while len(looks) > MEMORY_MAX_ENTRIES:
                del looks[next(iter(looks))]

    async def succeeded(self, attempt: Attempt) -> str:
        """The password was right: clear the account's counters and the IP's failure,
        and remember the source. Returns the device token for the client to keep (the
        one it sent, or a new one)."""
        device = attempt.device or new_device_token()
        keys = replace(attempt.keys, device_field="d:" + _digest(device))
        now = self._now()
        if attempt.on_redis and self.redis is not None:
            try:
                await self.redis.succeeded(keys, now, self.policy)
            except RedisUnavailable:
                self._fall_back()
            else:
                return device
        self.memory.succeeded(keys, now, self.policy)
        return device

    async def cleared(self, account: str) -> bool:
        """The account's password was reset (or an operator unlocked it): its delay and
        every lock on it end (known sources stay known: the owner's other devices must
        not fall back under the delay while an attack goes on).

        True when Redis took it, so every process sees it; False when only this
        process's memory did (no Redis configured, or it did not answer).
        """
        now = self._now()
        keys = self.keys(account, None, now)
        # Both stores: a mark left only in memory would be forgotten by Redis, and back.
        self.memory.clear(keys, now, self.policy)
        if self.redis is None:
            return False
        try:
            await self.redis.clear(keys, now, self.policy)
        except RedisUnavailable:
            self._fall_back()
            return False
        return True

    def _fall_back(self) -> None:
        self.stats["fallback"] += 1
        metrics.REDIS_FALLBACKS.labels("login_protection").inc()
        if not self._degraded:
            self._degraded = True
            log.warning("login_protection.redis_unavailable", fallback="memory")
