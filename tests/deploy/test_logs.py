"""deploy/logs: the log-file drop-in of the systemd units (deploy/systemd), journald's
30 days and logrotate's.

The real tools read the real files: logrotate (its --debug mode, then a real rotation
of a copy pointed at a temporary directory) and systemd-analyze (the API's unit with the
drop-in, the Gatehouse executable swapped for one that exists on this machine).
"""

from __future__ import annotations

import fnmatch
import gzip
import re
from pathlib import Path

from tests.deploy.support import DEPLOY, run_tool, tool
from tests.deploy.support import unit_settings as settings

LOGS = DEPLOY / "logs"
UNIT = DEPLOY / "systemd" / "gatehouse-api.service"
# Installed as /etc/systemd/system/gatehouse-.service.d/log-file.conf: every
# `gatehouse-*.service` reads it.
DROP_IN_DIRECTORY = "gatehouse-.service.d"
FILE_DROP_IN = LOGS / "gatehouse-log-file.conf"
JOURNALD = LOGS / "journald-gatehouse.conf"
LOGROTATE = LOGS / "gatehouse.logrotate"
EXECUTABLE = "/opt/gatehouse/.venv/bin/gatehouse"


def logrotate() -> str:
    return tool("logrotate", installed_by="log-tools", also=("/usr/sbin/logrotate",))


def rotated_pattern() -> str:
    match = re.search(r"^(/\S+)\s*\{", LOGROTATE.read_text(), re.MULTILINE)
    assert match is not None, "no log path in the logrotate file"
    return match[1]


# --- journald -------------------------------------------------------------------------


def test_journald_keeps_the_journal_on_disk_for_30_days() -> None:
    journal = settings(JOURNALD)["Journal"]
    assert journal["MaxRetentionSec"] == ["30day"]
    assert journal["Storage"] == ["persistent"]


def test_the_unit_serves_the_api_and_sends_json_lines_to_the_journal() -> None:
    service = settings(UNIT)["Service"]
    assert service["ExecStart"] == [f"{EXECUTABLE} serve"]
    assert "GATEHOUSE_LOG_FORMAT=json" in service["Environment"]
    assert service["StandardOutput"] == ["journal"]
    assert service["SyslogIdentifier"] == ["gatehouse-api"]


def test_systemd_accepts_the_unit_and_its_log_file_drop_in(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", installed_by="log-tools")
    # systemd-analyze checks that the executables exist: stand in one that does.
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(EXECUTABLE, "/bin/true"))
    drop_ins = tmp_path / DROP_IN_DIRECTORY
    drop_ins.mkdir()
    (drop_ins / "log-file.conf").write_text(FILE_DROP_IN.read_text())
    result = run_tool(analyze, "verify", str(unit))
    # Unknown or misspelt settings are only warnings, on stderr.
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")


# --- the log file and logrotate -------------------------------------------------------


def test_the_drop_in_writes_where_logrotate_rotates() -> None:
    service = settings(FILE_DROP_IN)["Service"]
    (output,) = service["StandardOutput"]
    # append: every write lands at the end, also after copytruncate empties the file.
    assert output.startswith("append:")
    # %N: the unit's name, so each unit has its file (gatehouse-api.log, ...).
    for unit in ("gatehouse-api", "gatehouse-worker", "gatehouse-beat", "gatehouse-backup"):
        path = output.removeprefix("append:").replace("%N", unit)
        assert fnmatch.fnmatch(path, rotated_pattern()), path
    assert DROP_IN_DIRECTORY.removesuffix(".service.d") + "api" == UNIT.stem
    assert service["StandardError"] == ["inherit"]


def test_logrotate_reads_the_stanza_daily_with_30_rotations(tmp_path: Path) -> None:
    result = run_tool(logrotate(), "--debug", "--state", str(tmp_path / "state"), str(LOGROTATE))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"rotating pattern: {rotated_pattern()}  after 1 days (30 rotations)" in output
    assert "old logs are removed" in output
    assert not [line for line in output.splitlines() if line.startswith("error")], output


def test_a_rotation_keeps_the_old_lines_and_the_writer_carries_on_in_the_new_file(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    config = tmp_path / "gatehouse.logrotate"
    config.write_text(LOGROTATE.read_text().replace(str(Path(rotated_pattern()).parent), str(logs)))
    log = logs / "gatehouse.log"
    state = tmp_path / "state"
    # Opened once in append mode, as systemd opens it for the service, and kept open.
    with log.open("a", buffering=1) as output:
        output.write('{"event": "http.request", "request_id": "before"}\n')
        result = run_tool(logrotate(), "--force", "--state", str(state), str(config))
        assert result.returncode == 0, result.stdout + result.stderr
        output.write('{"event": "http.request", "request_id": "after"}\n')

    (rotated,) = logs.glob("gatehouse.log-*")  # dateext: gatehouse.log-YYYYMMDD
    assert re.fullmatch(r"gatehouse\.log-\d{8}", rotated.name)
    assert '"before"' in rotated.read_text()
    # copytruncate emptied the file in place, and the next line went to its start:
    # no hole of NUL bytes where the old lines were.
    assert log.read_text() == '{"event": "http.request", "request_id": "after"}\n'

    # The next rotation compresses the previous one (delaycompress).
    rotated.rename(logs / "gatehouse.log-20000101")
    result = run_tool(logrotate(), "--force", "--state", str(state), str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    with gzip.open(logs / "gatehouse.log-20000101.gz", "rt") as old:
        assert '"before"' in old.read()
    assert '"after"' in rotated.read_text()
