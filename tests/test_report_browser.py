"""The report in a real browser: headless Chromium (Debian's `chromium`; .ci/run installs it) opens the HTML file
with the network cut off, and the test checks what a person would see: every chart drawn (non-blank pixels in its
box of a full-page screenshot), one SVG per chart holding one element per figure of its table, every table within
its panel, the headline's sentences shown, and nothing logged, thrown or fetched."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from _browser import find_chromium, open_page

import tinydancer_duck as td
from tinydancer_duck.datasets.generate_log import generate_log
from tinydancer_duck.report import CHARTS, write_report

if find_chromium() is None:
    pytest.skip("no chromium on PATH: `apt-get install chromium` (.ci/run installs it where apt-get can)",
                allow_module_level=True)

#: mark layer -> what it draws, per chart (class "<layer>_marks" in the SVG; see tinydancer_duck/report/_charts.py)
LAYERS = """(() => Object.fromEntries([...document.querySelectorAll('figure.chart')].map(f => [f.dataset.chart,
  Object.fromEntries([...f.querySelectorAll('g.role-mark')].map(g => [g.getAttribute('class').split(' ').pop(),
    g.querySelectorAll('path, line, text').length]))])))()"""
#: each data table's width against its panel's (a table wider than its section would be cut off or scroll)
FIT = """[...document.querySelectorAll('table[data-table]')].map(t => { const s = t.closest('section');
  const r = t.getBoundingClientRect(), p = s.getBoundingClientRect();
  return {name: t.dataset.table, scroll: t.scrollWidth, width: Math.round(r.width), panel: s.clientWidth,
          right: Math.round(r.right), panelRight: Math.round(p.right), overflow: getComputedStyle(t.parentElement)
          .overflowX}; })"""
HEADLINE = """[...document.querySelectorAll('.headline p[data-question]')].map(p => ({question: p.dataset.question,
  text: p.innerText, visible: p.getBoundingClientRect().height > 0}))"""
BOXES = """[...document.querySelectorAll('figure.chart svg')].map(s => { const r = s.getBoundingClientRect();
  return {x: Math.round(r.x + scrollX), y: Math.round(r.y + scrollY), width: Math.round(r.width),
          height: Math.round(r.height)}; })"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    log = folder / "log.parquet"
    pq.write_table(generate_log(900, seed=11), log)
    engine = td.Engine(folder / "store")
    engine.import_agents(str(log))
    engine.outcomes.train_log(str(log), holdout=0.2)
    return write_report(engine, str(log), folder / "report.html", holdout=0.2, points=10,
                        budgets=[0.05, 0.2, 0.5, 1.0, 3.0])


def test_chromium_draws_every_chart(report, tmp_path):
    data = report["data"]
    with open_page(Path(report["path"])) as page:
        assert page.evaluate("document.querySelectorAll('figure.chart > svg').length") == len(CHARTS)
        layers = page.evaluate(LAYERS)
        boxes = page.evaluate(BOXES)
        fit = page.evaluate(FIT)
        headline = page.evaluate(HEADLINE)
        png = page.screenshot(tmp_path / "report.png")
        said = page.messages()
        stats = page.region_stats(png, [*boxes, {"x": 0, "y": 0, "width": 12, "height": 12}])
    assert said["errors"] == [] and said["console"] == [] and said["log"] == []
    assert said["requests"] == [Path(report["path"]).resolve().as_uri()]  # the page fetched nothing else
    assert list(layers) == list(CHARTS)
    agents, budgets = len(data.agents), data.whatif.num_rows
    assert layers["curve"]["router_points_marks"] == 10 and layers["curve"]["agent_points_marks"] == agents == 3
    assert layers["curve"]["agent_labels_marks"] == agents and layers["curve"]["oracle_point_marks"] == 1
    assert layers["curve"]["actual_point_marks"] == layers["curve"]["calibrated_point_marks"] == 1
    assert layers["whatif"]["frontier_points_marks"] == budgets == 5 and layers["whatif"]["agent_points_marks"] == 3
    assert layers["whatif"]["threshold_rule_marks"] == layers["whatif"]["actual_rule_marks"] == 1
    assert layers["mix"]["mix_bars_marks"] == len(data.mix)
    assert layers["savings"]["cost_bars_marks"] == layers["savings"]["quality_bars_marks"] == len(data.policies)
    assert all(b["width"] > 300 and b["height"] > 100 for b in boxes), boxes
    for name, box in zip(CHARTS, stats):  # drawn: varied pixels and some ink in every chart's box
        assert box["std"] > 15 and box["ink"] > 0.03, (name, box)
    assert stats[-1]["std"] == 0  # a corner of the page's plain background, for contrast
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    assert [f["name"] for f in fit] == list(CHARTS)
    for table in fit:  # every table fits its panel: no column cut off, no horizontal scrollbar
        assert table["scroll"] <= table["width"] <= table["panel"] and table["right"] <= table["panelRight"], table
    assert [(h["question"], h["text"]) for h in headline] == data.headline and all(h["visible"] for h in headline)
    assert headline[0]["question"] == "savings" and "the log's actual policy" in headline[0]["text"]
