"""The Celery configuration itself (EVT-08 and the settings behind EVT-06/07), the API's
job queue client with the broker down, and the commands that need a broker."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery.utils.time import get_exponential_backoff_interval  # type: ignore[import-untyped]
from pydantic import ValidationError

from gatehouse.config import Settings, WorkerSettings
from gatehouse.kit.context import request_id_var
from gatehouse.worker.celery_app import (
    CONSUMER_TIMEOUT_SECONDS,
    MAX_COUNTDOWN_SECONDS,
    CeleryJobQueue,
    check_limits,
    create_celery,
)
from gatehouse.worker.registry import all_jobs
from tests.conftest import make_settings
from tests.logs import LogCapture
from tests.redis_server import free_port
from tests.worker.support import GATEHOUSE, ROOT

# Nothing listens there: a publish that tried to connect would fail differently.
NO_BROKER = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
MOST = {  # the largest values the settings accept
    "task_soft_time_limit_seconds": 900,
    "task_time_limit_seconds": 1200,
    "task_retry_backoff_max_seconds": 900,
    "task_max_retries": 20,
}


def _settings(tmp_path: Path, signing_key_pem: str, **overrides: Any) -> Settings:
    return make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/g.db",
        tmp_path,
        signing_key_pem,
        broker_url=NO_BROKER,
        task_queue_prefix="gh-config",
        **overrides,
    )


@pytest.mark.parametrize("overrides", [{}, MOST], ids=["defaults", "largest"])
def test_evt08_time_limits_and_retry_waits_stay_well_below_the_consumer_timeout(
    tmp_path: Path, signing_key_pem: str, overrides: dict[str, Any]
) -> None:
    app = create_celery(_settings(tmp_path, signing_key_pem, **overrides))
    conf = app.conf
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.task_time_limit <= CONSUMER_TIMEOUT_SECONDS * 2 // 3
    for name in all_jobs():
        task = app.tasks[name]
        assert task.retry_backoff_max <= MAX_COUNTDOWN_SECONDS == 900
        assert (task.autoretry_for, task.retry_backoff, task.retry_jitter) == (
            (Exception,),
            True,
            True,
        )
        # The longest wait Celery computes for any retry.
        worst = get_exponential_backoff_interval(
            factor=1, retries=task.max_retries, maximum=task.retry_backoff_max, full_jitter=False
        )
        assert worst <= MAX_COUNTDOWN_SECONDS


def test_evt08_no_setting_can_exceed_the_limits() -> None:
    check_limits(WorkerSettings(**MOST))  # type: ignore[arg-type]
    for name, value in MOST.items():
        with pytest.raises(ValidationError):
            WorkerSettings(**{name: value + 1})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "when",
    [
        {"countdown": MAX_COUNTDOWN_SECONDS + 1},
        {"countdown": 24 * 3600},
        {"eta": MAX_COUNTDOWN_SECONDS + 60},  # seconds from when the test runs
    ],
    ids=["countdown-15min+1s", "countdown-1day", "eta-16min"],
)
def test_evt08_no_task_can_be_sent_to_wait_more_than_15_minutes(
    tmp_path: Path, signing_key_pem: str, when: dict[str, Any]
) -> None:
    if "eta" in when:
        when = {"eta": datetime.now(UTC) + timedelta(seconds=when["eta"])}
    app = create_celery(_settings(tmp_path, signing_key_pem))
    with pytest.raises(ValueError, match="900"):
        app.send_task("maintenance.sweep", **when)
    with pytest.raises(ValueError, match="900"):
        app.tasks["maintenance.sweep"].apply_async(**when)
    # Up to the cap is fine (built, not sent).
    app.amqp.as_task_v2("id", "maintenance.sweep", countdown=MAX_COUNTDOWN_SECONDS)


def test_acks_late_reject_on_worker_lost_and_dead_lettering_are_on(
    tmp_path: Path, signing_key_pem: str
) -> None:
    settings = _settings(tmp_path, signing_key_pem, task_delivery_limit=7)
    app = create_celery(settings)
    task = app.tasks["emails.send"]
    assert (task.acks_late, task.reject_on_worker_lost, task.acks_on_failure_or_timeout) == (
        True,
        True,
        False,
    )
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is True
    assert app.conf.accept_content == ["json"]
    queues = {q.name: q for q in app.conf.task_queues}
    assert set(queues) == {"gh-config.tasks", "gh-config.webhooks"}
    for queue in queues.values():
        assert queue.queue_arguments == {
            "x-queue-type": "quorum",
            "x-delivery-limit": 7,
            "x-dead-letter-exchange": "gh-config.dlx",
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
    assert app.amqp.router.route({}, "webhooks.deliver")["queue"].name == "gh-config.webhooks"
    assert app.amqp.router.route({}, "emails.send")["queue"].name == "gh-config.tasks"


async def test_enqueue_with_the_broker_down_neither_blocks_nor_raises(
    tmp_path: Path, signing_key_pem: str, json_logs: LogCapture
) -> None:
    queue = CeleryJobQueue(_settings(tmp_path, signing_key_pem))
    token = request_id_var.set("req-broker-down")
    try:
        queue.enqueue("maintenance.sweep")  # returns at once: sent from a thread
        queue.enqueue("no.such.job")
    finally:
        request_id_var.reset(token)
    assert await queue.drain(30)
    await queue.close()
    records = json_logs.records()
    [failed] = [r for r in records if r["event"] == "worker.enqueue_failed"]
    assert (failed["job"], failed["request_id"], failed["level"]) == (
        "maintenance.sweep",
        "req-broker-down",
        "warning",
    )
    assert "Connection refused" in failed["error"]
    assert [r["job"] for r in records if r["event"] == "worker.unknown_job"] == ["no.such.job"]


async def test_broker_commands_refuse_to_start_without_a_broker(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env |= {"GATEHOUSE_DATA_DIR": str(tmp_path), "COLUMNS": "200"}

    async def run(command: str) -> tuple[int | None, str]:
        proc = await asyncio.create_subprocess_exec(
            GATEHOUSE, command, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode, out.decode()

    commands = ["worker", "beat", "dead-letters"]
    for command, (code, out) in zip(
        commands, await asyncio.gather(*map(run, commands)), strict=True
    ):
        assert code == 2, out
        assert f"`gatehouse {command}` needs GATEHOUSE_BROKER_URL" in out
        assert "Traceback" not in out
