"""The app `gatehouse serve` builds in each process (`gatehouse.app.app_factory`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# In a process of its own, as a server process builds it: freezing here would pin this
# test process's garbage for good, and the logging it configures is process-wide.
BUILD = """
import gc, json
from gatehouse.app import app_factory
before = gc.get_freeze_count()
app_factory()
young = sum(gc.get_count())
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(), "young": young}))
"""


def test_the_served_app_leaves_its_start_up_objects_out_of_every_collection(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env |= {"GATEHOUSE_DATA_DIR": str(tmp_path), "GATEHOUSE_LOG_FORMAT": "json"}
    done = subprocess.run(
        [sys.executable, "-c", BUILD], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout.splitlines()[-1])
    assert counts["before"] == 0
    # The imports, the routes and the schemas: a full collection walks none of them.
    assert counts["frozen"] > 100_000, counts
    assert counts["young"] < 1_000, counts
