"""Logins, refreshes, tokens and 429s, counted as a user causes them and read off
`GET /metrics`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import Account, Api
from tests.scrape import scrape

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/refresh"
LOGINS = "gatehouse_logins_total"
REFRESHES = "gatehouse_token_refreshes_total"
ISSUED = "gatehouse_tokens_issued_total"
WRONG = "Not-The-Password-1"
PROTECTED: dict[str, Any] = {
    "rate_limit_enabled": True,
    # The general limiter's login bucket out of the way of the protection's counts.
    "rate_limit_login": "100000/hour",
}


async def log_in(api: Api, account: Account, password: str | None = None) -> int:
    response = await api.client.post(
        TOKEN, json={"username": account.email, "password": password or account.password}
    )
    return response.status_code


async def test_a_login_counts_a_success_and_an_access_and_a_refresh_token(api: Api) -> None:
    account = await api.create_user()
    before = await scrape(api.client)
    assert await log_in(api, account) == 200
    after = await scrape(api.client)
    assert after.since(before, LOGINS, outcome="success") == 1
    assert after.since(before, ISSUED, kind="access") == 1
    assert after.since(before, ISSUED, kind="refresh") == 1
    assert after.since(before, LOGINS) == 1  # no other outcome


async def test_a_wrong_password_or_an_unknown_account_counts_invalid(api: Api) -> None:
    account = await api.create_user()
    before = await scrape(api.client)
    assert await log_in(api, account, WRONG) == 401
    nobody = Account(account.id, "nobody-here@example.com", WRONG, account.role)
    assert await log_in(api, nobody) == 401
    after = await scrape(api.client)
    assert after.since(before, LOGINS, outcome="invalid") == 2
    assert after.since(before, LOGINS) == 2
    assert after.since(before, ISSUED) == 0


@pytest.mark.parametrize(
    "settings_overrides", [{**PROTECTED, "login_lockout_threshold": 2}], indirect=True
)
async def test_a_login_the_lock_refuses_counts_locked(api: Api) -> None:
    account = await api.create_user()
    before = await scrape(api.client)
    assert [await log_in(api, account, WRONG) for _ in range(2)] == [401, 401]
    # The right password, refused by the lock: the client sees a wrong password.
    assert await log_in(api, account) == 401
    after = await scrape(api.client)
    assert after.since(before, LOGINS, outcome="invalid") == 2
    assert after.since(before, LOGINS, outcome="locked") == 1
    assert after.since(before, LOGINS, outcome="success") == 0


@pytest.mark.parametrize(
    "settings_overrides", [{**PROTECTED, "login_ip_failures": "2/hour"}], indirect=True
)
async def test_a_login_over_the_addresss_failure_budget_counts_rate_limited(api: Api) -> None:
    account = await api.create_user()
    before = await scrape(api.client)
    statuses = [await log_in(api, account, WRONG) for _ in range(3)]
    assert statuses == [401, 401, 429]
    after = await scrape(api.client)
    assert after.since(before, LOGINS, outcome="invalid") == 2
    assert after.since(before, LOGINS, outcome="rate_limited") == 1


@pytest.mark.parametrize(
    "settings_overrides", [{"rate_limit_enabled": True, "rate_limit_login": "2/minute"}],
    indirect=True,
)  # fmt: skip
async def test_a_429_from_the_rate_limiter_on_the_token_path_counts_rate_limited(
    api: Api,
) -> None:
    account = await api.create_user()
    before = await scrape(api.client)
    statuses = [await log_in(api, account) for _ in range(3)]
    assert statuses == [200, 200, 429]
    after = await scrape(api.client)
    assert after.since(before, LOGINS, outcome="success") == 2
    assert after.since(before, LOGINS, outcome="rate_limited") == 1
    rejections = "gatehouse_rate_limit_rejections_total"
    assert after.since(before, rejections, bucket="login") == 1
    assert after.since(before, rejections) == 1


async def test_a_refresh_counts_a_success_and_two_tokens(api: Api) -> None:
    account = await api.user()
    before = await scrape(api.client)
    response = await api.client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert response.status_code == 200, response.text
    after = await scrape(api.client)
    assert after.since(before, REFRESHES, outcome="success") == 1
    assert after.since(before, ISSUED, kind="access") == 1
    assert after.since(before, ISSUED, kind="refresh") == 1
    assert after.since(before, LOGINS) == 0


async def test_an_unknown_refresh_token_counts_invalid(api: Api) -> None:
    before = await scrape(api.client)
    response = await api.client.post(REFRESH, json={"refresh_token": "x" * 43})
    assert response.status_code == 400
    after = await scrape(api.client)
    assert after.since(before, REFRESHES, outcome="invalid") == 1
    assert after.since(before, REFRESHES) == 1


async def test_a_replayed_refresh_token_counts_reuse_detected(api: Api) -> None:
    account = await api.user()
    first = await api.client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert first.status_code == 200
    before = await scrape(api.client)
    replay = await api.client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert replay.status_code == 400
    # The family is ended: the token issued by the first refresh is refused too.
    after_reuse = await api.client.post(
        REFRESH, json={"refresh_token": first.json()["refresh_token"]}
    )
    assert after_reuse.status_code == 400
    after = await scrape(api.client)
    assert after.since(before, REFRESHES, outcome="reuse_detected") == 1
    assert after.since(before, REFRESHES, outcome="invalid") == 1
    assert after.since(before, ISSUED) == 0
