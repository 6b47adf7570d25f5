"""The worker suite: real `gatehouse worker` processes on this run's RabbitMQ vhost and
PostgreSQL database, a real SMTP server, and the API's job queue client.

Worker start-up costs seconds, so a module shares one set of workers (`Stack`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from gatehouse.config import Settings
from gatehouse.emails.models import EmailMessage
from gatehouse.emails.sender import message_id
from gatehouse.emails.service import queue_email
from gatehouse.emails.templates import Kind
from gatehouse.kit.context import request_id_var
from gatehouse.kit.jobs import LeftForSweep
from gatehouse.runtime import Runtime
from gatehouse.users.models import User
from gatehouse.worker.celery_app import CeleryJobQueue, Topology
from tests import rabbitmq
from tests.conftest import empty_tables, make_settings
from tests.smtp import SmtpServer
from tests.worker.support import Workers, delete_topology, env_for

# Short limits, so that a stuck job times out, retries and gives up within seconds.
FAST: dict[str, Any] = {
    "task_soft_time_limit_seconds": 3,
    "task_time_limit_seconds": 6,
    "task_max_retries": 1,
    "task_retry_backoff_max_seconds": 1,
    "task_delivery_limit": 2,
    "worker_concurrency": 1,
    "outbox_sweep_seconds": 1.0,
    "log_level": "INFO",
    "log_format": "json",
}


@dataclass
class Stack:
    values: dict[str, Any]
    settings: Settings
    runtime: Runtime  # the test's own, for rows; it enqueues nothing by itself
    jobs: CeleryJobQueue  # what the API uses
    workers: Workers
    smtp: SmtpServer
    directory: Path

    def variant(self, **overrides: Any) -> tuple[dict[str, Any], Settings]:
        """The same stack's values and settings, changed (e.g. queues of their own)."""
        values = {**self.values, **overrides}
        given = {k: v for k, v in values.items() if k not in {"database_url", "data_dir"}}
        settings = make_settings(values["database_url"], values["data_dir"], "", **given)
        return values, settings

    @property
    def topology(self) -> Topology:
        return Topology(self.settings.worker.task_queue_prefix)

    @property
    def broker_url(self) -> str:
        url = self.settings.broker_url
        assert url is not None
        return url

    def enqueue(
        self, name: str, request_id: str, *, via: CeleryJobQueue | None = None, **kwargs: str
    ) -> None:
        """Enqueue as the API does while serving the request `request_id`."""
        token = request_id_var.set(request_id)
        try:
            (via or self.jobs).enqueue(name, **kwargs)
        finally:
            request_id_var.reset(token)

    async def pending_emails(self, count: int) -> list[uuid.UUID]:
        """Welcome mails waiting to be sent (rows only: no job is kicked)."""
        ids = []
        async with self.runtime.unit_of_work() as uow:
            session = uow.session
            for _ in range(count):
                tag = uuid.uuid4().hex[:10]
                user = User(
                    email=f"worker-{tag}@example.com", name="Wanda Worker", password_hash="-"
                )
                session.add(user)
                await session.flush()
                email_id = await queue_email(
                    uow, self.settings, kind=Kind.welcome, user=user, dedupe_key=tag
                )
                assert email_id is not None
                ids.append(email_id)
        return ids

    def copies(self, email_id: uuid.UUID) -> int:
        """How many copies of that mail the SMTP server received."""
        return self.smtp.message_ids()[message_id(email_id, self.settings)]

    async def sent(self, email_id: uuid.UUID) -> EmailMessage:
        """The row once marked sent (the SMTP server has the mail a moment before)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while (row := await self.email(email_id)).status != "sent":
            assert loop.time() < deadline, f"{email_id} still {row.status} after 30s"
            await asyncio.sleep(0.05)
        return row

    async def email(self, email_id: uuid.UUID) -> EmailMessage:
        async with self.runtime.db.session(write=False) as session:
            row = await session.scalar(select(EmailMessage).where(EmailMessage.id == email_id))
            assert row is not None
            return row


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
async def stack(
    postgres_url: str,
    rabbitmq_url: str,
    redis_url: str,
    signing_key_pem: str,
    smtp: SmtpServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    directory = tmp_path_factory.mktemp("worker")
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": directory / "data",
        "database_url": postgres_url,
        "bcrypt_rounds": 4,
        "jwt_private_key": signing_key_pem,
        "rate_limit_enabled": False,
        "broker_url": rabbitmq_url,
        "redis_url": redis_url,
        "redis_prefix": f"gatehouse-test-{uuid.uuid4().hex[:12]}:",
        **rabbitmq.unique_names(),
        **smtp.settings(),
        **FAST,
    }
    given = {k: v for k, v in values.items() if k not in {"database_url", "data_dir"}}
    settings = make_settings(postgres_url, directory / "data", signing_key_pem, **given)
    runtime = Runtime.create(settings)
    # The test's own rows wait for a kick the test sends (`enqueue`) or for the sweep.
    runtime.use_jobs(LeftForSweep())
    jobs = CeleryJobQueue(settings)
    workers = Workers(env_for(values), directory)
    stack = Stack(values, settings, runtime, jobs, workers, smtp, directory)
    try:
        yield stack
    finally:
        await asyncio.to_thread(workers.stop_all)
        await jobs.close()
        await asyncio.to_thread(
            delete_topology, rabbitmq_url, values["task_queue_prefix"], values["events_exchange"]
        )
        await empty_tables(runtime.db.engine)
        await runtime.close()
        client = Redis.from_url(redis_url)
        try:
            keys = [k async for k in client.scan_iter(match=f"{values['redis_prefix']}*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()
