"""The benchmark harness's own logic: no server, no wrk, no timing."""

from __future__ import annotations

import json

import pytest
from benchmarks.hello import config as hello_config
from benchmarks.report import (
    HELLO,
    Measurement,
    Report,
    WrkRun,
    parse_wrk,
    result_stem,
    summarise,
    targets,
)
from benchmarks.run import SCENARIOS, parse_args

from gatehouse.config import ServerSettings
from gatehouse.kit import server

WRK_TEXT = """Running 10s test @ http://127.0.0.1:8000/hello
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.95ms    1.02ms  20.01ms   90.00%
  20000 requests in 10.00s, 2.80MB read
Requests/sec:   2000.00
WRK_JSON {json}
"""


def wrk_line(
    requests: int = 20000,
    seconds: float = 10.0,
    statuses: dict[str, int] | None = None,
    p99_us: int = 12000,
    samples: dict[str, str] | None = None,
) -> str:
    data = {
        "requests": requests,
        "duration_us": int(seconds * 1e6),
        "bytes": 2_800_000,
        "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0},
        "statuses": statuses if statuses is not None else {"200": requests},
        "samples": samples or {},
        "latency_us": {"p50": 7900, "p90": 9000, "p95": 10500, "p99": p99_us, "max": 20010},
    }
    return WRK_TEXT.replace("{json}", json.dumps(data))


def run(rps: float, p99_ms: float = 12.0, statuses: dict[str, int] | None = None) -> WrkRun:
    requests = round(rps * 10)
    return parse_wrk(wrk_line(requests, 10.0, statuses, round(p99_ms * 1000)))


def test_parses_the_lua_json_line_among_wrks_text() -> None:
    parsed = parse_wrk(
        wrk_line(
            statuses={"200": 19990, "409": 10},
            samples={"409": '{"error":{"code":"CONFLICT"}}'},
        )
    )
    assert parsed.requests == 20000
    assert parsed.rps == pytest.approx(2000.0)
    assert parsed.p50_ms == pytest.approx(7.9)
    assert parsed.p99_ms == pytest.approx(12.0)
    assert parsed.statuses == {200: 19990, 409: 10}
    assert parsed.non_2xx == 10
    assert parsed.errors == 10
    assert parsed.samples == {409: '{"error":{"code":"CONFLICT"}}'}


def test_any_non_2xx_and_any_unanswered_request_is_an_error() -> None:
    text = wrk_line(statuses={"200": 5, "204": 1, "301": 1, "429": 2, "500": 1})
    text = text.replace('"timeout": 0', '"timeout": 3')
    parsed = parse_wrk(text)
    assert parsed.non_2xx == 4
    assert parsed.errors == 7


def test_output_without_the_json_line_is_refused() -> None:
    with pytest.raises(ValueError, match="WRK_JSON"):
        parse_wrk("unable to connect to 127.0.0.1:8000 Connection refused\n")


def measurements() -> list[Measurement]:
    """Three rounds: hello at 2000, 1000, 1500; /health at 1400, 500, 900."""
    found = []
    for round_number, (hello_rps, health_rps) in enumerate(
        [(2000, 1400), (1000, 500), (1500, 900)], start=1
    ):
        found.append(Measurement(HELLO, round_number, run(hello_rps), 0.99))
        found.append(Measurement("health", round_number, run(health_rps), 0.98))
    return found


def test_ratios_are_to_the_hello_of_the_same_round_then_the_median() -> None:
    summary = summarise(measurements(), "health")
    assert summary.rounds == 3
    assert summary.rps.median == pytest.approx(900)
    assert summary.rps.low == pytest.approx(500)
    assert summary.rps.high == pytest.approx(1400)
    # 0.7, 0.5, 0.6: the median of the per-round ratios, not 900 / 1500.
    assert summary.ratio.median == pytest.approx(0.6)
    assert summary.ratio.low == pytest.approx(0.5)
    assert summary.server_cpu == pytest.approx(0.98)
    assert summary.errors == 0


def test_targets_met_missed_and_not_measured() -> None:
    found = measurements()
    for round_number in (1, 2, 3):
        found.append(Measurement("list-first", round_number, run(100), None))
        found.append(Measurement("list-deep", round_number, run(40), None))
        found.append(Measurement("login", round_number, run(3.8), None))
        found.append(Measurement("me", round_number, run(400, p99_ms=20), None))
        found.append(Measurement("storm", round_number, run(300, p99_ms=70), None))
    verdicts = {
        t.scenario: t
        for t in targets(found, {1: 4.0, 2: 4.0, 3: 4.0}, rss_mb=180.0, seed_million_seconds=75)
    }
    assert verdicts["health"].met is True  # 0.6 >= 0.6
    assert verdicts["list-deep"].value == pytest.approx(0.4)
    assert verdicts["list-deep"].met is False
    assert verdicts["login"].value == pytest.approx(0.95)
    assert verdicts["login"].met is True
    assert verdicts["storm"].value == pytest.approx(3.5)
    assert verdicts["storm"].met is False
    assert verdicts["rss"].met is True
    assert verdicts["seed-million"].met is False
    assert verdicts["refresh"].met is None
    assert verdicts["refresh"].verdict == "not measured"


def test_result_files_are_named_by_date_and_commit() -> None:
    assert result_stem("2026-12-06", "de1ad22") == "2026-12-06-de1ad22"
    assert result_stem("2026-12-06", "de1ad22", "sqlite") == "2026-12-06-de1ad22-sqlite"
    assert result_stem("2026-12-06", "de1ad22", quick=True) == "2026-12-06-de1ad22-quick"


def test_the_report_holds_every_figure_and_a_table_with_the_targets() -> None:
    report = Report(
        machine={
            "date": "2026-12-06 10:00 UTC",
            "commit": "de1ad22",
            "cpu": "2 x CPU",
            "python": "3.11.7",
            "system": "Linux",
            "load_average": "0.1 0.1 0.1",
        },
        settings={
            "backend_label": "PostgreSQL + Redis",
            "environment": "GATEHOUSE_ENV=production",
            "users": 100_000,
            "rounds": 3,
            "duration": 10,
            "warmup": 2,
            "connections": 16,
            "slow_connections": 4,
            "pinning": "server on CPU 0, wrk on CPU 1",
        },
        backend="postgres",
        labels=dict(SCENARIOS),
        measurements=measurements(),
        rss_mb={"VmRSS": 150.0, "VmHWM": 170.0},
    )
    data = json.loads(json.dumps(report.as_dict()))
    assert [s["scenario"] for s in data["summary"]] == [HELLO, "health"]
    assert len(data["measurements"]) == 6
    table = report.markdown()
    assert "| `GET /health` | 900 | 500-1,400 | 0.60 |" in table
    assert "≥ 0.6 x hello | 0.60 | met |" in table
    assert "VmRSS 150 MB" in table


def test_hello_is_served_like_gatehouse_serve() -> None:
    ours = hello_config("127.0.0.1", 8100)
    theirs = server.uvicorn_config(
        "gatehouse.app:app_factory",
        ServerSettings(),
        host="127.0.0.1",
        port=8100,
        workers=1,
        factory=True,
    )
    for name in ("http", "loop", "workers", "access_log", "timeout_keep_alive"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.limits == theirs.limits


def test_options_and_the_quick_mode() -> None:
    args = parse_args(["--quick", "--no-pin", "--scenarios", "storm"])
    assert (args.users, args.rounds, args.duration, args.scale_out) == (2000, 1, 2, False)
    # hello is the denominator; the storm is read against /users/me and logins.
    assert args.scenarios == [HELLO, "me", "login", "storm"]
    assert parse_args(["--quick", "--no-pin", "--rounds", "2"]).rounds == 2
    with pytest.raises(SystemExit):
        parse_args(["--scenarios", "nope", "--no-pin"])
