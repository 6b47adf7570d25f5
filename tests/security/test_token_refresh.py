"""TOK-11…TOK-14: refresh-token rotation, reuse detection, the refresh race, lifetimes."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
import time_machine

from gatehouse.auth.models import Session
from tests.factories import Account, Api, assert_envelope

ME = "/api/v1/users/me"
REFRESH = "/api/v1/auth/refresh"
TOKEN = "/api/v1/auth/token"

IDLE = 2 * 3600
MAX = 8 * 3600
RACERS = 20
RACE_REPETITIONS = 20


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"refresh_token_idle_seconds": IDLE, "refresh_token_max_seconds": MAX}


async def refresh(api: Api, refresh_token: str) -> httpx.Response:
    return await api.client.post(REFRESH, json={"refresh_token": refresh_token})


async def rotate(api: Api, account: Account) -> Account:
    """Refresh and keep the new pair on the account, asserting it worked."""
    response = await refresh(api, account.refresh_token)
    assert response.status_code == 200, response.text
    body = response.json()
    account.access_token, account.refresh_token = body["access_token"], body["refresh_token"]
    return account


async def second_login(api: Api, account: Account) -> Account:
    """The same user logged in again elsewhere: another session, another family."""
    return await api.login(dataclasses.replace(account))


async def session_row(api: Api, account: Account) -> Session:
    """The sessions row behind the account's current access token (its `sid`)."""
    sid = uuid.UUID(jwt.decode(account.access_token, options={"verify_signature": False})["sid"])
    async with api.runtime.db.session(write=False) as s:
        row = await s.get(Session, sid)
    assert row is not None
    return row


# TOK-11


@pytest.mark.parametrize(
    "how",
    [
        "refresh endpoint",
        "token endpoint, JSON grant",
        "token endpoint, form grant",
    ],
)
async def test_every_refresh_issues_a_new_token_and_spends_the_old_one(api: Api, how: str) -> None:
    account = await api.user()
    rt1, at1 = account.refresh_token, account.access_token
    grant = {"grant_type": "refresh_token", "refresh_token": rt1}
    if how == "refresh endpoint":
        response = await refresh(api, rt1)
    elif how == "token endpoint, JSON grant":
        response = await api.client.post(TOKEN, json=grant)
    else:
        response = await api.client.post(TOKEN, data=grant)
    assert response.status_code == 200, response.text
    rt2, at2 = response.json()["refresh_token"], response.json()["access_token"]
    assert rt2 != rt1
    assert at2 != at1
    assert (await api.client.get(ME, headers={"Authorization": f"Bearer {at2}"})).status_code == 200
    assert_envelope(await refresh(api, rt1), 400, "INVALID_GRANT")


# TOK-12


async def test_replaying_a_spent_token_revokes_its_whole_family_and_nothing_else(
    api: Api,
) -> None:
    alice = await api.user()
    alice_laptop = await second_login(api, alice)
    bob = await api.user()
    rt1 = alice.refresh_token
    await rotate(api, alice)  # RT1 → RT2

    assert_envelope(await refresh(api, rt1), 400, "INVALID_GRANT")  # the replay
    assert_envelope(await refresh(api, alice.refresh_token), 400, "INVALID_GRANT")  # RT2 too
    assert_envelope(await api.client.get(ME, headers=alice.headers), 401, "UNAUTHORIZED")
    row = await session_row(api, alice)
    assert row.revoked_at is not None
    assert row.revoked_reason == "refresh_token_reuse"

    # Alice's other session and Bob are untouched.
    for other in (alice_laptop, bob):
        assert (await api.client.get(ME, headers=other.headers)).status_code == 200
        await rotate(api, other)
        assert (await api.client.get(ME, headers=other.headers)).status_code == 200


# TOK-13


async def test_parallel_refreshes_with_one_token_have_exactly_one_winner(
    api: Api, backend: str
) -> None:
    """20 clients race one refresh token: 1 x 200, 19 x 400, every repetition.

    Zero tolerance (no grace window): losing the race counts as reuse, so the family
    ends and the winner's new token is refused too. Clients must serialise refreshes.
    On SQLite writes serialise anyway; PostgreSQL runs them at READ COMMITTED.
    """
    account = await api.create_user()
    outcomes: Counter[str] = Counter()
    for _ in range(RACE_REPETITIONS):
        await api.login(account)
        responses = await asyncio.gather(
            *(refresh(api, account.refresh_token) for _ in range(RACERS))
        )
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {200: 1, 400: RACERS - 1}, statuses
        for response in responses:
            if response.status_code == 400:
                assert_envelope(response, 400, "INVALID_GRANT")
        winner = next(r for r in responses if r.status_code == 200).json()
        assert_envelope(await refresh(api, winner["refresh_token"]), 400, "INVALID_GRANT")
        outcomes.update(f"{r.status_code}" for r in responses)
    print(
        f"\nTOK-13 ({backend}): {RACE_REPETITIONS} races x {RACERS} refreshes → "
        f"{outcomes['200']} x 200, {outcomes['400']} x 400"
    )
    assert outcomes == {"200": RACE_REPETITIONS, "400": RACE_REPETITIONS * (RACERS - 1)}


# TOK-14


async def test_refresh_fails_once_the_session_was_idle_too_long(api: Api) -> None:
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        account = await api.user()
        clock.shift(IDLE - 60)
        await rotate(api, account)  # in time: the idle limit starts again from here
        clock.shift(IDLE - 60)
        await rotate(api, account)
        spent_in_time = account.refresh_token
        clock.shift(IDLE + 1)
        response = await refresh(api, spent_in_time)
    assert_envelope(response, 400, "INVALID_GRANT")


async def test_refresh_fails_after_the_absolute_limit_even_when_rotated_hourly(
    api: Api,
) -> None:
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        account = await api.user()
        for _ in range(MAX // 3600 - 1):
            clock.shift(3600)
            await rotate(api, account)
        clock.shift(3600)  # the absolute limit is reached
        response = await refresh(api, account.refresh_token)
        assert_envelope(response, 400, "INVALID_GRANT")
        # Expiry is not reuse: logging in again starts a fresh session.
        fresh = await api.login(account)
        await rotate(api, fresh)
