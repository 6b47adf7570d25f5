"""A RabbitMQ node of the test's own, on free ports, to kill, pause and restart.

Fault tests use it so the machine's shared broker (and every other test's vhost on it) is
never stopped. The node runs from RabbitMQ's own scripts with everything it writes (its
database, logs, config, Erlang cookie) in the test's directory; it registers with the
machine's epmd under a name of its own. Starting takes a few seconds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.redis_server import free_port

START_LIMIT = 60.0


def installed() -> bool:
    return _scripts() is not None


def _scripts() -> Path | None:
    """The directory of RabbitMQ's real scripts, not the distribution's wrapper (which
    switches to the `rabbitmq` user and its home, and so to the shared node's cookie)."""
    found = shutil.which("rabbitmq-server")
    if found is None:
        return None
    return Path(found).resolve().parent


class DedicatedRabbitMQ:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.node = f"gh-test-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.pid_file = workdir / "rabbitmq.pid"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        base = self.workdir
        return {
            **os.environ,
            # The Erlang cookie is made in (and read from) $HOME: this node's own.
            "HOME": str(base),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            # Not the machine's files: they name the shared node's port and plugins.
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self) -> None:
        """Start (or restart, keeping its data) and wait until it accepts connections."""
        scripts = _scripts()
        if scripts is None:
            pytest.fail("rabbitmq-server is not installed")
        base = self.workdir
        base.mkdir(parents=True, exist_ok=True)
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        (base / "rabbitmq-env.conf").write_text("")
        (base / "enabled_plugins").write_text("[].\n")
        subprocess.run(
            [str(scripts / "rabbitmq-server"), "-detached"],
            env=self._env(), check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + START_LIMIT
        while time.monotonic() < deadline:
            if self.accepts():
                return
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"RabbitMQ node {self.node} did not start within {START_LIMIT:g}s")

    def accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5):
                return True
        except OSError:
            return False

    def _pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        """Die at once, as a crashed broker does (connections reset, port closed)."""
        pid = self._pid()
        if pid is None:
            return
        for sig in (signal.SIGCONT, signal.SIGKILL):  # a paused node must die too
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.accepts():
            time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)

    def pause(self) -> None:
        """Connections stay open but nothing answers, like a hung host."""
        pid = self._pid()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        pid = self._pid()
        assert pid is not None
        os.kill(pid, signal.SIGCONT)

    def resume_if_paused(self) -> None:
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop the node if it runs (the fixture's teardown); kill it if it will not."""
        scripts = _scripts()
        pid = self._pid()
        if scripts is None or pid is None:
            return
        try:
            os.kill(pid, signal.SIGCONT)  # a paused node cannot stop
        except ProcessLookupError:
            self.pid_file.unlink(missing_ok=True)
            return
        try:
            subprocess.run(
                [str(scripts / "rabbitmqctl"), "-n", self.node, "stop"],
                env=self._env(), check=True, capture_output=True, timeout=60,
            )  # fmt: skip
        except (subprocess.SubprocessError, OSError):
            self.kill()
        self.pid_file.unlink(missing_ok=True)
