"""Lockout as a weapon (issue "Hardening", item 2), AUTH-08.

One wrong password a second, rotated over 120 addresses (30 an hour each, under every
per-address budget), keeps the account delay armed around the clock. The owner must
still get in: from an address or a browser (the `gatehouse_device` cookie) that logged
in before; from anywhere else they are mailed rather than refused silently, and a
password reset lifts the delay. The attacker's answers never change.

Every test runs on the in-process store with SQLite, and on Redis with SQLite and with
PostgreSQL (tests/security/lockout/conftest.py); time is the application clock, moved by
hand (one attack step is one fake second).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import time_machine
from fastapi import FastAPI
from sqlalchemy import select

from gatehouse.audit.models import AuditEvent
from gatehouse.emails.models import EmailMessage
from gatehouse.runtime import Runtime
from tests.factories import Account, Api, assert_envelope

TOKEN = "/api/v1/auth/token"
WRONG = "Not-The-Password-1"
NEW_PASSWORD = "A-brand-new-passphrase-42"
OWNER = "198.51.100.20"
# 120 attacking addresses: one guess a second visits each every two minutes.
ATTACKERS = [f"203.0.{113 + i // 100}.{i % 100 + 1}" for i in range(120)]
ATTACK_SECONDS = 180
OWNER_EVERY = 30  # the owner tries once every 30 s: 6 tries in the 3 minutes


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The attacker's client (and the API's): its own cookie jar."""
    async with _client(app) as c:
        yield c


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The owner's browser: keeps the cookies it is given."""
    async with _client(app) as c:
        yield c


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    # The owner's alert is deduplicated per clock hour: an attack of a few fake minutes
    # must not straddle the top of an hour, or it is rightly two alerts.
    now = datetime.now(UTC)
    into_hour = now.minute * 60 + now.second
    if into_hour > 3600 - 600:
        now += timedelta(seconds=3600 - into_hour + 1)
    with time_machine.travel(now, tick=False) as traveller:
        yield traveller


async def login(client: httpx.AsyncClient, username: str, password: str, ip: str) -> httpx.Response:
    return await client.post(
        TOKEN,
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": ip},
    )


def api_client(client: httpx.AsyncClient, account: Account, ip: str) -> Callable[[], Any]:
    """The owner as an API client: no cookies kept, only the address counts."""

    async def attempt() -> httpx.Response:
        client.cookies.clear()
        return await login(client, account.email, account.password, ip)

    return attempt


async def attack(
    api: Api,
    clock: time_machine.Traveller,
    account: Account,
    owner: Callable[[int], Awaitable[httpx.Response]] | None = None,
    seconds: int = ATTACK_SECONDS,
) -> Counter[int]:
    """The attack of item 2, with the owner's right password every OWNER_EVERY seconds;
    returns the owner's status codes."""
    outcomes: Counter[int] = Counter()
    api.client.cookies.clear()
    for second in range(seconds):
        clock.shift(1)
        guess = await login(api.client, account.email, WRONG, ATTACKERS[second % len(ATTACKERS)])
        assert_envelope(guess, 401, "INVALID_CREDENTIALS")
        if owner is not None and second % OWNER_EVERY == OWNER_EVERY - 1:
            response = await owner(second)
            outcomes[response.status_code] += 1
    return outcomes


def comparable(response: httpx.Response) -> tuple[int, dict[str, Any], set[str]]:
    error = dict(response.json()["error"])
    del error["request_id"], error["timestamp"]
    return response.status_code, error, set(response.headers)


async def alerts(runtime: Runtime, account: Account) -> list[EmailMessage]:
    async with runtime.db.session() as session:
        rows = await session.scalars(
            select(EmailMessage).where(
                EmailMessage.user_id == account.id,
                EmailMessage.kind == "login_under_attack",
            )
        )
        return list(rows)


async def login_failures(runtime: Runtime, account: Account) -> list[str | None]:
    async with runtime.db.session() as session:
        rows = await session.scalars(
            select(AuditEvent.reason).where(
                AuditEvent.action == "auth.login",
                AuditEvent.outcome == "failure",
                AuditEvent.target_id == str(account.id),
            )
        )
        return list(rows)


# The attack, and the owner at a known address or with a known browser


async def test_the_owner_gets_in_from_a_known_address_through_a_rotating_attack(
    api: Api, clock: time_machine.Traveller
) -> None:
    """FIGURE: the owner's 6 tries in 3 minutes were 6 x 401, 0 x 200."""
    account = await api.create_user()
    owner = api_client(api.client, account, OWNER)
    assert (await owner()).status_code == 200  # the address becomes known

    outcomes = await attack(api, clock, account, lambda _: owner())

    assert outcomes == {200: 6}


async def test_the_owner_gets_in_from_a_known_browser_on_a_new_address(
    api: Api, browser: httpx.AsyncClient, clock: time_machine.Traveller
) -> None:
    account = await api.create_user()
    first = await login(browser, account.email, account.password, OWNER)
    assert first.status_code == 200
    cookie = first.headers["set-cookie"]
    assert cookie.startswith("gatehouse_device=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/api/v1/auth/token" in cookie
    assert f"Max-Age={30 * 86400}" in cookie

    async def roaming(second: int) -> httpx.Response:
        # Every try from an address the account has never seen: only the cookie is known.
        return await login(browser, account.email, account.password, f"100.64.0.{second}")

    assert await attack(api, clock, account, roaming) == {200: 6}


async def test_an_api_client_at_an_ipv6_address_is_known_by_its_slash_64(
    api: Api, clock: time_machine.Traveller
) -> None:
    account = await api.create_user()
    assert (await api_client(api.client, account, "2001:db8:1:2::10")()).status_code == 200
    # The same network, another interface address (privacy addresses rotate).
    owner = api_client(api.client, account, "2001:db8:1:2:a:b:c:d")
    assert await attack(api, clock, account, lambda _: owner()) == {200: 6}


# From an unknown source: the same answer as a wrong password, and a mail to the owner


async def test_a_right_password_refused_by_the_delay_mails_the_owner_once(
    api: Api, runtime: Runtime, clock: time_machine.Traveller
) -> None:
    account = await api.create_user()
    stranger = api_client(api.client, account, "192.0.2.77")

    outcomes = await attack(api, clock, account, lambda _: stranger())

    assert outcomes == {401: 6}
    (mail,) = await alerts(runtime, account)  # 6 refusals, one mail (per hour)
    assert mail.to_address == account.email
    assert "forgot-password" in mail.body
    failures = await login_failures(runtime, account)
    assert failures.count("delayed_right_password") == 6

    # An hour later it is news again.
    clock.shift(3600)
    await attack(api, clock, account, lambda _: stranger(), seconds=30)
    assert len(await alerts(runtime, account)) == 2


async def test_the_refusal_gives_the_guesser_no_oracle(
    api: Api, runtime: Runtime, clock: time_machine.Traveller
) -> None:
    account = await api.create_user()
    await attack(api, clock, account, seconds=30)
    ip = ATTACKERS[0]
    wrong = await login(api.client, account.email, WRONG, ip)
    right = await login(api.client, account.email, account.password, ip)
    unknown = await login(api.client, "nobody-here@example.com", WRONG, ip)
    assert comparable(right) == comparable(wrong) == comparable(unknown)
    assert "set-cookie" not in right.headers
    assert len(await alerts(runtime, account)) == 1


async def test_no_mail_without_the_right_password(
    api: Api, runtime: Runtime, clock: time_machine.Traveller
) -> None:
    account = await api.create_user()
    await attack(api, clock, account)
    assert await alerts(runtime, account) == []


async def test_a_forged_device_cookie_is_not_known(api: Api, clock: time_machine.Traveller) -> None:
    account = await api.create_user()
    assert (await api_client(api.client, account, OWNER)()).status_code == 200

    async def forged(_: int) -> httpx.Response:
        api.client.cookies.set("gatehouse_device", "A" * 43, path="/api/v1/auth/token")
        response = await login(api.client, account.email, account.password, "192.0.2.99")
        api.client.cookies.clear()
        return response

    assert await attack(api, clock, account, forged) == {401: 6}


# A reset lifts the delay


async def test_a_password_reset_clears_the_delay(api: Api, clock: time_machine.Traveller) -> None:
    account = await api.create_user()
    stranger = "192.0.2.77"
    await attack(api, clock, account, seconds=60)
    assert (await login(api.client, account.email, account.password, stranger)).status_code == 401

    await api.reset_password(account, NEW_PASSWORD)

    # An unknown device and address, the new password, while the attack goes on.
    assert (await login(api.client, account.email, NEW_PASSWORD, stranger)).status_code == 200


async def test_a_reset_also_lifts_the_locks_on_the_owners_address(api: Api) -> None:
    account = await api.create_user()
    for _ in range(5):
        await login(api.client, account.email, WRONG, OWNER)  # the owner mistyped: locked
    await api.reset_password(account, NEW_PASSWORD)
    assert (await login(api.client, account.email, NEW_PASSWORD, OWNER)).status_code == 200


# What is remembered, and for how long


async def test_a_known_address_is_forgotten_after_the_known_source_days(
    api: Api, clock: time_machine.Traveller
) -> None:
    account = await api.create_user()
    owner = api_client(api.client, account, OWNER)
    assert (await owner()).status_code == 200
    clock.shift(timedelta(days=30))
    assert await attack(api, clock, account, lambda _: owner(), seconds=60) == {401: 2}


async def test_at_most_twenty_sources_are_remembered_per_account(
    api: Api, clock: time_machine.Traveller
) -> None:
    account = await api.create_user()
    addresses = [f"100.64.1.{i}" for i in range(1, 22)]  # 21 addresses, 21 devices
    for address in addresses:
        clock.shift(1)
        assert (await api_client(api.client, account, address)()).status_code == 200
    # 42 sources seen; the 20 most recent are kept: the last 10 addresses (and devices).
    await attack(api, clock, account, seconds=30)
    assert (await api_client(api.client, account, addresses[-10])()).status_code == 200
    await attack(api, clock, account, seconds=30)
    assert (await api_client(api.client, account, addresses[0])()).status_code == 401
