"""The benchmark's denominator: a bare FastAPI app served exactly like `gatehouse serve`.

`GET /hello` answers `{"message": "hello"}` with nothing in between: no middleware, no
database, no logging. It runs under the uvicorn configuration `gatehouse serve` builds
(`gatehouse.kit.server.uvicorn_config`: the same protocol class and limits, the same
event loop, one process), from the same `GATEHOUSE_*` settings, so a ratio to it is
the share of the stack's capacity that Gatehouse's own work leaves.

    python -m benchmarks.hello --port 8100
"""

from __future__ import annotations

import argparse
import gc

import uvicorn
from fastapi import FastAPI

from gatehouse.config import load_settings
from gatehouse.kit import server

app = FastAPI()


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"message": "hello"}


def config(host: str, port: int) -> server.GatehouseConfig:
    """The configuration the benchmark serves the bare app with (one process)."""
    settings = load_settings()
    return server.uvicorn_config(
        "benchmarks.hello:app", settings.server, host=host, port=port, workers=1, factory=False
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the bare hello app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    sock = server.bind(args.host, args.port)
    # As `gatehouse.app.app_factory` does for the served app: the same collector work.
    gc.collect()
    gc.freeze()
    uvicorn.Server(config(args.host, args.port)).run(sockets=[sock])


if __name__ == "__main__":
    main()
