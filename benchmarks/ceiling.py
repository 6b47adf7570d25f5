"""The login ceiling: bcrypt verifications per second at a given cost, on one core.

A login verifies one password, so no server can log people in faster than this on the
cores it has. `benchmarks/run.py` runs it pinned to the server's core between two
scenarios and reports logins as a share of it. Prints one JSON object.

    python -m benchmarks.ceiling --seconds 3 --cost 12
"""

from __future__ import annotations

import argparse
import json
import time

import bcrypt

PASSWORD = b"quiet-lantern-harbour-12"


def verifications_per_second(seconds: float, cost: int) -> dict[str, float]:
    hashed = bcrypt.hashpw(PASSWORD, bcrypt.gensalt(cost))
    done = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    while time.perf_counter() - started < seconds:
        if not bcrypt.checkpw(PASSWORD, hashed):
            raise RuntimeError("bcrypt refused its own hash")
        done += 1
    elapsed = time.perf_counter() - started
    return {
        "cost": cost,
        "verifications": done,
        "seconds": elapsed,
        "per_second": done / elapsed,
        "cpu_share": (time.process_time() - cpu_started) / elapsed,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="bcrypt verifications per second")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--cost", type=int, default=12)
    args = parser.parse_args(argv)
    print(json.dumps(verifications_per_second(args.seconds, args.cost)))


if __name__ == "__main__":
    main()
