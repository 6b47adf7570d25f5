"""`gatehouse worker` and `gatehouse beat` on the real RabbitMQ, PostgreSQL and SMTP:
jobs sent by the API's client run in a worker with their request id in its log lines,
a sign-up's mails go out, `beat` keeps the sweep coming, a countdown waits in the
broker, and a task that fails for good is dead-lettered, then replayed."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
from redis.asyncio import Redis

from gatehouse.app import create_app
from gatehouse.runtime import Runtime
from gatehouse.worker.celery_app import REQUEST_ID_HEADER, CeleryJobQueue
from gatehouse.worker.dead_letters import peek_dead_letters
from tests.worker.conftest import Stack
from tests.worker.support import GATEHOUSE, ROOT, queue_depth, table_locked, wait_until


async def test_a_job_enqueued_by_the_api_runs_in_a_worker_with_its_request_id(
    stack: Stack,
) -> None:
    await stack.workers.ensure(1)
    [email_id] = await stack.pending_emails(1)
    request_id = f"req-{uuid.uuid4().hex[:12]}"

    stack.enqueue("emails.send", request_id, email_id=str(email_id))

    await wait_until(lambda: stack.copies(email_id), what="the mail at the SMTP server")
    [started] = await wait_until(lambda: stack.workers.runs(request_id), what="the log line")
    [done] = await wait_until(
        lambda: stack.workers.runs(request_id, "worker.job_done"), what="worker.job_done"
    )
    assert started["job"] == done["job"] == "emails.send"
    assert started["level"] == "info"
    assert started["delivery_count"] == 0
    # The job's own lines carry it too (bound for the whole task).
    sent = [
        r for w in stack.workers.started for r in w.events("email.sent", email_id=str(email_id))
    ]
    assert [r["request_id"] for r in sent] == [request_id]
    row = await stack.email(email_id)
    assert (row.status, row.attempts) == ("sent", 1)


async def test_a_sign_up_through_the_api_sends_its_mails_from_the_workers(stack: Stack) -> None:
    """The API commits the user and its event, the workers do the rest."""
    await stack.workers.ensure(1)
    runtime = Runtime.create(stack.settings)
    jobs = CeleryJobQueue(stack.settings)
    runtime.use_jobs(jobs)
    address = f"sam-{uuid.uuid4().hex[:8]}@example.com"
    request_id = f"signup-{uuid.uuid4().hex[:10]}"
    transport = httpx.ASGITransport(app=create_app(runtime=runtime), client=("127.0.0.1", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.post(
                "/api/v1/auth/register",
                json={"email": address, "name": "Sam Signup", "password": "amber-Canyon-31-fox"},
                headers={"X-Request-ID": request_id},
            )
        assert response.status_code == 202, response.text
        await wait_until(lambda: len(stack.smtp.to(address)) >= 2, within=60, what="the two mails")
    finally:
        await jobs.close()
        await runtime.close()
    subjects = sorted(str(m["Subject"]).split(" ")[0] for m in stack.smtp.to(address))
    assert subjects == ["Confirm", "Welcome"]
    # One request id from the API request through every job it caused.
    ran = {r["job"] for r in stack.workers.runs(request_id)}
    assert {"events.relay", "events.dispatch", "emails.send"} <= ran


async def test_beat_sends_the_sweep_and_the_sweep_finds_a_mail_whose_kick_was_lost(
    stack: Stack,
) -> None:
    await stack.workers.ensure(1)
    [email_id] = await stack.pending_emails(1)  # no job kicked: only the sweep finds it
    beat = stack.workers.start(program=[GATEHOUSE, "beat"])
    try:
        await wait_until(lambda: stack.copies(email_id), what="the swept mail")
    finally:
        beat.stop()
    sweeps = [
        r for w in stack.workers.started for r in w.events("worker.job_started")
        if r["job"] == "maintenance.sweep"
    ]  # fmt: skip
    assert sweeps, "no maintenance.sweep ran"
    assert stack.copies(email_id) == 1


async def test_a_retry_countdown_waits_in_the_brokers_delay_queues_then_runs(
    stack: Stack,
) -> None:
    """Retries on quorum queues use Celery's native delayed delivery (RabbitMQ 3.10+):
    the message waits in `celery_delayed_*`, not unacknowledged in a worker (EVT-08)."""
    await stack.workers.ensure(1)
    request_id = f"later-{uuid.uuid4().hex[:10]}"
    # 5 s = 0b101: four seconds in the queue celery_delayed_2, then one in _0 (a wide
    # enough window to look, on a busy machine).
    await asyncio.to_thread(
        stack.jobs.app.send_task,
        "maintenance.sweep",
        countdown=5,
        headers={REQUEST_ID_HEADER: request_id},
    )
    waiting, _ = await asyncio.to_thread(queue_depth, stack.broker_url, "celery_delayed_2")
    assert waiting >= 1
    assert stack.workers.runs(request_id) == []
    # The sweep may kick other jobs (events.relay), which carry its request id along.
    await wait_until(
        lambda: [r for r in stack.workers.runs(request_id) if r["job"] == "maintenance.sweep"],
        what="the delayed job",
    )


async def test_a_task_that_fails_for_good_is_dead_lettered_and_replayed_once_fixed(
    stack: Stack,
) -> None:
    workers = stack.workers
    await workers.ensure(1)
    [email_id] = await stack.pending_emails(1)
    request_id = f"fails-{uuid.uuid4().hex[:10]}"
    # The database never answers in time: each attempt hits the soft time limit.
    async with table_locked(stack.values["database_url"], "email_messages"):
        stack.enqueue("emails.send", request_id, email_id=str(email_id))
        [letter] = await wait_until(
            lambda: [
                letter
                for letter in peek_dead_letters(stack.settings, 100)[1]
                if letter.request_id == request_id
            ],
            within=60,
            what="the task in the dead-letter queue",
        )
    runs = workers.runs(request_id)
    assert [r["retries"] for r in runs] == [0, 1]  # task_max_retries=1, then given up
    assert len({r["task_id"] for r in runs}) == 1
    assert (letter.job, letter.reason, letter.queue) == (
        "emails.send",
        "rejected",
        stack.topology.tasks,
    )
    [alert] = [
        r for w in workers.started for r in w.events("worker.task_dead_lettered")
        if r["task_id"] == letter.task_id
    ]  # fmt: skip
    assert alert["level"] == "error"
    assert "SoftTimeLimitExceeded" in alert["error"]
    # Redis keeps the error of a task that failed for good.
    redis = Redis.from_url(stack.values["redis_url"])
    try:
        stored = await redis.get(f"{stack.values['redis_prefix']}celery-task-meta-{letter.task_id}")
    finally:
        await redis.aclose()
    assert stored is not None
    assert json.loads(stored)["status"] == "FAILURE"
    assert stack.copies(email_id) == 0

    # Fixed: the operator looks, then replays with the CLI.
    shown = await _cli(stack, "dead-letters")
    assert f"emails.send  rejected in {stack.topology.tasks}" in shown
    assert request_id in shown
    replayed = await _cli(stack, "dead-letters", "--replay")
    assert f"replayed emails.send {letter.task_id}" in replayed
    row = await stack.sent(email_id)
    assert (row.status, row.attempts, stack.copies(email_id)) == ("sent", 1, 1)
    assert workers.runs(request_id)[-1]["retries"] == 0  # replayed with fresh retries


async def _cli(stack: Stack, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        GATEHOUSE, *args, cwd=ROOT, env=stack.workers.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode()
    return out.decode()
