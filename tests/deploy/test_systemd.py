"""deploy/systemd: the units of the API, the worker, beat and the daily backup, and the
system user they run as.

systemd-analyze reads the real files (with the Gatehouse executable swapped for one
that exists on this machine): `verify` for every unit and the timer, `security` for
their exposure. What an operator relies on is checked against the code it names: each
ExecStart is a `gatehouse` command with options the CLI accepts, and each stop timeout
leaves room for the app's own graceful timeouts. The processes themselves are stopped
by SIGTERM in tests/cli/test_serve_shutdown.py and tests/worker/test_shutdown.py.
"""

from __future__ import annotations

import shlex
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup

from gatehouse.cli.main import app
from gatehouse.config import ServerSettings, WorkerSettings
from gatehouse.worker.embedded import InProcessRunner
from tests.deploy.support import DEPLOY, run_tool, tool, unit_settings

SYSTEMD = DEPLOY / "systemd"
EXECUTABLE = "/opt/gatehouse/.venv/bin/gatehouse"
# Unit → the `gatehouse` command it runs.
SERVICES = {
    "gatehouse-api.service": "serve",
    "gatehouse-worker.service": "worker",
    "gatehouse-beat.service": "beat",
    "gatehouse-backup.service": "backup",
}
LONG_RUNNING = ("gatehouse-api.service", "gatehouse-worker.service", "gatehouse-beat.service")
TIMER = SYSTEMD / "gatehouse-backup.timer"
SYSUSERS = SYSTEMD / "gatehouse.sysusers"
# Each must be there, with this value, in every service.
HARDENING = {
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "ProtectProc": "invisible",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "SystemCallErrorNumber": "EPERM",
    "UMask": "0077",
}
# systemd-analyze security's exposure, 0-100 (its "1.2" is 12): today 12 for each unit;
# a unit that loses a hardening setting goes above.
MAX_EXPOSURE = "20"
# Room, past the app's own timeouts, for the process to exit after them.
STOP_MARGIN_SECONDS = 5


def service(name: str) -> dict[str, list[str]]:
    return unit_settings(SYSTEMD / name)["Service"]


def one(section: dict[str, list[str]], key: str) -> str:
    values = section.get(key, [])
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


def seconds(value: str) -> float:
    """A systemd time span as the units write them: `45`, `45s`, `3min`, `6h`."""
    units = {"h": 3600, "min": 60, "s": 1}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return float(value.removesuffix(suffix)) * factor
    return float(value)


def default(settings: type[ServerSettings | WorkerSettings], field: str) -> float:
    value = settings.model_fields[field].default
    assert isinstance(value, int | float)
    return float(value)


def standing_in(tmp_path: Path) -> list[str]:
    """Copies of every unit and the timer, the executable swapped for /bin/true (both
    tools check that it exists)."""
    copies = []
    for path in [*(SYSTEMD / name for name in SERVICES), TIMER]:
        copy = tmp_path / path.name
        copy.write_text(path.read_text().replace(EXECUTABLE, "/bin/true"))
        copies.append(str(copy))
    return copies


def test_the_units_cover_the_api_worker_beat_and_backup() -> None:
    units = {path.name for path in SYSTEMD.glob("*.service")} | {TIMER.name}
    assert units == set(SERVICES) | {TIMER.name}


def test_systemd_accepts_every_unit_and_the_timer(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", installed_by="log-tools")
    result = run_tool(analyze, "verify", *standing_in(tmp_path))
    # Unknown or misspelt settings are only warnings, on stderr.
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")


def test_every_unit_is_hardened_with_a_low_exposure(tmp_path: Path) -> None:
    for name in SERVICES:
        unit = service(name)
        found = {key: unit.get(key, ["<missing>"])[-1] for key in HARDENING}
        assert found == HARDENING, name
        filters = unit["SystemCallFilter"]
        assert filters == ["@system-service", "~@privileged @resources"], name
    analyze = tool("systemd-analyze", installed_by="log-tools")
    services = [copy for copy in standing_in(tmp_path) if copy.endswith(".service")]
    result = run_tool(
        analyze, "security", "--offline=true", f"--threshold={MAX_EXPOSURE}", *services
    )
    levels = [line for line in result.stdout.splitlines() if "Overall exposure level" in line]
    print("\n" + "\n".join(levels))
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(levels) == len(SERVICES), result.stdout


def test_every_unit_runs_as_the_gatehouse_user_with_the_settings_file() -> None:
    for name in SERVICES:
        unit = service(name)
        assert (one(unit, "User"), one(unit, "Group")) == ("gatehouse", "gatehouse"), name
        assert one(unit, "EnvironmentFile") == "/etc/gatehouse/gatehouse.env", name
        assert one(unit, "StateDirectory") == "gatehouse", name
        assert "GATEHOUSE_DATA_DIR=/var/lib/gatehouse" in unit["Environment"], name
        assert "GATEHOUSE_LOG_FORMAT=json" in unit["Environment"], name
        assert one(unit, "SyslogIdentifier") == name.removesuffix(".service"), name


def test_the_system_user_is_made_by_sysusers(tmp_path: Path) -> None:
    sysusers = tool("systemd-sysusers", installed_by="log-tools")
    result = run_tool(sysusers, "--dry-run", f"--root={tmp_path}", str(SYSUSERS))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Creating user 'gatehouse'" in output, output
    assert "Creating group 'gatehouse'" in output, output


def test_the_long_running_units_restart_on_failure_but_not_on_a_refused_setting() -> None:
    for name in LONG_RUNNING:
        unit = service(name)
        assert one(unit, "Type") == "exec", name
        assert one(unit, "Restart") == "on-failure", name
        assert seconds(one(unit, "RestartSec")) > 0, name
        # Exit code 2: a setting refused at start-up (gatehouse.cli.common.config_error).
        assert one(unit, "RestartPreventExitStatus") == "2", name
        assert one(unit_settings(SYSTEMD / name)["Install"], "WantedBy") == "multi-user.target"
    backup = service("gatehouse-backup.service")
    assert one(backup, "Type") == "oneshot"
    assert "Restart" not in backup


@pytest.mark.parametrize("name", SERVICES)
def test_execstart_is_a_gatehouse_command_the_cli_accepts(name: str) -> None:
    executable, command, *options = shlex.split(one(service(name), "ExecStart"))
    assert executable == EXECUTABLE
    assert command == SERVICES[name]
    cli = typer.main.get_command(app)
    assert isinstance(cli, TyperGroup)
    if command == "backup" and "backup" not in cli.commands:
        pytest.skip("`gatehouse backup` is not registered in this tree (its branch adds it)")
    assert command in cli.commands, f"`gatehouse {command}` does not exist"
    # Parsed as the CLI parses them: an unknown option or a bad value fails here.
    cli.commands[command].make_context(f"gatehouse {command}", list(options))


def test_every_unit_stops_by_sigterm_to_the_main_process() -> None:
    for name in SERVICES:
        unit = service(name)
        assert one(unit, "KillSignal") == "SIGTERM", name
        # The worker's pool processes must not get the signal: they would die mid-job.
        assert one(unit, "KillMode") == "mixed", name


def test_the_stop_timeouts_leave_room_for_the_apps_graceful_timeouts() -> None:
    api = seconds(one(service("gatehouse-api.service"), "TimeoutStopSec"))
    # Requests in flight, then the last job messages handed to the broker (or the
    # in-process runner's jobs at hand, without a broker).
    drain = max(default(WorkerSettings, "publish_timeout_seconds"), InProcessRunner.STOP_GRACE)
    assert api >= default(ServerSettings, "shutdown_timeout_seconds") + drain + STOP_MARGIN_SECONDS
    # A running job ends within the task time limit, then the pool exits.
    worker = seconds(one(service("gatehouse-worker.service"), "TimeoutStopSec"))
    assert worker >= default(WorkerSettings, "task_time_limit_seconds") + STOP_MARGIN_SECONDS


def test_the_backup_runs_daily_catching_up_a_missed_day_at_a_random_time() -> None:
    timer = unit_settings(TIMER)
    assert one(timer["Timer"], "Persistent") == "true"
    assert seconds(one(timer["Timer"], "RandomizedDelaySec")) > 0
    assert one(timer["Install"], "WantedBy") == "timers.target"
    analyze = tool("systemd-analyze", installed_by="log-tools")
    result = run_tool(analyze, "calendar", "--iterations=2", one(timer["Timer"], "OnCalendar"))
    assert result.returncode == 0, result.stderr
    # The next two elapses are a day apart: once a day.
    first, second = [
        datetime.strptime(" ".join(line.split()[-3:-1]), "%Y-%m-%d %H:%M:%S")
        for line in result.stdout.splitlines()
        if line.strip().startswith(("Next elapse:", "Iter. #2:"))
    ]
    assert second - first == timedelta(days=1), result.stdout
    # The timer starts the unit of its own name; the unit runs `gatehouse backup --keep 30`.
    assert "Unit" not in timer["Timer"]
    assert one(service("gatehouse-backup.service"), "ExecStart").endswith(" backup --keep 30")
