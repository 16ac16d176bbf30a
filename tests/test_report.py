"""The report: one self-contained HTML file whose figures and tables are the replays' own; the curve and what-if
charts the CLI writes; output paths checked before any work."""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from tinydancer_duck.datasets.generate_log import generate_log

import tinydancer_duck as td
from tinydancer_duck._logs import held_out
from tinydancer_duck.cli._main import main
from tinydancer_duck.errors import InvalidArgument, TinydancerError
from tinydancer_duck.replay import budget_whatif, curve, simulate
from tinydancer_duck.report import CHARTS, curve_chart, render, whatif_chart, write_report

pytest.importorskip("vl_convert", reason='charts need vl-convert-python: pip install "tinydancer_duck[charts]"')
ROUTERBENCH = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "routerbench"
HOLDOUT = 0.2


class Page(HTMLParser):
    """Every tag's attributes, and each data table's rows as text cells."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "table":
            self._table = attributes.get("data-table")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag == "td" and self._table:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag == "td" and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def rows(self, name: str) -> list[list[str]]:
        return [row for row in self.tables[name] if row]  # the header row has th cells only


def number(text: str) -> float | None:
    return None if text == "–" else float("inf") if text == "∞" else float(text.replace(",", ""))


def same(text: str, value) -> bool:
    if value is None:
        return text == "–"
    if isinstance(value, bool):
        return text == ("yes" if value else "no")
    if isinstance(value, str):
        return text == value
    return number(text) == pytest.approx(value, rel=1e-5, abs=1e-12)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A generated log with an actual policy, its agents imported and an outcome router trained with a holdout."""
    folder = tmp_path_factory.mktemp("report")
    log = folder / "log.parquet"
    pq.write_table(generate_log(1200, seed=3), log)
    engine = td.Engine(folder / "store")
    engine.import_agents(str(log))
    engine.outcomes.train_log(str(log), holdout=HOLDOUT)
    written = write_report(engine, str(log), folder / "report.html", holdout=HOLDOUT, points=12)
    return {"engine": engine, "log": str(log), "folder": folder, "written": written,
            "text": Path(written["path"]).read_text()}


def test_the_report_is_self_contained(generated):
    text = generated["text"]
    page = Page(text)
    for tag, attributes in page.tags:
        for name in ("src", "href", "xlink:href", "action", "poster", "data"):
            value = attributes.get(name)
            assert value is None or value.startswith(("data:", "#")), f"<{tag} {name}={value!r}>"
        assert tag not in ("script", "link", "iframe", "object", "embed", "img"), tag
    # the only http(s) addresses are the SVG namespace names, which nothing fetches
    addresses = re.findall(r'(\S+)="(https?://[^"]*)"', text) + re.findall(r"url\(\s*['\"]?https?:", text)
    assert addresses and all(n in ("xmlns", "xmlns:xlink") for n, _ in addresses), addresses
    assert "@import" not in text
    csp = next(a for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert csp["content"].startswith("default-src 'none'")
    charts = [a["data-chart"] for t, a in page.tags if t == "figure"]
    assert charts == list(CHARTS) and text.count("<svg") == len(CHARTS)
    assert generated["written"]["bytes"] == len(text.encode())


def test_the_report_shows_the_replays_figures(generated):
    engine, log, page = generated["engine"], generated["log"], Page(generated["text"])
    data = generated["written"]["data"]
    table, result = curve(engine, log, points=12, holdout=HOLDOUT)
    assert data.aiq["aiq_router"] == pytest.approx(result["aiq_router"])
    assert f"AIQ router {result['aiq_router']:.4g}" in generated["text"]
    assert f"zero router {result['aiq_zero_router']:.4g}" in generated["text"]
    assert result["aiq_router"] > result["aiq_zero_router"]  # the router beats mixing single agents here
    keys = ("series", "label", "willingness_to_pay", "cost", "quality", "total_cost", "requests", "on_hull")
    rows = page.rows("curve")
    assert len(rows) == table.num_rows == 12 + 3 + 1
    for cells, row in zip(rows, table.to_pylist()):
        assert all(same(c, row[k]) for c, k in zip(cells, keys)), (cells, row)
    frontier = budget_whatif(engine, log, data.whatif["budget"].to_pylist(), holdout=HOLDOUT,
                             quality_threshold=data.quality_threshold).to_pylist()
    keys = ("budget", "spend", "estimated_spend", "budget_overrun", "willingness_to_pay", "expected_quality",
            "quality", "served", "requests", "meets_quality_threshold")
    assert len(page.rows("whatif")) == len(frontier) >= 8
    for cells, row in zip(page.rows("whatif"), frontier):
        assert all(same(c, row[k]) for c, k in zip(cells, keys)), (cells, row)
    best = max(r["quality"] for r in table.to_pylist() if r["series"] == "zero_router")
    assert data.quality_threshold == pytest.approx(0.95 * best)


def test_savings_and_mix_are_against_the_logs_actual_policy(generated):
    engine, log, page = generated["engine"], generated["log"], Page(generated["text"])
    table = pq.read_table(log)
    held = held_out(table["request"].combine_chunks(), HOLDOUT)
    actual_cost = float(np.asarray(table["cost"])[held].sum())
    actual_quality = float(np.asarray(table["quality"])[held].mean())
    savings = {row[0]: row for row in page.rows("savings")}
    assert same(savings["actual (log)"][2], actual_cost) and same(savings["actual (log)"][4], actual_quality)
    _, learned = simulate(engine, log, optimize_for="learned", holdout=HOLDOUT, keep_rows=False)
    row = savings["router at calibrated price"]
    assert same(row[2], learned["total_cost"]) and same(row[4], learned["mean_quality"])
    assert same(row[5], actual_cost - learned["total_cost"]) and same(row[5], learned["savings"])
    assert row[8] == "observed 100%" and row[9] == "logged 100%"  # every figure of a wide log is observed
    assert {"oracle (best observed per request)", "router: cheapest"} <= set(savings)
    agents, counts = np.unique(np.asarray(table["agent"])[held], return_counts=True)
    mix = {(r[0], r[1]): number(r[2]) for r in page.rows("mix")}
    assert {a: mix[("actual (log)", a)] for a in agents} == dict(zip(agents, counts))
    assert sum(n for (policy, _), n in mix.items() if policy == "router at calibrated price") == held.sum()


@pytest.fixture(scope="module")
def routerbench(tmp_path_factory):
    log = ROUTERBENCH / "mbpp_train.parquet"
    if not log.exists():
        pytest.skip("the shared RouterBench logs are not beside the repo")
    folder = tmp_path_factory.mktemp("routerbench")
    engine = td.Engine(folder / "store")
    engine.import_agents(str(log))
    engine.outcomes.train_log(str(log), holdout=HOLDOUT)
    return engine, str(log), folder


def test_a_log_without_an_actual_policy_says_so(routerbench):
    engine, log, folder = routerbench
    written = write_report(engine, log, folder / "mbpp.html", holdout=HOLDOUT, budgets=[0.01, 0.1, 1.0])
    text, data = Path(written["path"]).read_text(), written["data"]
    assert data.actual is None and "This log has no actual policy" in text
    page = Page(text)
    assert [r[0] for r in page.rows("savings")][:1] == ["router at calibrated price"]
    assert all(r[5] == "–" for r in page.rows("savings"))  # no savings against a policy the log does not have
    assert not any(r[0] == "actual (log)" for r in page.rows("mix"))
    assert [number(r[0]) for r in page.rows("whatif")] == [0.01, 0.1, 1.0]
    held = held_out(pq.read_table(log)["prompt"].combine_chunks(), HOLDOUT)
    assert len(data.agents) == 11 and data.requests == int(held.sum()) == 62
    assert data.warnings == []  # out of sample, and the store's agents are the log's


def test_charts_draw_one_mark_per_figure(generated):
    engine, log = generated["engine"], generated["log"]
    table, result = curve(engine, log, points=9, holdout=HOLDOUT)
    svg = render(curve_chart(table, result, actual={"cost": 0.001, "quality": 0.8}))
    assert render(curve_chart(table, result, actual={"cost": 0.001, "quality": 0.8})) == svg  # reproducible
    counts = marks(svg)
    assert counts["router_points_marks"] == 9 and counts["agent_points_marks"] == 3
    assert counts["oracle_point_marks"] == counts["actual_point_marks"] == 1 and "calibrated_point_marks" not in counts
    frontier = budget_whatif(engine, log, [0.1, 0.5, 2.0], holdout=HOLDOUT)
    agents = [r for r in table.to_pylist() if r["series"] == "zero_router"]
    counts = marks(render(whatif_chart(frontier, agents=agents, quality_threshold=0.8)))
    assert counts["frontier_points_marks"] == 3 and counts["agent_points_marks"] == 3
    assert counts["threshold_rule_marks"] == 1 and "actual_rule_marks" not in counts
    assert render(whatif_chart(frontier), "png")[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InvalidArgument, match="spec"):  # nothing is fetched: a data URL is refused
        render({"data": {"url": "https://example.com/log.csv"}, "mark": "point"})


def marks(svg: str) -> dict[str, int]:
    """Layer name -> number of drawn elements (one per datum) in a rendered chart."""
    out = {}
    for name, body in re.findall(r'<g class="mark-\w+ role-mark (\w+)"[^>]*>(.*?)</g>', svg):
        out[name] = len(re.findall(r"<(?:path|line|text)\b", body))
    return out


def test_bad_output_paths_name_the_argument_before_any_work(generated, tmp_path, capsys):
    missing = tmp_path / "no-such-folder" / "report.html"
    with pytest.raises(InvalidArgument, match="output") as caught:
        write_report(generated["engine"], str(tmp_path / "no-such-log.parquet"), missing)  # the log is not read
    assert caught.value.argument == "output"
    store = str(generated["engine"].store.path)
    for argv, argument in (
            (["report", generated["log"], "--store", store, "-o", str(missing)], "--output"),
            (["report", generated["log"], "--store", store, "-o", str(tmp_path / "report.pdf")], "--output"),
            (["curve", generated["log"], "--store", store, "--chart", str(tmp_path / "curve.jpg")], "--chart"),
            (["curve", generated["log"], "--store", store, "--output", str(tmp_path / "x" / "c.csv")], "--output"),
            (["whatif", generated["log"], "--store", store, "--budgets", "1", "--output", str(tmp_path / "w.csv"),
              "--chart", str(tmp_path / "x" / "w.svg")], "--chart")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"tinydancer: invalid {argument}=") and "\n" not in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the what-if table


def test_curve_and_whatif_commands_write_tables_and_charts(generated, tmp_path, capsys):
    store, log = str(generated["engine"].store.path), generated["log"]
    assert main(["curve", log, "--store", store, "--points", "6", "--holdout", "0.2",
                 "--output", str(tmp_path / "curve.csv"), "--chart", str(tmp_path / "curve.svg")]) == 0
    out = capsys.readouterr().out
    table, result = curve(generated["engine"], log, points=6, holdout=HOLDOUT)
    assert f"AIQ router {result['aiq_router']:.4f}, zero router {result['aiq_zero_router']:.4f}" in out
    lines = (tmp_path / "curve.csv").read_text().splitlines()
    assert lines[0].startswith('"series","label","willingness_to_pay"') and len(lines) == table.num_rows + 1
    counts = marks((tmp_path / "curve.svg").read_text())
    assert counts["router_points_marks"] == 6 and counts["actual_point_marks"] == 1
    assert counts["calibrated_point_marks"] == 1  # the store has a calibrated outcome router
    assert main(["whatif", log, "--store", store, "--budgets", "0.2,1,5", "--holdout", "0.2",
                 "--quality-threshold", "0.8", "--output", str(tmp_path / "w.csv"),
                 "--chart", str(tmp_path / "w.png")]) == 0
    assert f"and {tmp_path / 'w.png'}" in capsys.readouterr().out
    assert (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"


def test_missing_charts_extra_is_one_line_naming_it(generated, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "vl_convert", None)  # import vl_convert now raises ImportError
    with pytest.raises(TinydancerError, match=re.escape('pip install "tinydancer_duck[charts]"')):
        render({"mark": "point"})
    store, log = str(generated["engine"].store.path), generated["log"]
    assert main(["report", log, "--store", store, "-o", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err.strip() == ('tinydancer: charts need vl-convert-python: '
                                               'pip install "tinydancer_duck[charts]"')
    assert main(["whatif", log, "--store", store, "--budgets", "1", "--output", str(tmp_path / "w.csv")]) == 0
    assert 'no chart: charts need vl-convert-python' in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.csv"]
