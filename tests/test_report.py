"""The report: one self-contained HTML file whose figures and tables are the replays' own; the curve and what-if
charts the CLI writes; output paths checked before any work."""

from __future__ import annotations

import html
import re
import sys
from dataclasses import replace
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import tinydancer_duck as td
from tinydancer_duck._logs import held_out
from tinydancer_duck.cli._main import main
from tinydancer_duck.datasets.generate_log import agent_specs, generate_log
from tinydancer_duck.errors import InvalidArgument, TinydancerError
from tinydancer_duck.replay import budget_whatif, curve, simulate
from tinydancer_duck.report import (
    CHARTS,
    best_policy,
    curve_chart,
    gather,
    mix_chart,
    render,
    whatif_chart,
    write_report,
)
from tinydancer_duck.report._charts import SHAPE_WORDS, agent_colors
from tinydancer_duck.report._html import chart_specs

ROUTERBENCH = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "routerbench"
HOLDOUT = 0.2


class Page(HTMLParser):
    """Every tag's attributes, each data table's rows as text cells (a figure without its interval) and the
    intervals shown beside figures (``<span class="iv">``) per table."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.intervals: dict[str, list[str]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._interval: list[str] | None = None
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
        elif tag == "span" and attributes.get("class") == "iv" and self._cell is not None:
            self._interval = []

    def handle_endtag(self, tag):
        if tag == "span" and self._interval is not None:
            self.intervals.setdefault(self._table, []).append("".join(self._interval))
            self._interval = None
        elif tag == "table":
            self._table = None
        elif tag == "td" and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._interval is not None:
            self._interval.append(data)
        elif self._cell is not None:
            self._cell.append(data)

    def rows(self, name: str) -> list[list[str]]:
        return [row for row in self.tables[name] if row]  # the header row has th cells only


def number(text: str) -> float | None:
    """A cell's figure: plain notation only (never 8.07e-05), '–' missing, '∞', '<0.000001' as 0."""
    assert not re.search(r"\de[-+]?\d", text), f"scientific notation in {text!r}"
    if text == "–":
        return None
    if text.startswith("<"):
        return 0.0
    return float("inf") if text == "∞" else float(text.replace(",", "").lstrip("$"))


def same(text: str, value) -> bool:
    """The cell shows ``value`` (to the 3 significant digits or 3 decimals the page gives)."""
    if value is None:
        return text == "–"
    if isinstance(value, bool):
        return text == ("yes" if value else "no")
    if isinstance(value, str):
        return text == value
    return number(text) == pytest.approx(value, rel=5e-3, abs=5e-4)


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
    assert f"AIQ router {result['aiq_router']:.3f}" in generated["text"]
    assert f"zero router {result['aiq_zero_router']:.3f}" in generated["text"]
    assert result["aiq_router"] > result["aiq_zero_router"]  # the router beats mixing single agents here
    replayed = table.to_pylist()
    shown = page.rows("curve")  # policy, w.t.p., mean cost, quality, total cost, on hull
    router = [r for r in replayed if r["series"] == "router"]
    runs = 1 + sum(1 for a, b in pairwise(router) if (a["cost"], a["quality"]) != (b["cost"], b["quality"]))
    assert len(shown) == runs + 3 + 1 < len(replayed)  # equal router points collapsed into one row per run
    for before, after in pairwise(shown):  # no two rows in a row show the same point
        assert before[2:4] != after[2:4], (before, after)
    counts = [int(re.search(r"\((\d+) equal points\)", r[0]).group(1)) if "equal points" in r[0] else 1
              for r in shown[:runs]]
    assert sum(counts) == 12
    firsts = [router[sum(counts[:k])] for k in range(runs)] + replayed[12:]
    for cells, row in zip(shown, firsts):
        assert all(same(c, row[k]) for c, k in zip(cells[2:], ("cost", "quality", "total_cost", "on_hull"))), \
            (cells, row)
    assert [r[0] for r in shown[runs:]] == ["always generalist", "always math-tutor", "always premium", "oracle"]
    assert "Sources: quality observed 100%; cost logged 100%." in generated["text"]  # one caption, not a column
    frontier = budget_whatif(engine, log, data.whatif["budget"].to_pylist(), holdout=HOLDOUT,
                             quality_threshold=data.quality_threshold).to_pylist()
    keys = ("budget", "spend", "estimated_spend", "quality", "expected_quality", "served", "willingness_to_pay",
            "meets_quality_threshold")
    assert len(page.rows("whatif")) == len(frontier) >= 8
    for cells, row in zip(page.rows("whatif"), frontier):
        row = {**row, "served": f"{row['served']:,}/{row['requests']:,}"}
        assert all(same(c, row[k]) for c, k in zip(cells, keys)), (cells, row)
    best = max(r["quality"] for r in replayed if r["series"] == "zero_router")
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
    assert {"oracle (best observed per request)", "router: cheapest"} <= set(savings)
    agents, counts = np.unique(np.asarray(table["agent"])[held], return_counts=True)
    mix = {r[0]: r for r in page.rows("mix")}
    assert mix["actual (log)"][2] == f"{agents[0]} 100%" and number(mix["actual (log)"][1]) == counts[0] == held.sum()
    shares = dict(part.rsplit(" ", 1) for part in mix["router at calibrated price"][2].split(", "))
    assert shares == {m["agent"]: f"{m['share']:.0%}" for m in learned["agent_mix"]}


def test_the_headline_states_the_best_policy_against_the_actual_one(generated):
    """The best policy is the cheapest of the router's policies (and budgets serving every request) whose measured
    quality reaches the threshold; the headline names it with its cost and quality beside the actual policy's."""
    engine, log, data = generated["engine"], generated["log"], generated["written"]["data"]
    candidates = []
    for label, objective in (("router at calibrated price", "learned"), ("router: cheapest", "cost"),
                             ("router: best expected quality", "quality")):
        _, s = simulate(engine, log, optimize_for=objective, holdout=HOLDOUT, keep_rows=False)
        candidates.append((label, s["total_cost"], s["mean_quality"]))
    candidates += [(f"budget ${r['budget']:.3g}", r["spend"], r["quality"]) for r in data.whatif.to_pylist()
                   if r["served"] == r["requests"]]
    meeting = [c for c in candidates if c[2] >= data.quality_threshold]
    label, cost, quality = min(meeting, key=lambda c: c[1]) if meeting else max(candidates, key=lambda c: c[2])
    assert best_policy(data)["policy"] == label
    sentences = dict(data.headline)
    assert list(sentences) == ["savings", "curve", "whatif", "mix"]
    saved = 100 * (data.actual["total_cost"] - cost) / data.actual["total_cost"]
    assert f"would have cost ${cost:.3g} for the {data.requests:,} requests replayed" in sentences["savings"]
    assert f"against ${data.actual['total_cost']:.3g} for the log's actual policy: {saved:.0f}% less" \
        in sentences["savings"]
    assert f"at mean quality {quality:.3f} against {data.actual['quality']:.3f}." in sentences["savings"]
    assert "–" not in sentences["savings"]  # no interval without bounds
    assert sentences["curve"].startswith("Routing beats choosing one agent")
    page = Page(generated["text"])
    assert [a["data-question"] for t, a in page.tags if t == "p" and "data-question" in a] == list(sentences)
    assert html.escape(sentences["savings"]) in generated["text"]


def test_the_headline_shows_intervals_when_the_replays_give_them(generated):
    data = generated["written"]["data"]
    best = best_policy(data)["policy"]
    bounded = [{**p, "quality_low": 0.8, "quality_high": 0.9, "total_cost_low": 0.1, "total_cost_high": 0.2,
                "estimator": "doubly robust"} if p["policy"] == best else p for p in data.policies]
    whatif = [{**r, "quality_low": 0.8, "quality_high": 0.9, "spend_low": 0.1, "spend_high": 0.2,
               "estimator": "doubly robust"} for r in data.whatif.to_pylist()]
    import pyarrow as pa

    with_bounds = replace(data, policies=bounded, whatif=pa.Table.from_pylist(whatif),
                          aiq={**data.aiq, "aiq_router_low": 0.5, "aiq_router_high": 0.6})
    sentences = dict(with_bounds.headline)
    assert "($0.1–$0.2)" in sentences["savings"] and "(0.800–0.900)" in sentences["savings"]
    assert "(95% intervals: doubly robust)" in sentences["savings"]
    assert "(0.500–0.600)" in sentences["curve"]


def test_agents_without_evidence_are_left_out_and_listed(generated, tmp_path):
    """An agent the log never observed and no outcome router covers (helpdesk, a 0.99 prior at $2 a call) is not
    the best single agent, the oracle's choice or the threshold's base; the page lists it; include_unobserved
    compares it on its prior."""
    engine, log = generated["engine"], generated["log"]
    data = generated["written"]["data"]
    engine.register_agent("helpdesk", "human", ["escalation"], cost_per_call=2.0, quality_score=0.99)
    try:
        written = write_report(engine, log, tmp_path / "r.html", holdout=HOLDOUT, points=12)
        included = write_report(engine, log, tmp_path / "i.html", holdout=HOLDOUT, points=12,
                                include_unobserved=True)["data"]
    finally:
        engine.remove_agent("helpdesk")
    left_out, text = written["data"], Path(written["path"]).read_text()
    assert [a["name"] for a in left_out.unobserved] == ["helpdesk"] and not left_out.unobserved_included
    assert [a["label"] for a in left_out.agents] == [a["label"] for a in data.agents]  # helpdesk is no single agent
    assert left_out.quality_threshold == pytest.approx(data.quality_threshold)
    oracle = [r for r in left_out.curve.to_pylist() if r["series"] == "oracle"]
    assert oracle == [r for r in data.curve.to_pylist() if r["series"] == "oracle"]
    assert all(m["agent"] != "helpdesk" for m in left_out.mix)
    assert dict(left_out.headline)["savings"] == dict(data.headline)["savings"]
    assert 'data-unobserved="1"' in text and "<b>helpdesk</b> (human, registered quality 0.990, $2 per call)" in text
    assert "never appear in the log" not in text  # the box says it, not a warning beside it
    assert "helpdesk" in [a["label"] for a in included.agents] and included.unobserved_included
    assert included.quality_threshold == pytest.approx(0.95 * 0.99)


def test_a_log_with_no_evidence_says_every_quality_is_a_prior(generated, tmp_path):
    engine = td.Engine(tmp_path / "store")
    engine.register_agents(agent_specs())
    log = tmp_path / "requests.parquet"
    pq.write_table(pq.read_table(generated["log"], columns=["request_id", "request"]), log)
    data = gather(engine, str(log), points=6)
    assert data.priors_only and len(data.unobserved) == 3 and data.unobserved_included
    assert data.headline[0][0] == "priors" and "every quality below is an agent's registered prior" \
        in data.headline[0][1]
    assert "oracle" not in data.curve["series"].to_pylist()  # nothing observed: no oracle
    assert not any(p["policy"].startswith("oracle") for p in data.policies)


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
    assert counts["quality_bars_marks"] == 9 + 3 + 1  # each replayed point's 95% interval (not the actual's)
    frontier = budget_whatif(engine, log, [0.1, 0.5, 2.0], holdout=HOLDOUT)
    agents = [r for r in table.to_pylist() if r["series"] == "zero_router"]
    counts = marks(render(whatif_chart(frontier, agents=agents, quality_threshold=0.8)))
    assert counts["frontier_points_marks"] == 3 and counts["agent_points_marks"] == 3
    assert counts["threshold_rule_marks"] == 1 and "actual_rule_marks" not in counts
    assert counts["quality_bars_marks"] == 3
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
    out = capsys.readouterr().out
    assert f"frontier written to {tmp_path / 'w.csv'}" in out and f"chart written to {tmp_path / 'w.png'}" in out
    assert (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"


def test_missing_chart_renderer_is_one_line_naming_it(generated, tmp_path, monkeypatch, capsys):
    """vl-convert-python is a dependency (pip install . installs it); an environment that lost it gets one line."""
    monkeypatch.setitem(sys.modules, "vl_convert", None)  # import vl_convert now raises ImportError
    message = ("charts need vl-convert-python, a dependency of tinydancer_duck missing from this environment: "
               "pip install vl-convert-python")
    with pytest.raises(TinydancerError, match=re.escape(message)):
        render({"mark": "point"})
    store, log = str(generated["engine"].store.path), generated["log"]
    assert main(["report", log, "--store", store, "-o", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err.strip() == f"tinydancer: {message}"
    assert list(tmp_path.iterdir()) == []


def test_charts_are_a_dependency_not_an_extra():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("vl-convert-python") for d in project["dependencies"])
    assert project["optional-dependencies"]["charts"] == []  # kept as an empty alias for old install commands


def test_agent_colours_are_stable_across_reports():
    ours = agent_colors(["premium", "generalist", "math-tutor"])
    assert agent_colors(["math-tutor", "generalist", "premium"]) == ours  # order does not matter
    assert agent_colors(["premium", "someone-else"])["premium"] == ours["premium"]  # nor the other agents
    assert len(set(ours.values())) == 3
    many = agent_colors([f"agent-{i}" for i in range(20)])
    assert len(set(many.values())) == 20  # a clash takes the next free colour
    spec = mix_chart([{"policy": "p", "agent": a, "requests": 1, "share": 1 / 3} for a in ours])
    scale = spec["layer"][0]["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"])) == ours


def test_the_text_names_each_mark_as_the_legend_draws_it(generated):
    """The legend's symbols come from one shape scale (color and shape share the series field), and the page
    names each point series by the same shape: the calibrated price is the triangle in both."""
    data = generated["written"]["data"]
    spec = chart_specs(data)["curve"]
    shape = spec["encoding"]["shape"]["scale"]
    legend = dict(zip(shape["domain"], shape["range"]))
    assert legend["router at calibrated price"] == "triangle-up" and legend["oracle"] == "diamond"
    assert spec["encoding"]["color"]["scale"]["domain"] == shape["domain"]  # one legend, not two
    assert all("shape" not in layer["mark"] for layer in spec["layer"])  # marks take the legend's shape
    text = generated["text"]
    for series, words in (("router at calibrated price", "the router at its calibrated price"),
                          ("oracle", "the oracle"), ("actual policy", "the log's actual policy")):
        assert f"{words} ({SHAPE_WORDS[legend[series]]}" in text, series
