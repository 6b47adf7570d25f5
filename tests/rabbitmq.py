"""A RabbitMQ virtual host of this test run's own, and per-test names inside it."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from tests import services


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def _local(url: str) -> bool:
    return urlsplit(url).hostname in {"127.0.0.1", "localhost", "::1"}


def with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def run_vhost() -> Iterator[str]:
    """Yield an AMQP URL on a fresh vhost (deleted afterwards).

    Without a local `rabbitmqctl` (a remote broker), the configured vhost is used and
    isolation comes from the per-test exchange and queue names alone.
    """
    services.require("RabbitMQ", services.RABBITMQ_URL)
    base = services.RABBITMQ_URL
    if not (shutil.which("rabbitmqctl") and _local(base)):
        yield base
        return
    vhost = f"gatehouse-test-{uuid.uuid4().hex[:10]}"
    user = urlsplit(base).username or "guest"
    _ctl("add_vhost", vhost)
    try:
        _ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        yield with_vhost(base, vhost)
    finally:
        _ctl("delete_vhost", vhost)


def unique_names() -> dict[str, Any]:
    """Settings naming this test's own exchange and queues."""
    tag = uuid.uuid4().hex[:10]
    return {
        "events_exchange": f"gatehouse.events.{tag}",
        "task_queue_prefix": f"gatehouse-{tag}",
        # Tests bind the queues they read; the catch-all would hide an unroutable event.
        "events_recent_length": 0,
    }
