"""`gatehouse worker` with Celery's acknowledgement defaults put back: the control runs
of EVT-06, which must show the loss that the real settings prevent.

    python -m tests.worker.control_worker celery-defaults [worker options]
        acks_late off (Celery's default): a message is acknowledged on receipt.
    python -m tests.worker.control_worker acks-late-only [worker options]
        acks_late on, task_reject_on_worker_lost off: a task whose pool process dies
        is acknowledged as failed.
"""

from __future__ import annotations

import sys
from typing import Any

from gatehouse.cli.main import app as cli
from gatehouse.config import Settings
from gatehouse.worker import celery_app
from gatehouse.worker.registry import all_jobs

MODES: dict[str, dict[str, bool]] = {
    "celery-defaults": {
        "task_acks_late": False,
        "task_reject_on_worker_lost": False,
        "task_acks_on_failure_or_timeout": True,
    },
    "acks-late-only": {
        "task_acks_late": True,
        "task_reject_on_worker_lost": False,
        "task_acks_on_failure_or_timeout": True,
    },
}


def main() -> None:
    conf = MODES[sys.argv[1]]
    create = celery_app.create_celery

    def create_celery(settings: Settings) -> Any:
        app = create(settings)
        app.conf.update(conf)
        for name in all_jobs():
            task = app.tasks[name]  # bound now: the class reads the changed conf
            for key, value in conf.items():
                assert getattr(task, key.removeprefix("task_")) is value, (name, key)
        return app

    celery_app.create_celery = create_celery
    cli(["worker", *sys.argv[2:]])


if __name__ == "__main__":
    main()
