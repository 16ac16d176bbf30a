"""Cost-quality curves, hulls and AIQ against hand computations; budget what-if; the whatif command."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from tinydancer_duck.cli._main import main
from tinydancer_duck.datasets.generate_log import agent_specs, generate_log
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.replay._curves import aiq, cost_at_quality, curve, nondecreasing_hull
from tinydancer_duck.replay._whatif import budget_whatif


def test_hull_and_aiq_match_a_hand_computation():
    cost, quality = [1, 2, 3, 4, 3.5], [0.5, 0.6, 0.9, 0.8, 0.85]
    assert nondecreasing_hull(cost, quality).tolist() == [0, 2]  # (2, .6) lies under the chord, (4, .8) is worse
    # area: trapezoid 1..3 under 0.5 -> 0.9 = 1.4, flat 0.9 on 3..4 = 0.9; range 3
    assert aiq(cost, quality) == pytest.approx(2.3 / 3)
    # a wider shared range: 0 before the hull starts, flat after it
    assert aiq(cost, quality, 0.0, 5.0) == pytest.approx((1.4 + 0.9 * 2) / 5)
    assert cost_at_quality(cost, quality, 0.7) == pytest.approx(2.0)
    assert np.isnan(cost_at_quality(cost, quality, 0.95))
    assert nondecreasing_hull([1, 2, 3], [0.5, 0.7, 0.9]).tolist() == [0, 2]  # a collinear middle point adds nothing


@pytest.fixture
def logged(engine, tmp_path):
    engine.register_agents(agent_specs())
    log = generate_log(600, seed=4)
    path = tmp_path / "log.parquet"
    pq.write_table(log, path)
    return engine, log, str(path)


def test_curve_points_match_the_log(logged):
    engine, log, path = logged
    table, result = curve(engine, path, points=10)
    rows = table.to_pylist()
    single = {r["label"]: r for r in rows if r["series"] == "zero_router"}
    for name in ("premium", "math-tutor", "generalist"):
        assert single[name]["cost"] == pytest.approx(np.mean(log[f"{name}|total_cost"].to_numpy()))
        assert single[name]["quality"] == pytest.approx(np.mean(log[name].to_numpy()))
    cheapest = next(r for r in rows if r["label"] == "cheapest")
    assert (cheapest["cost"], cheapest["quality"]) == (pytest.approx(single["math-tutor"]["cost"]),
                                                        pytest.approx(single["math-tutor"]["quality"]))
    q = np.column_stack([log[n].to_numpy() for n in ("generalist", "math-tutor", "premium")])
    c = np.column_stack([log[f"{n}|total_cost"].to_numpy() for n in ("generalist", "math-tutor", "premium")])
    best = np.array([min(range(3), key=lambda j: (-q[i, j], c[i, j])) for i in range(len(q))])
    oracle = next(r for r in rows if r["series"] == "oracle")
    assert oracle["quality"] == pytest.approx(q.max(axis=1).mean())
    assert oracle["cost"] == pytest.approx(c[np.arange(len(q)), best].mean())
    s = [single[n] for n in ("math-tutor", "generalist", "premium")]
    assert result["aiq_zero_router"] == pytest.approx(aiq([r["cost"] for r in s], [r["quality"] for r in s],
                                                          result["c_min"], result["c_max"]))
    assert 0 < result["aiq_zero_router"] < 1 and result["aiq_router"] > 0


def test_whatif_spends_within_each_budget(logged):
    engine, log, path = logged
    everything = np.sum(log["premium|total_cost"].to_numpy())
    table = budget_whatif(engine, path, [0.01, 0.5, 2.0, everything * 2], quality_threshold=0.85).to_pylist()
    assert [r["budget"] for r in table] == [0.01, 0.5, 2.0, everything * 2]
    for row in table:
        assert row["estimated_spend"] <= row["budget"] + 1e-9
        assert sum(m["requests"] for m in row["agent_mix"]) == row["served"]
    assert table[0]["served"] < 600 and table[-1]["served"] == 600
    assert table[-1]["agent_mix"][0]["agent"] == "premium"  # quality_score 0.9: unconstrained, all premium
    assert [r["meets_quality_threshold"] for r in table] == [False, False, False, True]


def test_whatif_bad_budgets_name_the_argument(logged):
    engine, _, path = logged
    for bad in ([], [-1.0], [float("nan")], None):
        with pytest.raises(InvalidArgument, match="budgets"):
            budget_whatif(engine, path, bad)
    con = engine.connect()
    with pytest.raises(Exception, match=r"budgets=-5\.0"):
        con.execute("SELECT * FROM ruvector_budget_whatif(?, budgets := [10, -5])", [path]).fetchall()
    with pytest.raises(Exception, match=r"budgets=\[\]"):
        con.execute("SELECT * FROM ruvector_budget_whatif(?, budgets := [])", [path]).fetchall()
    rows = con.execute("SELECT budget, served FROM ruvector_budget_whatif(?, budgets := [1000])", [path]).fetchall()
    assert rows == [(1000.0, 600)]


def test_whatif_command_writes_the_frontier(logged, tmp_path, capsys):
    engine, _, path = logged
    out = tmp_path / "frontier.csv"
    assert main(["whatif", path, "--store", str(engine.store.path), "--budgets", "0.5,5", "--output", str(out)]) == 0
    text = out.read_text().splitlines()
    assert text[0].startswith("budget,estimated_spend,spend") and len(text) == 3
    assert "frontier written to" in capsys.readouterr().out
    assert main(["whatif", path, "--store", str(engine.store.path), "--budgets", "-1"]) == 2


def test_the_whatif_chart_comes_from_the_same_pass_as_its_figures(logged, tmp_path, monkeypatch):
    """whatif_frontier's single agents are the curve's zero router and its actual policy the simulation's, and the
    whatif command with a chart reads the log once (it used to replay it three times)."""
    from tinydancer_duck.replay import simulate, whatif_frontier
    from tinydancer_duck.replay._frames import Replay
    from tinydancer_duck.report import actual_and_calibrated

    engine, _, path = logged
    frontier = whatif_frontier(engine, path, [0.5, 5], excluded_agents=["premium"])
    table, _ = curve(engine, path, points=3, excluded_agents=["premium"])
    zero = {r["label"]: r for r in table.to_pylist() if r["series"] == "zero_router"}
    assert [a["label"] for a in frontier.single_agents] == list(zero) and "premium" not in zero
    for agent in frontier.single_agents:
        assert agent["total_cost"] == pytest.approx(zero[agent["label"]]["total_cost"], rel=1e-9)
        assert agent["quality"] == pytest.approx(zero[agent["label"]]["quality"], rel=1e-9)
    actual, _ = actual_and_calibrated(engine, path)
    assert frontier.actual == pytest.approx(actual) and frontier.actual["requests"] == 600
    assert frontier.table.equals(budget_whatif(engine, path, [0.5, 5], excluded_agents=["premium"]))
    _, summary = simulate(engine, path, keep_rows=False)
    assert frontier.actual["total_cost"] == pytest.approx(summary["actual_total_cost"])

    passes = []
    frames = Replay.frames
    monkeypatch.setattr(Replay, "frames", lambda self, *a, **k: (passes.append(1), frames(self, *a, **k))[1])
    chart = tmp_path / "whatif.svg"
    assert main(["whatif", path, "--store", str(engine.store.path), "--budgets", "0.5,5", "--chart", str(chart)]) == 0
    assert len(passes) == 1 and chart.read_text().count("agent_points_marks") == 1
