"""A redis-server of the test's own, on a free port, to kill, pause and restart.

Fault tests use it so the machine's shared Redis is never stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis


async def drop_keys(url: str, prefix: str) -> None:
    """Delete every key under a test's own prefix."""
    client = AsyncRedis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DedicatedRedis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart, empty: nothing is persisted) and wait until it answers."""
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with Redis.from_url(self.url, socket_timeout=0.5) as client:
                    if client.ping():
                        return
            except Exception:  # not up yet
                time.sleep(0.05)
        pytest.fail(f"redis-server on port {self.port} did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a paused server must die too
            self.proc.kill()
            self.proc.wait(10)

    def pause(self) -> None:
        """Unreachable but keeping its data, like a partition or a hung host."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def keys(self, pattern: str) -> list[str]:
        with Redis.from_url(self.url) as client:
            return sorted(key.decode() for key in client.keys(pattern))

    def hget(self, key: str, field: str) -> str | None:
        with Redis.from_url(self.url) as client:
            value = client.hget(key, field)
            return value.decode() if isinstance(value, bytes) else None
