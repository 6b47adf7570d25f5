"""docs/metrics.md lists every family Gatehouse registers, and only those, with their
type; and every family's name follows Prometheus' conventions."""

from __future__ import annotations

import re
from pathlib import Path

from gatehouse.kit import metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
# A table row whose first cell is a family: | `name` | type | labels | meaning | where |
ROW = re.compile(r"^\|\s*`(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*(?P<type>[a-z]+)\s*\|")
# Base units only (Prometheus' naming guide): seconds and bytes, not their multiples.
NOT_BASE_UNITS = ("_milliseconds", "_ms", "_minutes", "_hours", "_days", "_kilobytes",
                  "_megabytes", "_percent", "_microseconds")  # fmt: skip
HISTOGRAM_UNITS = ("_seconds", "_bytes")
# Labels whose values have no bound: a series per user, path or address.
UNBOUNDED_LABELS = {"path", "url", "user_id", "id", "email", "ip", "client_ip", "request_id"}


def documented() -> dict[str, str]:
    """name -> type, from every table row of the doc that names a family."""
    found: dict[str, str] = {}
    for line in DOC.read_text().splitlines():
        match = ROW.match(line)
        if match:
            assert match["name"] not in found, f"{match['name']} is listed twice"
            found[match["name"]] = match["type"]
    return found


def registered() -> dict[str, str]:
    """name (as exposed: a counter's with `_total`) -> type, of kit.metrics.REGISTRY."""
    families = {}
    for family in metrics.REGISTRY.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        families[name] = family.type
    return families


def test_every_registered_family_is_documented_with_its_type() -> None:
    doc = documented()
    missing = sorted(set(registered()) - set(doc))
    assert not missing, f"registered but not in docs/metrics.md: {missing}"
    wrong = {n: (t, doc[n]) for n, t in registered().items() if doc[n] != t}
    assert not wrong, f"(registered type, documented type): {wrong}"


def test_every_documented_family_is_registered() -> None:
    extra = sorted(set(documented()) - set(registered()))
    assert not extra, f"in docs/metrics.md but not registered: {extra}"


def test_the_doc_is_read_as_expected() -> None:
    # The parser finds the tables (a doc whose format drifted would pass the two above
    # vacuously only if nothing were registered either).
    doc = documented()
    assert doc["gatehouse_http_requests_total"] == "counter"
    assert doc["gatehouse_db_pool_wait_seconds"] == "histogram"
    assert len(doc) == len(registered()) > 30


def test_names_follow_the_conventions() -> None:
    problems = []
    for family in metrics.REGISTRY.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        if name.startswith(("process_", "python_")):
            continue  # prometheus-client's own process families
        if not re.fullmatch(r"gatehouse_[a-z0-9_]+", name):
            problems.append(f"{name}: not gatehouse_ and snake case")
        if family.type != "counter" and name.endswith("_total"):
            problems.append(f"{name}: only counters end in _total")
        if family.type == "histogram" and not name.endswith(HISTOGRAM_UNITS):
            problems.append(f"{name}: a histogram ends in its base unit {HISTOGRAM_UNITS}")
        if any(unit in name for unit in NOT_BASE_UNITS):
            problems.append(f"{name}: not a base unit")
        if "timestamp" in name and not name.endswith("_timestamp_seconds"):
            problems.append(f"{name}: a timestamp is in seconds (_timestamp_seconds)")
        if not family.documentation.strip():
            problems.append(f"{name}: no help text")
    assert not problems, "\n".join(problems)


def test_counters_are_declared_with_their_total_suffix() -> None:
    # prometheus-client adds `_total` to a counter's name by itself; declaring it keeps
    # the name in kit/metrics.py the one a query uses.
    source = (Path(metrics.__file__)).read_text()
    declared = re.findall(r'Counter\(\s*"([^"]+)"', source)
    assert declared
    assert [name for name in declared if not name.endswith("_total")] == []


def test_labels_are_bounded() -> None:
    labelled = [
        (family._name, label)
        for family in vars(metrics).values()
        if hasattr(family, "_labelnames")
        for label in family._labelnames
    ]
    assert labelled
    assert [(name, label) for name, label in labelled if label in UNBOUNDED_LABELS] == []
