"""The benchmark's arithmetic, apart from any server: reading wrk's output, medians and
spreads over rounds, ratios to the bare hello, the performance targets, the result files'
names and the Markdown table. `benchmarks/run.py` measures; this sums up.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

MARKER = "WRK_JSON "
HELLO = "hello"


@dataclass(frozen=True)
class WrkRun:
    """One wrk run as its Lua `done()` reported it (benchmarks/wrk/common.lua)."""

    requests: int
    seconds: float
    statuses: dict[int, int]
    socket_errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    # The first body of each non-2xx status: why it failed.
    samples: dict[int, str] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def errors(self) -> int:
        """Non-2xx answers plus requests that got no answer (connect, read, timeout...)."""
        return self.non_2xx + sum(self.socket_errors.values())


def parse_wrk(output: str) -> WrkRun:
    """The JSON line common.lua prints among wrk's own text."""
    for line in output.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            break
    else:
        raise ValueError(f"no {MARKER.strip()} line in wrk's output:\n{output[-2000:]}")
    latency = data["latency_us"]
    return WrkRun(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        statuses={int(status): int(n) for status, n in data["statuses"].items()},
        socket_errors={name: int(n) for name, n in data["socket_errors"].items()},
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p95_ms=latency["p95"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        samples={int(status): body for status, body in data.get("samples", {}).items()},
    )


@dataclass(frozen=True)
class Measurement:
    """One scenario in one round: the measured wrk run and the server's CPU meanwhile."""

    scenario: str
    round: int
    run: WrkRun
    server_cpu: float | None  # share of one core
    warmup_errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "round": self.round,
            "rps": round(self.run.rps, 2),
            "server_cpu": None if self.server_cpu is None else round(self.server_cpu, 3),
            "warmup_errors": self.warmup_errors,
            **{k: v for k, v in asdict(self.run).items() if k not in ("statuses", "samples")},
            "statuses": {str(k): v for k, v in self.run.statuses.items()},
            "samples": {str(k): v for k, v in self.run.samples.items()},
            "errors": self.run.errors,
        }


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            return cls(float("nan"), float("nan"), float("nan"))
        return cls(statistics.median(values), min(values), max(values))


@dataclass(frozen=True)
class Summary:
    """A scenario over every round."""

    scenario: str
    rounds: int
    rps: Spread
    ratio: Spread  # to the hello of the same round
    p50_ms: float
    p95_ms: float
    p99_ms: float
    server_cpu: float | None
    errors: int


def ratios_to_hello(measurements: Sequence[Measurement], scenario: str) -> list[float]:
    """scenario req/s over hello req/s, round by round (rounds without both are left out)."""
    hello = {m.round: m.run.rps for m in measurements if m.scenario == HELLO}
    return [
        m.run.rps / hello[m.round]
        for m in measurements
        if m.scenario == scenario and hello.get(m.round)
    ]


def summarise(measurements: Sequence[Measurement], scenario: str) -> Summary:
    mine = [m for m in measurements if m.scenario == scenario]
    cpus = [m.server_cpu for m in mine if m.server_cpu is not None]
    return Summary(
        scenario=scenario,
        rounds=len(mine),
        rps=Spread.of([m.run.rps for m in mine]),
        ratio=Spread.of(ratios_to_hello(measurements, scenario)),
        p50_ms=_median([m.run.p50_ms for m in mine]),
        p95_ms=_median([m.run.p95_ms for m in mine]),
        p99_ms=_median([m.run.p99_ms for m in mine]),
        server_cpu=statistics.median(cpus) if cpus else None,
        errors=sum(m.run.errors + m.warmup_errors for m in mine),
    )


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def paired(
    measurements: Sequence[Measurement],
    numerator: str,
    denominator: str | Mapping[int, float],
    value: Callable[[WrkRun], float] = lambda run: run.rps,
) -> list[float]:
    """numerator's value over denominator's in the same round: another scenario's, or
    a figure per round (the login ceiling)."""
    if isinstance(denominator, str):
        below = {m.round: value(m.run) for m in measurements if m.scenario == denominator}
    else:
        below = dict(denominator)
    return [
        value(m.run) / below[m.round]
        for m in measurements
        if m.scenario == numerator and below.get(m.round)
    ]


@dataclass(frozen=True)
class Target:
    """One of the performance targets and whether this run met it."""

    scenario: str
    label: str  # as the table shows it
    value: float | None  # the measured figure the target is about (median over rounds)
    limit: float
    at_most: bool = False  # the figure must stay under the limit (latency, memory)

    @property
    def met(self) -> bool | None:
        if self.value is None or self.value != self.value:  # not measured, or NaN
            return None
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    @property
    def verdict(self) -> str:
        return {True: "met", False: "missed", None: "not measured"}[self.met]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


# The performance targets: req/s as a share of the bare hello of the same round.
RATIO_TARGETS = {
    "health": 0.6,
    "me": 0.15,
    "user": 0.08,
    "list-first": 0.03,
    "refresh": 0.06,
}
DEEP_PAGE_SHARE = 0.5  # list page 4000 against list page 1
LOGIN_SHARE = 0.9  # logins against the bcrypt ceiling
STORM_P99_FACTOR = 3.0
RSS_LIMIT_MB = 200.0
SEED_MILLION_SECONDS = 60.0


def targets(
    measurements: Sequence[Measurement],
    ceiling: Mapping[int, float],
    rss_mb: float | None,
    seed_million_seconds: float | None,
) -> list[Target]:
    found = []
    for scenario, limit in RATIO_TARGETS.items():
        ratios = ratios_to_hello(measurements, scenario)
        found.append(
            Target(scenario, f"≥ {limit:g} x hello", _median(ratios) if ratios else None, limit)
        )
    deep = paired(measurements, "list-deep", "list-first")
    found.append(
        Target(
            "list-deep",
            f"≥ {DEEP_PAGE_SHARE:g} x page 1",
            _median(deep) if deep else None,
            DEEP_PAGE_SHARE,
        )
    )
    login = paired(measurements, "login", ceiling)
    found.append(
        Target(
            "login",
            f"≥ {LOGIN_SHARE:g} x ceiling",
            _median(login) if login else None,
            LOGIN_SHARE,
        )
    )
    storm = paired(measurements, "storm", "me", lambda run: run.p99_ms)
    found.append(
        Target(
            "storm",
            f"p99 ≤ {STORM_P99_FACTOR:g} x alone",
            _median(storm) if storm else None,
            STORM_P99_FACTOR,
            at_most=True,
        )
    )
    found.append(Target("rss", f"≤ {RSS_LIMIT_MB:g} MB", rss_mb, RSS_LIMIT_MB, at_most=True))
    found.append(
        Target(
            "seed-million",
            f"≤ {SEED_MILLION_SECONDS:g} s",
            seed_million_seconds,
            SEED_MILLION_SECONDS,
            at_most=True,
        )
    )
    return found


def result_stem(date: str, commit: str, backend: str = "postgres", quick: bool = False) -> str:
    """`<YYYY-MM-DD>-<short commit>`; another backend or a quick try is named so, so that
    neither overwrites the default run's files."""
    parts = [date, commit]
    if backend != "postgres":
        parts.append(backend)
    if quick:
        parts.append("quick")
    return "-".join(parts)


@dataclass
class ScaleOut:
    """Throughput of N API processes (unpinned) for one scenario."""

    workers: int
    scenario: str
    run: WrkRun
    server_cpu: float | None  # every process of the server, in cores

    def as_dict(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "scenario": self.scenario,
            "rps": round(self.run.rps, 2),
            "p99_ms": self.run.p99_ms,
            "server_cpu": None if self.server_cpu is None else round(self.server_cpu, 3),
            "errors": self.run.errors,
        }


@dataclass
class Report:
    """Everything one run measured, for the JSON file and the Markdown table."""

    machine: dict[str, Any]
    settings: dict[str, Any]
    backend: str
    labels: dict[str, str]
    measurements: list[Measurement] = field(default_factory=list)
    ceiling: dict[int, float] = field(default_factory=dict)  # round -> verifications/s
    # round -> the share of its core the ceiling's process got: under 1, other work
    # on the machine took part of the core the server runs on too.
    ceiling_cpu: dict[int, float] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)  # VmRSS, VmHWM
    seed: dict[str, float] = field(default_factory=dict)
    scale_out: list[ScaleOut] = field(default_factory=list)
    storm_logins: dict[int, float] = field(default_factory=dict)  # round -> login req/s
    server_warnings: dict[str, int] = field(default_factory=dict)  # "level: event" -> count

    @property
    def scenarios(self) -> list[str]:
        seen: list[str] = []
        for m in self.measurements:
            if m.scenario not in seen:
                seen.append(m.scenario)
        return seen

    @property
    def errors(self) -> int:
        return sum(m.run.errors + m.warmup_errors for m in self.measurements) + sum(
            s.run.errors for s in self.scale_out
        )

    def targets(self) -> list[Target]:
        return targets(
            self.measurements,
            self.ceiling,
            self.rss_mb.get("VmRSS"),
            self.seed.get("million_seconds"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "settings": self.settings,
            "backend": self.backend,
            "summary": [asdict(summarise(self.measurements, s)) for s in self.scenarios],
            "targets": [t.as_dict() for t in self.targets()],
            "login_ceiling_per_second": {str(r): v for r, v in self.ceiling.items()},
            "login_ceiling_cpu_share": {str(r): v for r, v in self.ceiling_cpu.items()},
            "storm_login_rps": {str(r): v for r, v in self.storm_logins.items()},
            "rss_mb": self.rss_mb,
            "seed": self.seed,
            "scale_out": [s.as_dict() for s in self.scale_out],
            "server_warnings": self.server_warnings,
            "measurements": [m.as_dict() for m in self.measurements],
            "errors": self.errors,
        }

    def markdown(self) -> str:
        return markdown(self)


def _num(value: float | None, digits: int = 0) -> str:
    if value is None or value != value:
        return "—"
    if digits == 0 and abs(value) < 10:
        digits = 1
    return f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    if value is None or value != value:
        return "—"
    return f"{value:.3f}" if value < 0.1 else f"{value:.2f}"


def markdown(report: Report) -> str:
    m = report.machine
    s = report.settings
    by_scenario = {t.scenario: t for t in report.targets()}
    lines = [
        f"# Gatehouse benchmark, {m['date']}, commit {m['commit']}",
        "",
        f"{s['backend_label']}; {s['environment']}; {s['users']:,} users; "
        f"{s['rounds']} round(s) of {s['duration']} s per scenario after {s['warmup']} s of "
        f"warm-up; {s['connections']} connections ({s['slow_connections']} for the bcrypt "
        f"scenarios); {s['pinning']}.",
        "",
        f"Machine: {m['cpu']}, Python {m['python']}, {m['system']}; load average before "
        f"the run {m['load_average']}, after {m.get('load_average_after', '?')}.",
        "",
        "req/s: median of the rounds (spread min-max); ratio: to the bare hello of the same "
        "round, median; latency: medians of the rounds' percentiles; server CPU: share of "
        "one core during the measured seconds.",
        "",
        "| scenario | req/s | spread | ratio to hello | p50 ms | p95 ms | p99 ms | server CPU "
        "| errors | target | figure | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for scenario in report.scenarios:
        summary = summarise(report.measurements, scenario)
        target = by_scenario.get(scenario)
        cpu = "—" if summary.server_cpu is None else f"{summary.server_cpu * 100:.0f} %"
        figure = "—" if target is None else _ratio(target.value)
        lines.append(
            f"| {report.labels.get(scenario, scenario)} | {_num(summary.rps.median)} "
            f"| {_num(summary.rps.low)}-{_num(summary.rps.high)} "
            f"| {_ratio(summary.ratio.median)} | {_num(summary.p50_ms, 1)} "
            f"| {_num(summary.p95_ms, 1)} | {_num(summary.p99_ms, 1)} | {cpu} "
            f"| {summary.errors} | {target.label if target else ''} | {figure} "
            f"| {target.verdict if target else ''} |"
        )
    lines.append("")
    ceiling = list(report.ceiling.values())
    if ceiling:
        spread = Spread.of(ceiling)
        lines.append(
            f"- Login ceiling (bcrypt cost 12 verifications per second, one process pinned "
            f"to the server's core): {spread.median:.2f} ({spread.low:.2f}-{spread.high:.2f})"
            + (
                f"; that process had {Spread.of(list(report.ceiling_cpu.values())).median:.0%} "
                "of its core (less: other work shared the server's core)."
                if report.ceiling_cpu
                else "."
            )
        )
    if report.storm_logins:
        spread = Spread.of(list(report.storm_logins.values()))
        lines.append(f"- Logins per second during the storm: {spread.median:.2f}.")
    if report.rss_mb:
        rss = by_scenario.get("rss")
        lines.append(
            f"- API process memory after the whole run: VmRSS {report.rss_mb['VmRSS']:.0f} MB, "
            f"VmHWM (peak) {report.rss_mb['VmHWM']:.0f} MB; target "
            f"{rss.label if rss else ''} (VmRSS): {rss.verdict if rss else ''}."
        )
    if "users_seconds" in report.seed:
        lines.append(
            f"- Seeding {s['users']:,} users: {report.seed['users_seconds']:.1f} s "
            "(the `gatehouse seed` command, start to end)."
        )
    if "million_seconds" in report.seed:
        million = by_scenario["seed-million"]
        lines.append(
            f"- `gatehouse seed --count 1000000` on PostgreSQL: "
            f"{report.seed['million_seconds']:.1f} s (bulk insert "
            f"{report.seed.get('million_insert_seconds', float('nan')):.1f} s); target "
            f"{million.label}: {million.verdict}."
        )
    lines.append(f"- Errors (non-2xx answers and unanswered requests): {report.errors}.")
    if report.server_warnings:
        shown = ", ".join(f"{event} x{n}" for event, n in sorted(report.server_warnings.items()))
        lines.append(f"- The server logged warnings during the rounds: {shown}.")
    else:
        lines.append("- The server logged no warning or error during the rounds.")
    if report.scale_out:
        lines += [
            "",
            "## Scale-out",
            "",
            f"{s.get('scale_out_note', '')}",
            "",
            "| scenario | API processes | req/s | p99 ms | server CPU (cores) | errors |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for item in report.scale_out:
            cpu = "—" if item.server_cpu is None else f"{item.server_cpu:.2f}"
            lines.append(
                f"| {report.labels.get(item.scenario, item.scenario)} | {item.workers} "
                f"| {_num(item.run.rps)} | {_num(item.run.p99_ms, 1)} | {cpu} "
                f"| {item.run.errors} |"
            )
    return "\n".join(lines) + "\n"
