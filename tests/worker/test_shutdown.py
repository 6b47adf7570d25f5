"""`gatehouse worker` and `gatehouse beat` stopped by SIGTERM as their systemd units stop
them (deploy/systemd: `KillMode=mixed`, the signal to the main process only).

The worker's stop is warm: it stops taking messages, lets the running task finish, and
exits 0; the job's effect is there once. (A worker killed before its task ends, when
the stop timeout runs out, leaves the message to the broker, which delivers it again:
tests/worker/test_faults.py, EVT-06.) Beat finishes the publish in progress and exits
0; its schedule lives in memory, so there is no state file to leave half-written.
"""

from __future__ import annotations

import os
import signal
import uuid

import pytest

from tests.mdwe import MDWE
from tests.worker.conftest import Stack
from tests.worker.support import (
    GATEHOUSE,
    env_for,
    queue_depth,
    table_locked,
    wait_until,
    waiting_on,
)

EXIT_LIMIT = 60.0


async def test_sigterm_lets_the_running_job_finish_then_the_worker_exits_0(stack: Stack) -> None:
    # Time limits far above the test's hold: only the stop may end this job.
    values, _ = stack.variant(task_soft_time_limit_seconds=60, task_time_limit_seconds=90)
    # Under MemoryDenyWriteExecute, as the unit runs it (its pool processes inherit it).
    worker = stack.workers.start(env=env_for(values), program=[*MDWE, GATEHOUSE, "worker"])
    await stack.workers.ready(worker)
    [email_id] = await stack.pending_emails(1)
    request_id = f"stop-{uuid.uuid4().hex[:10]}"

    async with table_locked(stack.values["database_url"], "email_messages") as lock:
        stack.enqueue("emails.send", request_id, email_id=str(email_id))
        await wait_until(lambda: worker.events("worker.job_started", request_id=request_id))
        await waiting_on(lock)  # mid-task: its claim waits in PostgreSQL
        os.kill(worker.proc.pid, signal.SIGTERM)
        # Celery has taken the signal while the job is still running...
        await wait_until(lambda: "Warm shutdown" in worker.output(), what="the warm shutdown")
        assert worker.alive
        assert not worker.events("worker.job_done", request_id=request_id)
    # ...and, the lock released, finishes it before it exits.
    await wait_until(lambda: worker.proc.poll() is not None, within=EXIT_LIMIT)
    assert worker.proc.returncode == 0, worker.output()
    assert len(worker.events("worker.job_started", request_id=request_id)) == 1
    assert len(worker.events("worker.job_done", request_id=request_id)) == 1
    assert stack.copies(email_id) == 1
    row = await stack.email(email_id)
    assert (row.status, row.attempts) == ("sent", 1)
    # Nothing went back to the queue to run again.
    assert queue_depth(stack.broker_url, stack.topology.tasks) == (0, 0)
    # Each pool process closed its connections on the way out.
    assert worker.events("runtime.closed"), worker.output()


async def test_sigterm_stops_beat_cleanly(stack: Stack) -> None:
    beat = stack.workers.start(program=[*MDWE, GATEHOUSE, "beat"])
    # The signal lands as beat publishes its first sweep, on a broker connection it is
    # still opening: Celery's own handler hung there, about one run in five
    # (gatehouse.worker.beat).
    await wait_until(lambda: "Sending due task" in beat.output(), what="beat's first sweep")
    os.kill(beat.proc.pid, signal.SIGTERM)
    try:
        await wait_until(lambda: beat.proc.poll() is not None, within=EXIT_LIMIT)
    except pytest.fail.Exception:
        pytest.fail(f"beat still runs {EXIT_LIMIT:.0f} s after SIGTERM:\n{beat.output()[-6000:]}")
    assert beat.proc.returncode == 0, beat.output()
    assert "Traceback" not in beat.output()
