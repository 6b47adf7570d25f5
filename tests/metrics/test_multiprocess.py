"""`gatehouse serve --workers 2` (PostgreSQL: SQLite runs one worker): whichever worker
answers a scrape, the counts are every worker's, and exactly what was sent."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gatehouse.kit import metrics
from gatehouse.runtime import Runtime
from tests.metrics.files import counted_by_pid, plant_counter
from tests.processes import ServerProcess, serve, stop
from tests.redis_server import free_port
from tests.scrape import Scrape

REQUESTS = 200
ROUTE = {"route": "/api/v1/users/{user_id}", "method": "GET", "status_class": "4xx"}
COUNTER = "gatehouse_http_requests_total"


@pytest.fixture
async def server(
    runtime: Runtime, signing_key_pem: str, tmp_path: Path
) -> AsyncIterator[tuple[ServerProcess, Path]]:
    port = free_port()
    run_directory = tmp_path / "metrics" / f"serve-{port}"
    # What a previous run on this port left: it must not add to this run's counts.
    plant_counter(run_directory, "gatehouse_http_requests", COUNTER, ROUTE,
                  metrics.HTTP_REQUESTS._documentation, 1000.0)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env |= {
        "GATEHOUSE_ENV": "test",
        "GATEHOUSE_DATA_DIR": str(tmp_path / "data"),
        "GATEHOUSE_DATABASE_URL": runtime.settings.database_url,
        "GATEHOUSE_JWT_PRIVATE_KEY": signing_key_pem,
        "GATEHOUSE_BCRYPT_ROUNDS": "4",
        "GATEHOUSE_LOG_FORMAT": "json",
        "GATEHOUSE_RATE_LIMIT_ENABLED": "false",
        "GATEHOUSE_WORKERS": "2",
        "GATEHOUSE_METRICS_DIR": str(tmp_path / "metrics"),
    }
    started = await serve(env, tmp_path / "serve.log", port)
    try:
        yield started, run_directory
    finally:
        await stop(started)


async def fresh_connection_get(url: str) -> httpx.Response:
    # A client per request: a new connection each time, so the kernel hands each one
    # to whichever worker accepts it.
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(url)


@pytest.mark.parametrize("backend", ["postgres"])
async def test_every_workers_requests_are_in_every_scrape(
    server: tuple[ServerProcess, Path],
) -> None:
    process, run_directory = server
    statuses: list[int] = []
    for start in range(0, REQUESTS, 20):  # 20 at a time: both workers get some
        batch = [
            fresh_connection_get(f"{process.url}/api/v1/users/{uuid.uuid4()}")
            for _ in range(start, min(start + 20, REQUESTS))
        ]
        statuses += [r.status_code for r in await asyncio.gather(*batch)]
    assert statuses == [401] * REQUESTS

    # Two worker processes answered, each counting its own in its own file.
    by_pid = counted_by_pid(run_directory, COUNTER, **ROUTE)
    assert len(by_pid) == 2, by_pid
    assert sum(by_pid.values()) == REQUESTS
    assert process.proc.pid not in by_pid  # the supervisor serves nothing

    for _ in range(10):
        response = await fresh_connection_get(f"{process.url}/metrics")
        assert response.status_code == 200
        scraped = Scrape.parse(response.text)
        assert scraped.value(COUNTER, **ROUTE) == REQUESTS
        assert scraped.value("gatehouse_http_requests_in_flight") == 1  # this scrape
        # The ids were never labels; the per-process families are not summed.
        assert "pid" not in {label for s in scraped.samples for label in s.labels}
        assert not scraped.has("process_cpu_seconds_total")
