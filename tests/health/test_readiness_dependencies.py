"""`/health/ready` with Redis and a broker configured: a redis-server and a RabbitMQ node
of this module's own are killed, paused and brought back (the machine's shared ones are
never touched), and the probe says what an operator and a load balancer need to know."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import rabbitmq_node
from tests.events.consumer import until
from tests.factories import Api
from tests.health.test_readiness import READY, assert_check
from tests.rabbitmq_node import DedicatedRabbitMQ
from tests.redis_server import DedicatedRedis
from tests.services import skip_suite


@pytest.fixture(scope="module")
def broker_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DedicatedRabbitMQ]:
    """One node for the module: starting one takes seconds."""
    if not rabbitmq_node.installed():
        skip_suite("RabbitMQ node", "rabbitmq-server is not installed")
    node = DedicatedRabbitMQ(tmp_path_factory.mktemp("rabbitmq"))
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def broker(broker_node: DedicatedRabbitMQ) -> DedicatedRabbitMQ:
    """The module's node, running (a test before this one may have killed or paused it)."""
    broker_node.resume_if_paused()
    if not broker_node.accepts():
        broker_node.start()
    return broker_node


@pytest.fixture
def settings_overrides(
    request: pytest.FixtureRequest, redis_server: DedicatedRedis, broker: DedicatedRabbitMQ
) -> dict[str, Any]:
    extra: dict[str, Any] = getattr(request, "param", {})
    return {
        "redis_url": redis_server.url,
        "redis_timeout_seconds": 0.2,
        "broker_url": broker.url,
        **extra,
    }


async def ready(client: httpx.AsyncClient, status: int, overall: str) -> dict[str, Any]:
    response = await client.get(READY)
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == overall, body
    return body


async def still_serves(api: Api) -> None:
    """What the instance is kept in rotation for: logins and authenticated calls."""
    account = await api.user()
    me = await api.client.get("/api/v1/users/me", headers=account.headers)
    assert me.status_code == 200, me.text


async def test_every_configured_dependency_is_checked(client: httpx.AsyncClient) -> None:
    body = await ready(client, 200, "ok")
    assert set(body["checks"]) == {"database", "redis", "broker"}
    assert_check(body, "database", "ok", required=True)
    assert_check(body, "redis", "ok", required=False)
    assert_check(body, "broker", "ok", required=False)


async def test_redis_down_degrades_the_instance_but_keeps_it_in_rotation(
    api: Api, redis_server: DedicatedRedis
) -> None:
    await ready(api.client, 200, "ok")

    redis_server.kill()
    body = await ready(api.client, 200, "degraded")
    assert_check(body, "redis", "unavailable", required=False)
    assert_check(body, "database", "ok", required=True)
    assert_check(body, "broker", "ok", required=False)
    # The cache is skipped and the limits count in memory: the instance serves.
    await still_serves(api)

    redis_server.start()
    await ready(api.client, 200, "ok")


@pytest.mark.parametrize(
    "settings_overrides",
    [{"rate_limit_enabled": True, "rate_limit_fail_closed": True}],
    indirect=True,
)
async def test_redis_is_required_when_the_rate_limits_fail_closed(
    api: Api, redis_server: DedicatedRedis
) -> None:
    body = await ready(api.client, 200, "ok")
    assert_check(body, "redis", "ok", required=True)

    redis_server.kill()
    body = await ready(api.client, 503, "unavailable")
    assert_check(body, "redis", "unavailable", required=True)
    # What the instance would do with traffic: refuse it, as it said.
    refused = await api.client.get("/api/v1/users/me")
    assert refused.status_code == 503


async def test_a_hung_redis_is_reported_not_waited_for(
    client: httpx.AsyncClient, redis_server: DedicatedRedis
) -> None:
    redis_server.pause()
    try:
        body = await ready(client, 200, "degraded")
    finally:
        redis_server.resume()
    assert_check(body, "redis", "unavailable", required=False)
    await ready(client, 200, "ok")


# The broker check does not depend on the database kind: one backend is enough for the
# tests that have to restart the node.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_broker_down_degrades_the_instance_and_it_reconnects_when_back(
    api: Api, broker: DedicatedRabbitMQ
) -> None:
    await ready(api.client, 200, "ok")

    broker.kill()
    body = await ready(api.client, 200, "degraded")
    assert_check(body, "broker", "unavailable", required=False)
    assert_check(body, "database", "ok", required=True)
    assert_check(body, "redis", "ok", required=False)
    # Requests never wait for the broker: what they cause waits in the database.
    await still_serves(api)

    broker.start()

    # The node takes connections a moment before AMQP answers on them (longer on a
    # loaded machine): the next probes reconnect once it does.
    async def all_ok() -> bool:
        response = await api.client.get(READY)
        return response.status_code == 200 and response.json()["status"] == "ok"

    await until(all_ok, what="the probe to say ok after the broker's restart")


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_hung_broker_is_reported_not_waited_for(
    client: httpx.AsyncClient, broker: DedicatedRabbitMQ
) -> None:
    await ready(client, 200, "ok")  # the probe's connection is open when the broker hangs
    broker.pause()
    try:
        # Not a measure of speed: the bound only makes a regression fail instead of hang.
        async with asyncio.timeout(60):
            response = await client.get(READY)
    finally:
        broker.resume()
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert_check(response.json(), "broker", "unavailable", required=False)
    await ready(client, 200, "ok")
