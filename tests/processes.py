"""Real `gatehouse serve` processes for tests that need more than one app instance."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
GATEHOUSE = str(Path(sys.executable).with_name("gatehouse"))
STARTUP_LIMIT = 60.0


@dataclass
class ServerProcess:
    proc: asyncio.subprocess.Process
    log: Path
    url: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")


async def start(
    env: dict[str, str], log: Path, port: int | None = None, *, wrapper: Sequence[str] = ()
) -> ServerProcess:
    """Start `gatehouse serve` on `port` or a free one (not waiting for it), run by
    `wrapper` if given (tests.mdwe)."""
    port = port or free_port()
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            *wrapper, GATEHOUSE, "serve", "--port", str(port), cwd=ROOT, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=sink,
        )  # fmt: skip
    return ServerProcess(proc, log, f"http://127.0.0.1:{port}")


async def wait_healthy(server: ServerProcess) -> None:
    """Until /health answers 200; a server that exits or never answers fails the test."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_LIMIT
    async with httpx.AsyncClient(timeout=2) as client:
        while loop.time() < deadline:
            if server.proc.returncode is not None:
                pytest.fail(f"server exited ({server.proc.returncode}):\n{server.output()}")
            try:
                response = await client.get(f"{server.url}/health")
            except httpx.TransportError:
                await asyncio.sleep(0.1)
                continue
            assert response.status_code == 200, response.text
            return
    await stop(server)
    pytest.fail(f"server did not answer /health within {STARTUP_LIMIT}s:\n{server.output()}")


async def serve(env: dict[str, str], log: Path, port: int | None = None) -> ServerProcess:
    server = await start(env, log, port)
    await wait_healthy(server)
    return server


async def stop(server: ServerProcess | None) -> None:
    if server is not None and server.proc.returncode is None:
        server.proc.terminate()
        try:
            await asyncio.wait_for(server.proc.wait(), 20)
        except TimeoutError:
            server.proc.kill()
            await server.proc.wait()
