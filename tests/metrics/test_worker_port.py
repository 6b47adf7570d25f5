"""`gatehouse worker --metrics-port` and `gatehouse beat --metrics-port` on the real
RabbitMQ and PostgreSQL: a job run in a prefork pool process shows on the worker's
port, and beat's port says when it last sent the sweep."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatehouse.config import Settings
from gatehouse.kit.context import request_id_var
from gatehouse.worker.celery_app import CeleryJobQueue
from tests import rabbitmq
from tests.conftest import make_settings
from tests.metrics.files import counted_by_pid
from tests.redis_server import free_port
from tests.scrape import Scrape
from tests.worker.support import GATEHOUSE, Worker, Workers, delete_topology, env_for, wait_until

JOBS = 5
SWEEP = "maintenance.sweep"


class Deployment:
    def __init__(self, values: dict[str, Any], settings: Settings, workers: Workers) -> None:
        self.values = values
        self.settings = settings
        self.workers = workers


@pytest.fixture
async def deployment(
    postgres_url: str, rabbitmq_url: str, signing_key_pem: str, tmp_path: Path
) -> AsyncIterator[Deployment]:
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": tmp_path / "data",
        "database_url": postgres_url,
        "bcrypt_rounds": 4,
        "jwt_private_key": signing_key_pem,
        "rate_limit_enabled": False,
        "broker_url": rabbitmq_url,
        "outbox_sweep_seconds": 1.0,
        "log_level": "INFO",
        "log_format": "json",
        **rabbitmq.unique_names(),
    }
    given = {k: v for k, v in values.items() if k not in {"database_url", "data_dir"}}
    settings = make_settings(postgres_url, tmp_path / "data", signing_key_pem, **given)
    workers = Workers(env_for(values), tmp_path)
    try:
        yield Deployment(values, settings, workers)
    finally:
        await asyncio.to_thread(workers.stop_all)
        await asyncio.to_thread(
            delete_topology, rabbitmq_url, values["task_queue_prefix"], values["events_exchange"]
        )


def scrape_port(port: int) -> Scrape | None:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    except httpx.TransportError:
        return None
    assert response.status_code == 200
    return Scrape.parse(response.text)


def job_runs(worker: Worker, request_id: str) -> list[dict[str, Any]]:
    return worker.events("worker.job_done", request_id=request_id)


async def test_a_job_run_in_a_pool_process_shows_on_the_workers_port(
    deployment: Deployment,
) -> None:
    port = free_port()
    worker = deployment.workers.start("--concurrency", "2", "--metrics-port", str(port))
    await deployment.workers.ready(worker)
    idle = await wait_until(lambda: scrape_port(port), what="the worker's metrics port")
    assert idle.value("gatehouse_tasks_total") == 0
    assert idle.value("gatehouse_build_info", database="postgresql") == 1

    jobs = CeleryJobQueue(deployment.settings)
    request_id = f"metrics-{uuid.uuid4().hex[:10]}"
    token = request_id_var.set(request_id)
    try:
        for _ in range(JOBS):
            jobs.enqueue(SWEEP, round=uuid.uuid4().hex)  # distinct, so none is merged
    finally:
        request_id_var.reset(token)
    await jobs.drain(10)
    await jobs.close()
    await wait_until(lambda: len(job_runs(worker, request_id)) >= JOBS, what="the jobs done")

    # They ran in the pool's processes, forked from the worker, not in the worker itself.
    ran_in = {r["pid"] for r in worker.events("worker.job_started", request_id=request_id)}
    assert ran_in
    assert worker.proc.pid not in ran_in
    scraped = scrape_port(port)
    assert scraped is not None
    assert scraped.value("gatehouse_tasks_total", task=SWEEP, outcome="success") == JOBS
    assert scraped.value("gatehouse_task_duration_seconds_count", task=SWEEP) == JOBS
    # The pool processes' database pools are in the sums.
    assert scraped.value("gatehouse_db_pool_size") > 0
    # Each pool process wrote its own file in the worker's per-run directory.
    run_directory = Path(deployment.values["data_dir"]) / "metrics" / f"worker-{port}"
    by_pid = counted_by_pid(run_directory, "gatehouse_tasks_total", task=SWEEP)
    assert set(by_pid) == ran_in
    assert sum(by_pid.values()) == JOBS


async def test_beat_says_when_it_last_sent_each_periodic_job(deployment: Deployment) -> None:
    port = free_port()
    started = time.time()
    beat = deployment.workers.start("--metrics-port", str(port), program=[GATEHOUSE, "beat"])

    def sent() -> Scrape | None:
        assert beat.alive, beat.output()
        scraped = scrape_port(port)
        if scraped is None or not scraped.has("gatehouse_beat_last_run_timestamp_seconds"):
            return None
        return scraped

    scraped = await wait_until(sent, what="beat's first sweep on its metrics port")
    last_run = scraped.value("gatehouse_beat_last_run_timestamp_seconds", task=SWEEP)
    assert started <= last_run <= time.time()
    assert scraped.value("gatehouse_build_info", database="postgresql") == 1
    # Beat is one process: its port has the process families too.
    assert scraped.has("process_start_time_seconds")


@pytest.mark.parametrize("command", ["worker", "beat"])
def test_a_metrics_port_already_taken_stops_the_command_with_a_clear_error(
    command: str, tmp_path: Path
) -> None:
    env = env_for(
        {
            "env": "test",
            "data_dir": tmp_path / "data",
            # Never reached: the port is checked first.
            "broker_url": "amqp://guest:guest@127.0.0.1:1/",
            "log_format": "json",
        }
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [GATEHOUSE, command, "--metrics-port", str(port)],
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 1, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    [refused] = [r for r in lines if r["event"] == f"{command}.metrics_port_unavailable"]
    assert refused["address"] == f"127.0.0.1:{port}"
    assert refused["level"] == "error"
