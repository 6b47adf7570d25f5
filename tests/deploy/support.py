"""What the deploy tests share: the series Gatehouse exports (and the labels Prometheus
stores on them), the metrics a PromQL expression reads, and the app's route templates.

The alerts and the dashboard name metrics in strings nothing else checks; these
helpers let the tests hold them to gatehouse.kit.metrics, where the names are fixed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no type hints
from fastapi.routing import iter_route_contexts
from prometheus_client.metrics import MetricWrapperBase

from gatehouse.app import create_app
from gatehouse.config import Environment, ServerSettings, Settings
from gatehouse.kit import metrics
from tests.services import skip_suite

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

# The scrape jobs of deploy/prometheus/prometheus.yml, which the alerts and panels select.
SCRAPE_JOBS = frozenset({"gatehouse-api", "gatehouse-worker", "gatehouse-beat"})
# Labels Prometheus puts on every scraped series. A metric's own label of the same name
# is stored as `exported_<name>` (with `honor_labels` off, as in prometheus.yml).
TARGET_LABELS = frozenset({"job", "instance"})
# Series that are not Gatehouse's own: Prometheus's `up`, and prometheus-client's
# process, platform and garbage-collector collectors (names vary by platform).
PROMETHEUS_SERIES = frozenset({"up"})
CLIENT_PREFIXES = ("process_", "python_")
CLIENT_LABELS = frozenset({"generation", "implementation", "major", "minor", "patchlevel"})

_SUFFIXES: dict[str, dict[str, frozenset[str]]] = {
    "counter": {"_total": frozenset(), "_created": frozenset()},
    "gauge": {"": frozenset()},
    "histogram": {
        "_bucket": frozenset({"le"}),
        "_sum": frozenset(),
        "_count": frozenset(),
        "_created": frozenset(),
    },
    "summary": {"": frozenset({"quantile"}), "_sum": frozenset(), "_count": frozenset()},
    "info": {"_info": frozenset()},
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def tool(name: str, *, installed_by: str, also: tuple[str, ...] = ()) -> str:
    """The tool's path; skipped loudly (failed under REQUIRE_SERVICES=1) when missing."""
    found = shutil.which(name) or next((p for p in also if Path(p).is_file()), None)
    if found is None:
        skip_suite(name, f"{name} is not installed (`make {installed_by}` installs it, as root)")
    assert found is not None
    return found


def run_tool(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def unit_settings(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd-style file: section → key → every value given (keys may repeat)."""
    found: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = found.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return found


@cache
def exported_families() -> dict[str, dict[str, frozenset[str]]]:
    """Every family in Gatehouse's registry → its series names → the label names a query
    may use on each once Prometheus has stored it."""
    families: dict[str, dict[str, frozenset[str]]] = {}
    # The registry's own list of what it collects: a metric defined elsewhere and
    # registered there counts too.
    for collector in list(metrics.REGISTRY._collector_to_names):
        if not isinstance(collector, MetricWrapperBase):
            continue  # the process/platform/gc collectors: CLIENT_PREFIXES
        own = frozenset(
            f"exported_{label}" if label in TARGET_LABELS else label
            for label in collector._labelnames
        )
        families[collector._name] = {
            collector._name + suffix: own | extra | TARGET_LABELS
            for suffix, extra in _SUFFIXES[str(collector._type)].items()
        }
    return families


@cache
def exported_series() -> dict[str, frozenset[str]]:
    """Every series name Gatehouse exports → the label names a query may use on it."""
    return {
        name: labels for family in exported_families().values() for name, labels in family.items()
    }


def allowed_labels(name: str) -> frozenset[str] | None:
    """The labels a query may use on this series; None when it is no known series."""
    if name in PROMETHEUS_SERIES:
        return TARGET_LABELS
    if name.startswith(CLIENT_PREFIXES):
        return TARGET_LABELS | CLIENT_LABELS | {"version"}
    return exported_series().get(name)


@cache
def route_templates() -> frozenset[str]:
    """The route templates the request metrics' `route` label takes (and `unmatched`)."""
    app = create_app(Settings(server=ServerSettings(env=Environment.test)))
    contexts = iter_route_contexts(app.routes)
    paths = {str(context.path_format) for context in contexts if context.path_format}
    return frozenset(paths | {"unmatched"})


# --- PromQL ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str


@dataclass(frozen=True)
class Selector:
    """One metric an expression reads, with its label matchers."""

    metric: str
    matchers: tuple[Matcher, ...]


# Aggregations may put `by (...)` or `without (...)` between their name and their `(`.
_AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
    | {"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
)
# Words of PromQL that are not metric names when they stand alone (functions are
# recognised by the `(` that follows them).
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
    | {"by", "without", "on", "ignoring", "group_left", "group_right"}
)
# Followed by a parenthesised list of label names, not by an expression.
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
_STRING_LITERAL = re.compile(_STRING)
_MATCHER = re.compile(rf"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*({_STRING})\s*,?")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER = re.compile(r"(?:0x[0-9a-fA-F]+|[0-9.]+(?:[eE][+-]?[0-9]+)?[a-zA-Z0-9]*)")
# Grafana's variables: $__rate_interval, ${datasource}, [[var]] is not used.
_VARIABLE = re.compile(r"\$(?:\{[^}]*\}|\w+)")


def _unquote(literal: str) -> str:
    if literal.startswith("`"):
        return literal[1:-1]
    body = literal[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _skip_string(expr: str, start: int) -> int:
    match = _STRING_LITERAL.match(expr, start)
    if match is None:
        raise ValueError(f"unterminated string at {start} in {expr!r}")
    return match.end()


def _closing(expr: str, start: int, opening: str, closing: str) -> int:
    """The index just past the bracket that closes the one at `start`."""
    depth, i = 0, start
    while i < len(expr):
        char = expr[i]
        if char in "\"'`":
            i = _skip_string(expr, i)
            continue
        if char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {opening!r} at {start} in {expr!r}")


def _matchers(block: str) -> tuple[Matcher, ...]:
    """`{a="x", b=~"y"}` → its matchers (the braces included in `block`)."""
    inner, found, at = block[1:-1], [], 0
    while inner[at:].strip():
        match = _MATCHER.match(inner, at)
        if match is None:
            raise ValueError(f"cannot read label matchers {block!r}")
        found.append(Matcher(match[1], match[2], _unquote(match[3])))
        at = match.end()
    return tuple(found)


def _next_char(expr: str, at: int) -> tuple[int, str]:
    while at < len(expr) and expr[at].isspace():
        at += 1
    return at, expr[at] if at < len(expr) else ""


def selectors(expr: str) -> list[Selector]:
    """The metrics a PromQL expression reads: identifiers followed by `{` or `[` or
    standing alone, leaving out functions, aggregations, keywords, label names,
    strings, durations, numbers and Grafana's `$variables`."""
    found: list[Selector] = []
    i = 0
    while i < len(expr):
        char = expr[i]
        if char.isspace():
            i += 1
        elif char in "\"'`":
            i = _skip_string(expr, i)
        elif char == "$":
            match = _VARIABLE.match(expr, i)
            i = match.end() if match else i + 1
        elif char == "[":
            i = _closing(expr, i, "[", "]")  # a range, a subquery's step: durations
        elif char == "{":
            raise ValueError(f"a selector without a metric name in {expr!r}")
        elif char.isdigit() or (char == "." and expr[i + 1 : i + 2].isdigit()):
            number = _NUMBER.match(expr, i)
            i = number.end() if number else i + 1
        elif _IDENTIFIER.match(expr, i):
            word = _IDENTIFIER.match(expr, i)
            assert word is not None
            name, i = word[0], word.end()
            at, following = _next_char(expr, i)
            if name.lower() in _GROUPING:
                i = _closing(expr, at, "(", ")") if following == "(" else i
            elif following == "(" or name.lower() in _KEYWORDS | _AGGREGATIONS:
                continue  # a function or an aggregation; a keyword
            elif following == "{":
                end = _closing(expr, at, "{", "}")
                found.append(Selector(name, _matchers(expr[at:end])))
                i = end
            else:
                found.append(Selector(name, ()))
        else:
            i += 1
    return found


def problems_with(expr: str) -> Iterator[str]:
    """What is wrong with the metrics and labels an expression reads, if anything."""
    for selector in selectors(expr):
        labels = allowed_labels(selector.metric)
        if labels is None:
            yield f"{selector.metric} is not exported by Gatehouse"
            continue
        for matcher in selector.matchers:
            if matcher.label not in labels:
                yield f"{selector.metric} has no label {matcher.label!r}"
            if matcher.label == "route" and matcher.op in ("=", "=~"):
                yield from _unknown_routes(selector.metric, matcher)
            if matcher.label == "job" and matcher.op in ("=", "=~"):
                pattern = re.compile(
                    matcher.value if matcher.op == "=~" else re.escape(matcher.value)
                )
                if not any(pattern.fullmatch(job) for job in SCRAPE_JOBS):
                    yield (
                        f"{selector.metric}{{job{matcher.op}{matcher.value!r}}}: `job` is the "
                        f"scrape job, one of {sorted(SCRAPE_JOBS)}"
                    )


def _unknown_routes(metric: str, matcher: Matcher) -> Iterator[str]:
    """Each alternative of a route matcher must match some route template: a renamed
    route must not leave an alert or a panel looking at nothing."""
    alternatives = matcher.value.split("|") if matcher.op == "=~" else [re.escape(matcher.value)]
    for alternative in alternatives:
        pattern = re.compile(alternative)
        if not any(pattern.fullmatch(route) for route in route_templates()):
            yield f"{metric}{{route{matcher.op}...}}: no route template matches {alternative!r}"
