"""Two real `gatehouse serve` processes sharing one database and one Redis prefix:
a write through one is seen by the other on its very next request."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import Account, Api
from tests.processes import serve, stop

ROOT = Path(__file__).resolve().parents[2]
GATEHOUSE = str(Path(sys.executable).parent / "gatehouse")
ME = "/api/v1/users/me"
STARTUP_LIMIT = 60.0


@pytest.fixture
def settings_overrides(redis_url: str, redis_prefix: str) -> dict[str, Any]:
    return {"redis_url": redis_url, "redis_prefix": redis_prefix}


@pytest.fixture
async def servers(
    api: Api, signing_key_pem: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    settings = api.runtime.settings
    redis = settings.redis
    assert redis.redis_url is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env |= {
        "GATEHOUSE_ENV": "test",
        "GATEHOUSE_DATA_DIR": str(tmp_path / "data"),
        "GATEHOUSE_DATABASE_URL": settings.database_url,
        "GATEHOUSE_JWT_PRIVATE_KEY": signing_key_pem,
        "GATEHOUSE_REDIS_URL": redis.redis_url.get_secret_value(),
        "GATEHOUSE_REDIS_PREFIX": redis.redis_prefix,
        "GATEHOUSE_BCRYPT_ROUNDS": "4",
        "GATEHOUSE_RATE_LIMIT_ENABLED": "false",
        "GATEHOUSE_LOG_FORMAT": "json",
    }
    started = await asyncio.gather(serve(env, tmp_path / "a.log"), serve(env, tmp_path / "b.log"))
    try:
        async with (
            httpx.AsyncClient(base_url=started[0].url, timeout=10) as a,
            httpx.AsyncClient(base_url=started[1].url, timeout=10) as b,
        ):
            yield a, b
    finally:
        for server in started:
            await stop(server)


async def _login(client: httpx.AsyncClient, account: Account) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/token", json={"username": account.email, "password": account.password}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _warm(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for _ in range(3):
        assert (await client.get(ME, headers=headers)).status_code == 200


async def test_role_change_logout_and_delete_in_one_process_are_seen_by_the_other(
    api: Api, servers: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    a, b = servers
    admin = await _login(a, await api.create_user("admin"))
    victim = await api.create_user("readonly")

    # Role change through A: B's next request no longer sees a readonly user.
    token = await _login(a, victim)
    await _warm(b, token)
    assert (await b.get("/api/v1/users", headers=token)).status_code == 200
    changed = await a.patch(f"/api/v1/users/{victim.id}", json={"role": "user"}, headers=admin)
    assert changed.status_code == 200
    assert (await b.get(ME, headers=token)).status_code == 401
    token = await _login(a, victim)
    assert (await b.get("/api/v1/users", headers=token)).status_code == 403
    assert (await b.get(ME, headers=token)).json()["role"] == "user"

    # Profile edit through B: A's next read shows it.
    await _warm(a, token)
    assert (await a.get(f"/api/v1/users/{victim.id}", headers=admin)).status_code == 200
    assert (await b.patch(ME, json={"name": "Seen Everywhere"}, headers=token)).status_code == 200
    assert (await a.get(f"/api/v1/users/{victim.id}", headers=admin)).json()["name"] == (
        "Seen Everywhere"
    )

    # Logout through B: A refuses the token at once.
    await _warm(a, token)
    assert (await b.post("/api/v1/auth/logout", headers=token)).status_code == 204
    assert (await a.get(ME, headers=token)).status_code == 401

    # Delete through A: B refuses the user's other session at once.
    token = await _login(b, victim)
    await _warm(b, token)
    assert (await a.delete(f"/api/v1/users/{victim.id}", headers=admin)).status_code == 204
    assert (await b.get(ME, headers=token)).status_code == 401
    assert (await b.get(f"/api/v1/users/{victim.id}", headers=admin)).status_code == 404
