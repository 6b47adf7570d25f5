"""The login's mfa_token: single use, another user's code is no good with it, it dies
after five minutes or five wrong codes; and the bound on guesses across fresh tokens."""

from __future__ import annotations

from typing import Any

import pytest

from gatehouse.auth.service import hash_mfa_token
from gatehouse.dependencies import build_mfa_service
from gatehouse.errors import GatehouseError
from gatehouse.kit.context import Actor
from gatehouse.mfa.errors import InvalidMfaCode, MfaThrottled
from gatehouse.mfa.repository import MfaRepository
from gatehouse.mfa.service import Proof
from gatehouse.runtime import Runtime
from tests.factories import Api, assert_envelope
from tests.mfa.support import (
    TOKEN,
    VERIFY,
    audit_of,
    enrol,
    mails_of,
    password_step,
    step_start,
)


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
