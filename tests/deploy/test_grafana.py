"""deploy/grafana/gatehouse.json: the dashboard imports cleanly and every panel reads
series Gatehouse exports, by labels they have."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.deploy.support import DEPLOY, exported_families, problems_with, selectors

DASHBOARD = DEPLOY / "grafana" / "gatehouse.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def every_panel(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Panels, rows included, and the panels kept inside collapsed rows."""
    for panel in panels:
        yield panel
        yield from every_panel(panel.get("panels", []))


def graphs() -> list[dict[str, Any]]:
    return [panel for panel in every_panel(dashboard()["panels"]) if panel["type"] != "row"]


def test_the_dashboard_is_current_json_with_a_prometheus_datasource_variable() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 36
    assert board["uid"] == "gatehouse"
    assert board["title"]
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    panels = list(every_panel(dashboard()["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    boxes = [panel["gridPos"] for panel in panels]
    for box in boxes:
        assert box["x"] >= 0, box
        assert box["x"] + box["w"] <= 24, box
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = (
                a["x"] + a["w"] <= b["x"]
                or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"]
                or b["y"] + b["h"] <= a["y"]
            )
            assert apart, (a, b)


def test_every_panel_queries_the_chosen_prometheus() -> None:
    for panel in graphs():
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_every_panel_reads_series_gatehouse_exports_by_labels_they_have() -> None:
    problems = {
        f"{panel['title']} ({target['refId']})": list(problems_with(target["expr"]))
        for panel in graphs()
        for target in panel["targets"]
    }
    assert {where: found for where, found in problems.items() if found} == {}


def test_every_family_gatehouse_exports_has_a_panel() -> None:
    read = {
        selector.metric
        for panel in graphs()
        for target in panel["targets"]
        for selector in selectors(target["expr"])
    }
    unseen = [family for family, series in exported_families().items() if not read & set(series)]
    assert unseen == []
