"""Real `gatehouse serve` processes for tests that need more than one app instance."""

from __future__ import annotations

import asyncio
import sys
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


async def serve(env: dict[str, str], log: Path) -> ServerProcess:
    """Start `gatehouse serve` on a free port and wait until /health answers."""
    port = free_port()
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            GATEHOUSE, "serve", "--port", str(port), cwd=ROOT, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=sink,
        )  # fmt: skip
    server = ServerProcess(proc, log, f"http://127.0.0.1:{port}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_LIMIT
    async with httpx.AsyncClient(timeout=2) as client:
        while loop.time() < deadline:
            if proc.returncode is not None:
                pytest.fail(f"server exited:\n{server.output()}")
            try:
                if (await client.get(f"{server.url}/health")).status_code == 200:
                    return server
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    await stop(server)
    pytest.fail(f"server did not start:\n{server.output()}")


async def stop(server: ServerProcess) -> None:
    if server.proc.returncode is None:
        server.proc.terminate()
        try:
            await asyncio.wait_for(server.proc.wait(), 20)
        except TimeoutError:
            server.proc.kill()
            await server.proc.wait()
