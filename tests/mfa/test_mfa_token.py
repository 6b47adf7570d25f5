"""The login's mfa_token: single use, another user's code is no good with it, it dies
after five minutes or five wrong codes; the bound on guesses across fresh tokens, in
Redis across processes and in each process's memory while Redis is down; and the
login's per-IP budget, which the second step shares."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis as AsyncRedis

from gatehouse.auth.service import hash_mfa_token
from gatehouse.cache.redis import RedisClient
from gatehouse.config import MfaSettings, RedisSettings
from gatehouse.dependencies import build_mfa_service
from gatehouse.errors import GatehouseError
from gatehouse.kit import metrics
from gatehouse.kit.context import Actor
from gatehouse.kit.jobs import LeftForSweep
from gatehouse.mfa.errors import InvalidMfaCode, MfaThrottled
from gatehouse.mfa.repository import MfaRepository
from gatehouse.mfa.service import Proof
from gatehouse.mfa.throttle import MfaThrottle, account_key
from gatehouse.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import Api, assert_envelope
from tests.logs import LogCapture
from tests.mfa.support import (
    TOKEN,
    VERIFY,
    audit_of,
    enrol,
    mails_of,
    password_step,
    step_start,
)
from tests.redis_server import DedicatedRedis


async def _verify(api: Api, token: str, code: str, method: str = "totp") -> Any:
    return await api.client.post(VERIFY, json={"mfa_token": token, "method": method, "code": code})


async def test_an_mfa_token_works_once(api: Api) -> None:
    with step_start() as clock:
        enrolled = await enrol(api, await api.user("user"))
        clock.shift(30)
        details = await password_step(api, enrolled.account)
        first = await _verify(api, details["mfa_token"], enrolled.code())
        assert first.status_code == 200, first.text
        clock.shift(30)
        replay = await _verify(api, details["mfa_token"], enrolled.code())
    assert_envelope(replay, 401, "MFA_TOKEN_INVALID")


async def test_another_users_code_is_no_good_with_my_token(api: Api) -> None:
    with step_start() as clock:
        mine = await enrol(api, await api.user("user"))
        theirs = await enrol(api, await api.user("user"))
        clock.shift(30)
        details = await password_step(api, mine.account)
        crossed = await _verify(api, details["mfa_token"], theirs.code())
        assert_envelope(crossed, 401, "INVALID_MFA_CODE")
        recovery = await _verify(
            api, details["mfa_token"], theirs.recovery_codes[0], method="recovery_code"
        )
        assert_envelope(recovery, 401, "INVALID_MFA_CODE")
        # Their code is still theirs to use: nothing of mine spent it.
        own = await password_step(api, theirs.account)
        assert (await _verify(api, own["mfa_token"], theirs.code())).status_code == 200


async def test_an_mfa_token_expires_after_five_minutes(api: Api) -> None:
    with step_start() as clock:
        enrolled = await enrol(api, await api.user("user"))
        details = await password_step(api, enrolled.account)
        clock.shift(301)
        late = await _verify(api, details["mfa_token"], enrolled.code())
    assert_envelope(late, 401, "MFA_TOKEN_INVALID")


async def test_five_wrong_codes_kill_the_token_even_for_the_right_one(
    api: Api, runtime: Runtime
) -> None:
    with step_start() as clock:
        enrolled = await enrol(api, await api.user("user"))
        clock.shift(30)
        details = await password_step(api, enrolled.account)
        left = []
        for _ in range(5):
            wrong = await _verify(api, details["mfa_token"], "000000")
            left.append(assert_envelope(wrong, 401, "INVALID_MFA_CODE")["details"])
        right = await _verify(api, details["mfa_token"], enrolled.code())
    assert left == [{"attempts_left": n} for n in (4, 3, 2, 1, 0)]
    assert_envelope(right, 401, "MFA_TOKEN_INVALID")
    reasons = [r.reason for r in await audit_of(runtime, "mfa.verify", enrolled.account.id)]
    assert reasons == ["wrong_code"] * 5 + ["token_invalid"]


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_enabled": True}])
async def test_a_thousand_guesses_across_fresh_tokens_get_nothing(
    api: Api, runtime: Runtime
) -> None:
    """The attacker knows the password, so logs in again for a fresh mfa_token whenever
    one dies; here every guess gets a fresh token, so no token's own limit of five
    wrong codes ever applies and only the per-account bound is left. Done in the
    service layer (the token rows made as the password step makes them): 1,000
    password logins would only measure bcrypt."""
    with step_start() as clock:
        enrolled = await enrol(api, await api.user("user"))
        clock.shift(30)
        user_id = enrolled.account.id
        right = enrolled.code()
        outcomes: dict[str, int] = {}
        first_throttled = None
        for attempt in range(1, 1001):
            token = await _fresh_token(runtime, user_id)
            guess = f"{(attempt * 7919) % 1_000_000:06d}"
            if guess == right:
                guess = f"{(int(guess) + 1) % 1_000_000:06d}"
            outcome = await _guess(runtime, token, guess)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome == "throttled" and first_throttled is None:
                first_throttled = attempt
        # The owner's right code is refused too while the bound holds (one budget).
        owner = await _guess(runtime, await _fresh_token(runtime, user_id), right)
    print(f"\n1,000 guesses: {outcomes}; throttled from attempt {first_throttled}")
    assert outcomes.get("accepted", 0) == 0
    assert outcomes == {"wrong": 10, "throttled": 990}
    assert first_throttled == 11
    assert owner == "throttled"
    # The owner hears of it, once an hour at most.
    assert (await mails_of(runtime, user_id)).count("mfa_code_guessing") == 1


async def _fresh_token(runtime: Runtime, user_id: Any) -> str:
    import secrets
    from datetime import timedelta

    from gatehouse.kit.time import utcnow
    from gatehouse.mfa.models import MfaChallenge

    token = secrets.token_urlsafe(32)
    async with runtime.unit_of_work() as uow:
        await MfaRepository(uow.session).add_challenge(
            MfaChallenge(
                token_hash=hash_mfa_token(token),
                user_id=user_id,
                expires_at=utcnow() + timedelta(minutes=5),
            )
        )
    return token


async def _guess(runtime: Runtime, token: str, code: str) -> str:
    try:
        async with runtime.unit_of_work(actor=Actor(ip="203.0.113.9")) as uow:
            await build_mfa_service(uow, runtime).verify_login(token, Proof("totp", code))
    except InvalidMfaCode:
        return "wrong"
    except MfaThrottled:
        return "throttled"
    except GatehouseError as exc:
        return exc.code
    return "accepted"


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_enabled": True}])
async def test_the_throttle_answers_429_with_retry_after_over_http(api: Api) -> None:
    with step_start() as clock:
        enrolled = await enrol(api, await api.user("user"))
        clock.shift(30)
        statuses = []
        for _ in range(3):
            details = await password_step(api, enrolled.account)
            for _ in range(4):
                statuses.append((await _verify(api, details["mfa_token"], "000000")).status_code)
        refused = await _verify(api, (await password_step(api, enrolled.account))["mfa_token"], "1")
    assert statuses == [401] * 10 + [429, 429]
    error = assert_envelope(refused, 429, "RATE_LIMITED")
    assert error["details"] == {}
    assert 0 < int(refused.headers["retry-after"]) <= 3600


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "rate_limit_enabled": True,
            "rate_limit_login": "3/hour",
            "rate_limit_anonymous": "1000/hour",
        }
    ],
)
async def test_the_second_step_spends_the_logins_per_ip_budget(api: Api, runtime: Runtime) -> None:
    """/auth/mfa/verify counts in /auth/token's per-IP bucket: a login with MFA spends two
    of it, and neither route has a budget of its own to fall back on."""
    with step_start() as clock:
        enrolled = await enrol(api, await api.user("user"))  # the login: 1 of 3
        clock.shift(30)
        details = await password_step(api, enrolled.account)  # 2 of 3
        wrong = await _verify(api, details["mfa_token"], "000000")  # 3 of 3
        assert assert_envelope(wrong, 401, "INVALID_MFA_CODE")["details"] == {"attempts_left": 4}
        assert (wrong.headers["x-ratelimit-limit"], wrong.headers["x-ratelimit-remaining"]) == (
            "3",
            "0",
        )
        # The verify spent the password login's budget...
        password = await api.client.post(
            TOKEN,
            json={"username": enrolled.account.email, "password": enrolled.account.password},
        )
        assert_envelope(password, 429, "RATE_LIMITED")
        # ...and the right code with a live mfa_token is refused by the same budget,
        # before the service sees it.
        right = await _verify(api, details["mfa_token"], enrolled.code())
        assert_envelope(right, 429, "RATE_LIMITED")
        assert 0 < int(right.headers["retry-after"]) <= 3600
    rows = await audit_of(runtime, "mfa.verify", enrolled.account.id)
    assert [(r.outcome, r.reason) for r in rows] == [("failure", "wrong_code")]


class TestThrottleInRedis:
    """The bound kept in Redis (the rate limiter's), as every process of a deployment
    shares it."""

    @pytest.fixture
    def settings_overrides(self, redis_url: str, redis_prefix: str) -> dict[str, Any]:
        return {"rate_limit_enabled": True, "redis_url": redis_url, "redis_prefix": redis_prefix}

    async def test_two_processes_on_one_redis_share_the_accounts_bound(
        self,
        api: Api,
        runtime: Runtime,
        database_url: str,
        tmp_path: Path,
        signing_key_pem: str,
        settings_overrides: dict[str, Any],
        redis_url: str,
        redis_prefix: str,
    ) -> None:
        # Another process: its own runtime (Redis connection, throttle, memory), the same
        # database, Redis prefix and data dir (the generated encryption key).
        other = Runtime.create(
            make_settings(database_url, tmp_path, signing_key_pem, **settings_overrides)
        )
        other.use_jobs(LeftForSweep())
        fallbacks = _fallbacks()
        try:
            with step_start() as clock:
                enrolled = await enrol(api, await api.user("user"))
                clock.shift(30)
                user_id = enrolled.account.id
                right = enrolled.code()
                wrong = f"{(int(right) + 1) % 1_000_000:06d}"
                outcomes = []
                for attempt in range(14):  # alternately through each process
                    process = (runtime, other)[attempt % 2]
                    token = await _fresh_token(process, user_id)
                    outcomes.append(await _guess(process, token, wrong))
                owner = await _guess(other, await _fresh_token(other, user_id), right)
            assert runtime.part(MfaThrottle) is not other.part(MfaThrottle)
        finally:
            await other.close()
        # 10 an hour for the account, not 10 per process (which would be 14 wrong).
        assert outcomes == ["wrong"] * 10 + ["throttled"] * 4
        assert owner == "throttled"
        assert _fallbacks() == fallbacks  # never counted in a process's memory
        client = AsyncRedis.from_url(redis_url)
        try:
            keys = sorted([k.decode() async for k in client.scan_iter(match=f"{redis_prefix}mfa*")])
        finally:
            await client.aclose()
        # One counter per window (10/hour and 30/day), both this account's.
        assert len(keys) == 2, keys
        assert all(str(user_id) in key for key in keys)
        assert (await mails_of(runtime, user_id)).count("mfa_code_guessing") == 1


class BreakerClock:
    """The Redis breaker's clock, moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fallbacks() -> float:
    found = metrics.REGISTRY.get_sample_value(
        "gatehouse_redis_fallbacks_total", {"use": "mfa_throttle"}
    )
    return found or 0.0


async def test_with_redis_down_each_process_counts_the_bound_in_its_own_memory(
    redis_server: DedicatedRedis, json_logs: LogCapture
) -> None:
    """A redis-server of the test's own, killed and restarted. Two throttles, as two
    processes hold them (each its own Redis connection, breaker and memory), 3 checks an
    hour per account."""
    clock = BreakerClock()

    def process() -> MfaThrottle:
        redis = RedisClient(
            RedisSettings(
                redis_url=redis_server.url,
                redis_prefix="gatehouse-mfa-down:",
                redis_timeout_seconds=0.2,
                redis_breaker_failures=1,
                redis_breaker_reset_seconds=30,
            )
        )
        redis.breaker.clock = clock
        return MfaThrottle(MfaSettings(mfa_rate_limit="3/hour"), redis)

    a, b = process(), process()
    key = account_key(uuid.uuid4(), "$2b$04$the-password-hash")
    before = _fallbacks()

    async def allowed(throttle: MfaThrottle, times: int) -> list[bool]:
        return [await throttle.check(key) is None for _ in range(times)]

    def events(name: str) -> list[dict[str, Any]]:
        return [r for r in json_logs.records() if r["event"] == name]

    try:
        # Redis up: one count for both processes.
        up = [(await allowed((a, b)[i % 2], 1))[0] for i in range(4)]
        assert up == [True, True, True, False]
        assert len(redis_server.keys("gatehouse-mfa-down:*")) == 1

        redis_server.kill()
        # Down: each process counts in its own memory, from nothing: 3 more each.
        assert await allowed(a, 4) == [True, True, True, False]
        assert await allowed(b, 4) == [True, True, True, False]
        assert _fallbacks() - before == 8  # every check counted
        warnings = events("mfa_throttle.redis_unavailable")
        assert [(w["level"], w["error_type"]) for w in warnings] == [
            ("warning", "RedisUnavailable")
        ] * 2  # one per process, not one per check

        # Back (empty: nothing persisted), once the breakers' pause is over: one shared
        # count again.
        redis_server.start()
        clock.now += 31
        back = [(await allowed((b, a)[i % 2], 1))[0] for i in range(4)]
        assert back == [True, True, True, False]
        assert _fallbacks() - before == 8
        assert len(events("mfa_throttle.shared_counters_resumed")) == 2

        # A second outage is reported again; this process's memory kept its count from
        # the first one (the same hour): still refused.
        redis_server.kill()
        assert await allowed(a, 1) == [False]
        assert _fallbacks() - before == 9
        assert len(events("mfa_throttle.redis_unavailable")) == 3
    finally:
        for throttle in (a, b):
            assert throttle.redis is not None
            await throttle.redis.close()
