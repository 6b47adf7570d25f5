"""deploy/prometheus: the scrape config, the alert rules and their unit tests.

promtool checks what Prometheus would load and runs the rules' unit tests; the tests
here check what promtool cannot: that every alert is tested both ways, that its runbook
exists, and that it reads only series Gatehouse exports, by labels they have.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.support import (
    DEPLOY,
    ROOT,
    SCRAPE_JOBS,
    Matcher,
    Selector,
    load_yaml,
    problems_with,
    run_tool,
    selectors,
    tool,
)

PROMETHEUS = DEPLOY / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
ALERT_TESTS = PROMETHEUS / "alerts.test.yml"
SCRAPE_CONFIG = PROMETHEUS / "prometheus.yml"
OPERATIONS = ROOT / "docs" / "operations.md"


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(ALERTS)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def promtool() -> str:
    return tool("promtool", installed_by="promtool")


# --- promtool -------------------------------------------------------------------------


def test_promtool_accepts_the_rules() -> None:
    result = run_tool(promtool(), "check", "rules", str(ALERTS.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_the_rules_unit_tests_pass() -> None:
    result = run_tool(promtool(), "test", "rules", str(ALERT_TESTS.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_accepts_the_scrape_config_and_the_rules_it_loads() -> None:
    result = run_tool(promtool(), "check", "config", str(SCRAPE_CONFIG.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


# --- the scrape config ----------------------------------------------------------------


def test_the_scrape_config_has_the_three_jobs_the_alerts_select() -> None:
    config = load_yaml(SCRAPE_CONFIG)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == SCRAPE_JOBS
    # `job` is the scrape job's: no exported label may replace it.
    assert not any(job.get("honor_labels") for job in jobs.values())
    assert config["rule_files"] == ["alerts.yml"]
    selected = {
        matcher.value
        for rule in alert_rules()
        for selector in selectors(rule["expr"])
        for matcher in selector.matchers
        if matcher.label == "job"
    }
    assert selected, "no alert selects a scrape job"
    assert selected <= SCRAPE_JOBS


# --- every alert: tested, documented, reading what exists ------------------------------


def test_the_alerts_are_named_once_and_labelled_for_routing() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook"} <= set(annotations), rule["alert"]
        assert all(annotations[key].strip() for key in ("summary", "description"))


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in load_yaml(ALERT_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fires == set(), "alerts no unit test fires"
    assert names - quiet == set(), "alerts no unit test shows staying quiet"
    assert (fires | quiet) - names == set(), "unit tests of alerts that do not exist"


def github_anchors(markdown: str) -> list[str]:
    """The anchors GitHub gives the headings (outside code blocks) of a Markdown page."""
    anchors: list[str] = []
    seen: dict[str, int] = {}
    fence: str | None = None
    for line in markdown.splitlines():
        stripped = line.lstrip()
        marker = stripped[:3]
        if marker in ("```", "~~~"):
            fence = None if fence == marker else (fence or marker)
            continue
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fence is not None or heading is None:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading[1])  # links: their text
        text = re.sub(r"[`*]", "", text).strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.append(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_github_anchors_follow_githubs_rules() -> None:
    page = (
        "# Operating Gatehouse\n"
        "## Behind a reverse proxy\n"
        "```nginx\n# not a heading\n```\n"
        "### `GatehouseOutboxLag`\n"
        "## Redis, rate limits, brute-force protection and the cache\n"
        "## Logs\n## Logs\n"
    )
    assert github_anchors(page) == [
        "operating-gatehouse",
        "behind-a-reverse-proxy",
        "gatehouseoutboxlag",
        "redis-rate-limits-brute-force-protection-and-the-cache",
        "logs",
        "logs-1",
    ]


def test_every_runbook_is_its_own_section_of_the_operations_guide() -> None:
    anchors = set(github_anchors(OPERATIONS.read_text()))
    runbooks: dict[str, str] = {}
    for rule in alert_rules():
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/operations.md", rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no heading gives #{anchor}"
        runbooks[rule["alert"]] = anchor
    assert len(set(runbooks.values())) == len(runbooks), "alerts sharing a runbook section"


def test_alerts_read_only_series_gatehouse_exports_by_labels_they_have() -> None:
    problems = {rule["alert"]: list(problems_with(rule["expr"])) for rule in alert_rules()}
    assert {alert: found for alert, found in problems.items() if found} == {}
    for rule in alert_rules():
        assert selectors(rule["expr"]), f"{rule['alert']} reads no metric"


# --- the checker the last test relies on ----------------------------------------------


def test_selectors_find_the_metrics_and_nothing_else() -> None:
    expr = (
        'sum by (le, route) (rate(a_bucket{route=~"/x|/y", le!="+Inf"}[5m])) > 0.5\n'
        "and on (job) group_left(instance) b offset 1h\n"
        "or max without (instance) (c) - time() > bool 4 * (d or vector(0))\n"
        '+ label_replace(e, "f", "g{h}", "i", "j")'
    )
    assert selectors(expr) == [
        Selector("a_bucket", (Matcher("route", "=~", "/x|/y"), Matcher("le", "!=", "+Inf"))),
        Selector("b", ()),
        Selector("c", ()),
        Selector("d", ()),
        Selector("e", ()),
    ]
    assert [s.metric for s in selectors("rate(x_total[$__rate_interval]) * 1e3")] == ["x_total"]


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("gatehouse_logins", "gatehouse_logins is not exported by Gatehouse"),
        (
            'gatehouse_logins_total{result="invalid"}',
            "gatehouse_logins_total has no label 'result'",
        ),
        (
            'gatehouse_beat_last_run_timestamp_seconds{job="maintenance.sweep"} > 0',
            "`job` is the scrape job",
        ),
        ('gatehouse_beat_last_run_timestamp_seconds{task="maintenance.sweep"}', ""),
        ('up{job=~"gatehouse-.*"}', ""),
        ("gatehouse_db_pool_wait_seconds_bucket{route='/'}", "has no label 'route'"),
        (
            'gatehouse_http_requests_total{route="/api/v1/users/{id}"}',
            "no route template matches",
        ),
    ],
)
def test_the_checker_names_what_is_wrong(expr: str, problem: str) -> None:
    found = list(problems_with(expr))
    if problem:
        assert any(problem in line for line in found), found
    else:
        assert found == []
