"""RL-02/RL-04 across processes: two `gatehouse serve` processes on one Redis prefix and
one database (SQLite file or PostgreSQL) share one budget per IP and per user."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gatehouse.runtime import Runtime
from tests.factories import Api
from tests.processes import ServerProcess, serve, stop

GATEHOUSE = str(Path(sys.executable).with_name("gatehouse"))
ROOT = Path(__file__).resolve().parents[2]
USERS = "/api/v1/users"


@pytest.fixture
async def servers(
    runtime: Runtime, redis_url: str, redis_prefix: str, signing_key_pem: str, tmp_path: Path
) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env |= {
        "GATEHOUSE_ENV": "test",
        "GATEHOUSE_DATA_DIR": str(tmp_path / "data"),
        "GATEHOUSE_DATABASE_URL": runtime.settings.database_url,
        "GATEHOUSE_JWT_PRIVATE_KEY": signing_key_pem,
        "GATEHOUSE_BCRYPT_ROUNDS": "4",
        "GATEHOUSE_LOG_FORMAT": "json",
        "GATEHOUSE_REDIS_URL": redis_url,
        "GATEHOUSE_REDIS_PREFIX": redis_prefix,
        "GATEHOUSE_RATE_LIMIT_ENABLED": "true",
        "GATEHOUSE_RATE_LIMIT_ANONYMOUS": "6/minute",
        "GATEHOUSE_RATE_LIMIT_AUTHENTICATED": "8/minute",
    }
    # One after the other: the first one may create the first admin.
    first = await serve(env, tmp_path / "a.log")
    try:
        second = await serve(env, tmp_path / "b.log")
        try:
            yield first, second
        finally:
            await stop(second)
    finally:
        await stop(first)


def _remaining(response: httpx.Response) -> int:
    return int(response.headers["X-RateLimit-Remaining"])


async def test_two_processes_on_one_redis_share_one_budget(
    servers: tuple[ServerProcess, ServerProcess], api: Api
) -> None:
    a, b = servers
    async with httpx.AsyncClient(timeout=10) as http:
        # Anonymous, one IP: alternate between the processes; one count between them.
        seen = [await http.get(f"{(a, b)[i % 2].url}{USERS}") for i in range(6)]
        assert [r.status_code for r in seen] == [401] * 6
        assert [_remaining(r) for r in seen] == [5, 4, 3, 2, 1, 0]
        for server in (a, b):
            over = await http.get(f"{server.url}{USERS}")
            assert over.status_code == 429
            assert over.headers["X-RateLimit-Remaining"] == "0"

        # One user, logged in through A, spends one budget through both.
        alice = await api.create_user()
        login = await http.post(
            f"{a.url}/api/v1/auth/token",
            json={"username": alice.email, "password": alice.password},
        )
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        seen = [await http.get(f"{(b, a)[i % 2].url}{USERS}/me", headers=auth) for i in range(8)]
        assert [r.status_code for r in seen] == [200] * 8
        assert [_remaining(r) for r in seen] == list(range(7, -1, -1))
        assert (await http.get(f"{a.url}{USERS}/me", headers=auth)).status_code == 429
        assert (await http.get(f"{b.url}{USERS}/me", headers=auth)).status_code == 429

        # 40 concurrent requests split over both processes, for a fresh user with 8:
        bob = await api.create_user()
        login = await http.post(
            f"{b.url}/api/v1/auth/token", json={"username": bob.email, "password": bob.password}
        )
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        burst = await asyncio.gather(
            *(http.get(f"{(a, b)[i % 2].url}{USERS}/me", headers=auth) for i in range(40))
        )
        statuses = [r.status_code for r in burst]
        assert statuses.count(200) == 8
        assert statuses.count(429) == 32
