"""IPv6 clients are counted by network (issue "Hardening", item 14).

One subscriber gets a whole /64: counting its addresses one by one would give an
attacker 2^64 budgets. The rate limiter and the login protection key a client by
`kit.http.address_key`: IPv4 as is, IPv6 by its /64 (`GATEHOUSE_RATE_LIMIT_IPV6_PREFIX`),
an IPv4-mapped IPv6 address as the IPv4 address it is.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gatehouse.kit.http import address_key
from tests.factories import Api, assert_envelope

USERS = "/api/v1/users"
TOKEN = "/api/v1/auth/token"
BUDGET = 3


@pytest.mark.parametrize(
    ("address", "prefix", "key"),
    [
        ("192.0.2.1", 64, "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::FFFF", 64, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48"),
        ("2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6/128"),
        ("::ffff:192.0.2.1", 64, "192.0.2.1"),
        ("fe80::1%eth0", 64, "fe80::/64"),
        ("testclient", 64, "testclient"),
        (None, 64, None),
    ],
)
def test_address_key(address: str | None, prefix: int, key: str | None) -> None:
    assert address_key(address, prefix) == key


@pytest.fixture(params=["redis", "memory"])
def storage(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def extra() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings_overrides(
    storage: str, extra: dict[str, Any], request: pytest.FixtureRequest
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "rate_limit_enabled": True,
        "rate_limit_anonymous": f"{BUDGET}/hour",
        "rate_limit_login": "100000/hour",
        "login_ip_failures": f"{BUDGET}/hour",
        "trusted_proxies": ["127.0.0.1/32"],
        **extra,
    }
    if storage == "redis":
        values["redis_url"] = request.getfixturevalue("redis_url")
        values["redis_prefix"] = request.getfixturevalue("redis_prefix")
    return values


async def anonymous(api: Api, address: str) -> int:
    response = await api.client.get(USERS, headers={"X-Forwarded-For": address})
    return response.status_code


async def failed_login(api: Api, address: str) -> httpx.Response:
    return await api.client.post(
        TOKEN,
        json={"username": "nobody@example.com", "password": "Not-The-Password-1"},
        headers={"X-Forwarded-For": address},
    )


# (spent on the budget, then asked from) → the last answer's status
CASES = [
    pytest.param(["2001:db8:1:2::1"], "2001:db8:1:2:ffff::9", 429, id="one-64-shares"),
    pytest.param(["2001:db8:1:2::1"], "2001:db8:1:3::1", 401, id="two-64s-do-not"),
    pytest.param(["192.0.2.1"], "192.0.2.2", 401, id="ipv4-unchanged"),
    pytest.param(["192.0.2.1"], "::ffff:192.0.2.1", 429, id="mapped-is-ipv4"),
    pytest.param(["::ffff:192.0.2.1"], "192.0.2.1", 429, id="ipv4-is-mapped"),
]


@pytest.mark.parametrize(("spent_from", "then", "status"), CASES)
async def test_the_general_limit_counts_an_ipv6_client_by_its_64(
    api: Api, spent_from: list[str], then: str, status: int
) -> None:
    for _ in range(BUDGET):
        assert await anonymous(api, spent_from[0]) == 401  # counted, not authenticated
    assert await anonymous(api, then) == status


@pytest.mark.parametrize(("spent_from", "then", "status"), CASES)
async def test_the_login_failure_budget_counts_an_ipv6_client_by_its_64(
    api: Api, spent_from: list[str], then: str, status: int
) -> None:
    for _ in range(BUDGET):
        assert_envelope(await failed_login(api, spent_from[0]), 401, "INVALID_CREDENTIALS")
    response = await failed_login(api, then)
    assert response.status_code == status
    if status == 429:
        assert_envelope(response, 429, "RATE_LIMITED")


@pytest.mark.parametrize("extra", [{"rate_limit_ipv6_prefix": 128}])
async def test_the_prefix_is_configurable(api: Api) -> None:
    for _ in range(BUDGET):
        assert await anonymous(api, "2001:db8:1:2::1") == 401
        assert_envelope(await failed_login(api, "2001:db8:1:2::1"), 401, "INVALID_CREDENTIALS")
    # Counted by the whole address: the neighbour has a budget of its own.
    assert await anonymous(api, "2001:db8:1:2::2") == 401
    assert_envelope(await failed_login(api, "2001:db8:1:2::2"), 401, "INVALID_CREDENTIALS")
