"""Simulation on generated logs whose right answers are known by construction
(tinydancer_duck/datasets/generate_log.py)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tinydancer_duck.datasets.generate_log import AGENTS, agent_specs, generate_log
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.replay._simulate import simulate

#: premium is only 60% right on math, so a learned router separates it from math-tutor (always right) with margin
SHARP = {**AGENTS, "premium": {**AGENTS["premium"], "correct": {"math": 0.6, "code": 0.9, "writing": 0.9}}}


@pytest.fixture
def setup(engine, tmp_path):
    engine.register_agents(agent_specs(SHARP))
    log = generate_log(900, seed=3, agents=SHARP)
    path = tmp_path / "log.parquet"
    pq.write_table(log, path)
    return engine, log, str(path)


def col(table, name):
    return np.asarray(table[name].to_numpy(zero_copy_only=False))


def test_cost_policy_picks_the_cheapest_and_reports_exact_savings(setup):
    engine, log, path = setup
    rows, summary = simulate(engine, path, optimize_for="cost", rows=256)
    assert set(rows["agent_name"].to_pylist()) == {"math-tutor"}
    expected = col(log, "cost").sum() - col(log, "math-tutor|total_cost").sum()
    assert summary["savings"] == pytest.approx(expected, rel=1e-12)
    assert summary["actual_total_cost"] == pytest.approx(col(log, "cost").sum())
    assert summary["realized_quality"] == pytest.approx(col(log, "math-tutor").mean())
    assert summary["quality_source"] == "observed 100%" and summary["cost_source"] == "logged 100%"
    assert summary["expected_quality_source"] == "quality_score"
    assert summary["agent_mix"] == [{"agent": "math-tutor", "requests": 900, "share": 1.0,
                                     "cost": pytest.approx(col(log, "math-tutor|total_cost").sum()),
                                     "quality": pytest.approx(col(log, "math-tutor").mean())}]
    assert rows["row"].to_pylist() == list(range(900))  # batches of 256 keep the log's order


def test_a_replay_reads_its_snapshot_not_the_store(setup, tmp_path):
    """A snapshot is frozen: replaying it needs no store, and the store's later changes do not reach it."""
    engine, _log, path = setup
    snapshot = engine.snapshot()
    live_rows, live_summary = simulate(engine, path, optimize_for="cost")
    engine.remove_agent("math-tutor")  # the store changes after the snapshot was taken
    rows, summary = simulate(snapshot, path, optimize_for="cost")
    assert rows.equals(live_rows) and summary["total_cost"] == live_summary["total_cost"]
    assert set(rows["agent_name"].to_pylist()) == {"math-tutor"}
    assert "math-tutor" not in simulate(engine, path, optimize_for="cost")[0]["agent_name"].to_pylist()
    with pytest.raises(InvalidArgument, match="snapshot"):
        simulate("not a snapshot", path)


def test_learned_router_sends_math_to_the_cheap_specialist(setup, tmp_path):
    engine, log, path = setup
    train = tmp_path / "train.parquet"
    pq.write_table(generate_log(1500, seed=11, agents=SHARP), train)
    engine.outcomes.train_log(str(train), model="outcomes")
    rows, summary = simulate(engine, path, optimize_for="quality")
    math = col(log, "category") == "math"
    chosen = np.array(rows["agent_name"].to_pylist(), dtype=object)
    assert (chosen[math] == "math-tutor").all()
    assert not (chosen[~math] == "math-tutor").any()
    picked_cost = np.array([log[f"{a}|total_cost"][i].as_py() for i, a in enumerate(chosen)])
    picked_quality = np.array([log[a][i].as_py() for i, a in enumerate(chosen)])
    assert summary["savings"] == pytest.approx(col(log, "cost").sum() - picked_cost.sum(), rel=1e-12)
    assert summary["expected_quality_source"] == "outcome router 'outcomes' version 1"
    assert summary["realized_quality"] == pytest.approx(picked_quality.mean())
    assert summary["realized_quality"] > col(log, "quality").mean()  # better than always-premium, and cheaper
    assert summary["savings"] > (col(log, "cost")[math] - col(log, "math-tutor|total_cost")[math]).sum() - 1e-12


def test_sql_matches_python(setup):
    engine, _log, path = setup
    con = engine.connect()
    _, summary = simulate(engine, path, optimize_for="cost")
    got = con.execute("SELECT total_cost, savings, quality_source, routed FROM "
                      "ruvector_simulate_summary(log := ?, optimize_for := 'cost')", [path]).fetchone()
    assert got == (pytest.approx(summary["total_cost"]), pytest.approx(summary["savings"]), "observed 100%", 900)
    count, agents = con.execute("SELECT count(*), list(DISTINCT agent_name) FROM ruvector_simulate(?, "
                                "optimize_for := 'cost', excluded_agents := ['math-tutor'])", [path]).fetchone()
    assert count == 900 and agents == ["generalist"]


def test_budget_policy_stays_within_budget(setup):
    engine, log, path = setup
    budget = 0.5 * col(log, "generalist|total_cost").sum()
    _rows, summary = simulate(engine, path, optimize_for="quality", budget=budget)
    assert summary["total_cost"] <= budget + 1e-9
    assert summary["routed"] == 900


def test_quality_falls_back_to_category_means_then_quality_score(engine, tmp_path):
    engine.register_agents(agent_specs())
    log = generate_log(300, seed=5)
    narrow = log.select(["request_id", "category", "request", "agent", "cost", "quality"])
    path = tmp_path / "narrow.parquet"
    pq.write_table(narrow, path)
    rows, summary = simulate(engine, str(path), optimize_for="cost")
    assert set(rows["quality_source"].to_pylist()) == {"quality_score"}  # no math-tutor outcome anywhere
    assert summary["cost_source"] == "per_token_price 100%" and summary["realized_quality"] is None
    assert summary["per_token_price_cost_rows"] == summary["estimated_cost_rows"] == 300
    rows, summary = simulate(engine, str(path), optimize_for="quality")  # premium is logged everywhere
    assert summary["quality_source"] == "observed 100%"
    mixed = narrow.set_column(3, "agent", pa.array(["generalist"] * 150 + ["premium"] * 150))
    pq.write_table(mixed, path)
    rows, _ = simulate(engine, str(path), optimize_for="quality")
    sources = rows["quality_source"].to_pylist()
    assert sources[:150] == ["category_mean"] * 150 and sources[150:] == ["observed"] * 150
    means = {c: np.mean([q for c2, q in zip(col(narrow, "category")[150:], col(narrow, "quality")[150:]) if c2 == c])
             for c in ("math", "code", "writing")}
    # premium's mean in the request's category from the other folds' requests (about 40 each), shrunk a little
    # toward its registered quality_score: near the category's raw mean, one value per category and fold
    assert rows["quality"].to_pylist()[:150] == pytest.approx([means[c] for c in col(narrow, "category")[:150]],
                                                              abs=0.08)
    assert len(set(rows["quality"].to_pylist()[:150])) > 3  # per category and fold, not one prior


def test_bad_input_names_the_argument(setup):
    engine, _, path = setup
    with pytest.raises(InvalidArgument, match="log='/no/such.parquet'"):
        simulate(engine, "/no/such.parquet")
    with pytest.raises(InvalidArgument, match="columns='model'"):
        simulate(engine, path, columns={"agent": "model"})
    with pytest.raises(InvalidArgument, match="optimize_for='cheapest'"):
        simulate(engine, path, optimize_for="cheapest")
    with pytest.raises(InvalidArgument, match="budget=-1"):
        simulate(engine, path, budget=-1)
    con = engine.connect()
    with pytest.raises(Exception, match="optimize_for='cheapest'"):
        con.execute("SELECT * FROM ruvector_simulate(?, optimize_for := 'cheapest')", [path]).fetchall()
    with pytest.raises(Exception, match="log='/no/such.parquet'"):
        con.execute("SELECT * FROM ruvector_simulate_summary('/no/such.parquet')").fetchall()


def test_a_replay_counts_logged_requests_their_logged_agent_could_not_read(engine, tmp_path):
    """Issue 18: the log's own policy sent 3 requests past premium's 4,000-token window; the router sends none."""
    specs = agent_specs(SHARP)
    engine.register_agents([{**s, "context_window": 4_000} if s["name"] == "premium" else s for s in specs])
    log = generate_log(60, seed=5, agents=SHARP).to_pylist()
    long_text = "please review this contract clause " * 800  # ~28 KB: about 6,800 tokens in
    premium_rows = [i for i, row in enumerate(log) if row["agent"] == "premium"][:3]
    for i in premium_rows:
        log[i]["request"] = long_text
    path = tmp_path / "log.parquet"
    pq.write_table(pa.Table.from_pylist(log), path)
    rows, summary = simulate(engine, str(path), optimize_for="quality")
    assert len(premium_rows) == 3 and summary["actual_over_window"] == 3
    assert "premium" not in {rows["agent_name"][i].as_py() for i in premium_rows}
