"""Honest replays: every figure says where it came from, budgets hold in logged cost, in-sample replays are flagged,
and a log's agents can be imported instead of typed in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from tinydancer_duck._logs import held_out
from tinydancer_duck.datasets.generate_log import AGENTS, agent_specs, generate_log, to_long
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.replay import budget_whatif, curve, simulate
from tinydancer_duck.replay._frames import SOURCE_COUNTS

ROUTERBENCH = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "routerbench"
QUALITY_COUNTS, COST_COUNTS = SOURCE_COUNTS[:4], SOURCE_COUNTS[4:]


@pytest.fixture
def wide(tmp_path):
    path = tmp_path / "wide.parquet"
    pq.write_table(generate_log(600, seed=5), path)
    return str(path)


@pytest.fixture(scope="module")
def routerbench(tmp_path_factory):
    files = [ROUTERBENCH / f"{name}_train.parquet" for name in ("arc_challenge", "mbpp", "winograde")]
    if not all(f.exists() for f in files):
        pytest.skip("the shared RouterBench logs are not beside the repo")
    path = tmp_path_factory.mktemp("rb") / "routerbench.parquet"
    pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed").write_parquet(path)
    return str(path)


def test_the_source_counts_add_up_to_the_decisions(engine, tmp_path):
    long = to_long(generate_log(400, seed=2), observe=0.5, seed=3)
    path = tmp_path / "long.parquet"
    pq.write_table(long, path)
    engine.register_agents(agent_specs())
    _, summary = simulate(engine, str(path), optimize_for="quality")
    assert sum(summary[c] for c in QUALITY_COUNTS) == summary["routed"] == long.num_rows
    assert sum(summary[c] for c in COST_COUNTS) == summary["routed"]
    # half the pairs are unobserved: the category means fill them, and the counts say so
    assert summary["category_mean_rows"] > 0 and summary["observed_rows"] < summary["routed"]
    table, _ = curve(engine, str(path), points=6)
    for row in table.to_pylist():
        assert sum(row[c] for c in QUALITY_COUNTS) == row["requests"]
        assert sum(row[c] for c in COST_COUNTS) == row["requests"]
    frontier = budget_whatif(engine, str(path), [0.5, 5.0]).to_pylist()
    for row in frontier:
        assert sum(row[c] for c in QUALITY_COUNTS) == row["served"]
    assert "lambda" not in table.column_names and "willingness_to_pay" in table.column_names


def test_observed_only_chooses_among_observed_outcomes(engine, tmp_path):
    long = to_long(generate_log(400, seed=2), observe=0.5, seed=3)
    path = tmp_path / "long.parquet"
    pq.write_table(long, path)
    engine.register_agents(agent_specs())
    rows, summary = simulate(engine, str(path), optimize_for="quality", observed_only=True)
    assert summary["observed_rows"] == summary["routed"] == long.num_rows
    assert set(rows["quality_source"].to_pylist()) == {"observed"}
    table, _ = curve(engine, str(path), points=5, observed_only=True)
    assert all(r["observed_rows"] == r["requests"] for r in table.to_pylist() if r["series"] == "router")


def test_a_holdout_makes_the_replay_out_of_sample(engine, wide):
    engine.register_agents(agent_specs())
    engine.outcomes.train_log(wide, holdout=0.25, folds=3)
    log = pq.read_table(wide)
    held = held_out(log["request"].combine_chunks(), 0.25)
    saved = json.loads(engine.store.read("models")["metrics"][0].as_py())
    assert saved["n_train"] == int((~held).sum()) and saved["log"]["holdout"] == 0.25
    rows, summary = simulate(engine, wide, optimize_for="learned", holdout=0.25)
    assert summary["warnings"] == [] and summary["rows"] == int(held.sum())
    assert rows["row"].to_pylist() == np.flatnonzero(held).tolist()  # the log's own row numbers
    _, in_sample = simulate(engine, wide, optimize_for="learned")
    assert any(w.startswith("in-sample") for w in in_sample["warnings"])
    _, other = simulate(engine, wide, optimize_for="learned", holdout=0.5)
    assert any("holdout 0.25" in w for w in other["warnings"])


def test_a_replay_warns_when_the_log_and_the_store_disagree_on_agents(engine, wide):
    engine.register_agents(agent_specs()[:2] + [{"name": "newcomer", "agent_type": "llm",
                                                 "capabilities": ["general"]}])
    _, summary = simulate(engine, wide)
    missing, unseen, *untried = summary["warnings"]
    assert "generalist" in missing and "not registered" in missing
    assert "newcomer" in unseen and "never appear" in unseen
    # the decisions that went to the newcomer rest on its prior, and the summary says how many
    assert untried == ([] if not summary["untried_decisions"] else
                       [(f"{summary['untried_decisions']} of {summary['routed']} decisions go to an agent the log "
                        "never tried for such requests (its category): their quality is the outcome model's estimate "
                        "(the agent's mean elsewhere, the outcome router or its quality_score), not a measurement")])
    assert summary["untried_decisions"] == summary["quality_score_rows"]


def test_import_registers_the_logs_agents_with_its_own_figures(engine, con, wide):
    table = engine.import_agents(wide)
    log = pl.read_parquet(wide)
    assert sorted(table["name"].to_pylist()) == sorted(AGENTS)
    for row in table.to_pylist():
        assert row["quality_score"] == pytest.approx(log[row["name"]].mean())
        assert row["cost_per_call"] == pytest.approx(log[f"{row['name']}|total_cost"].mean())
        assert row["observed"] == 600
    agent = engine.registry.get(["premium"]).to_pylist()[0]
    assert agent["cost_per_call"] == pytest.approx(log["premium|total_cost"].mean())
    assert json.loads(agent["metadata"])["observed_outcomes"] == 600
    via_sql = con.execute("SELECT count(*) FROM ruvector_import_agents(?)", [wide]).fetchone()
    assert via_sql == (3,)


def test_import_prices_per_token_when_the_log_has_tokens(engine, tmp_path):
    path = tmp_path / "usage.parquet"
    pl.DataFrame({"request": ["a", "b", "c"], "agent": ["x", "x", "y"], "quality": [1.0, 0.0, 1.0],
                  "cost": [0.002, 0.004, 0.01], "tokens_in": [100, 200, 400], "tokens_out": [100, 200, 100],
                  "latency_ms": [100.0, 300.0, 50.0]}).write_parquet(path)
    rows = {r["name"]: r for r in engine.import_agents(str(path)).to_pylist()}
    assert rows["x"]["cost_per_1k_tokens"] == pytest.approx(1000 * 0.006 / 600)
    assert rows["x"]["cost_per_call"] is None and rows["x"]["avg_latency_ms"] == 200.0
    assert rows["y"]["quality_score"] == 1.0


def test_import_of_a_log_without_agents_changes_nothing(engine, tmp_path):
    engine.register_agents(agent_specs()[:1])
    path = tmp_path / "bare.parquet"
    pl.DataFrame({"request": ["a"]}).write_parquet(path)
    version = engine.store.version("agents")
    with pytest.raises(InvalidArgument, match="log=.*holds no agents"):
        engine.import_agents(str(path))
    assert engine.store.version("agents") == version


def test_routerbench_budgets_hold_in_logged_cost(engine, routerbench):
    engine.import_agents(routerbench)
    for budget in (0.1, 0.5, 1.0, 2.0, 5.0):
        _, summary = simulate(engine, routerbench, budget=budget, keep_rows=False)
        assert summary["total_cost"] <= budget + 1e-9 and summary["budget_overrun"] == 0
        assert summary["logged_cost_rows"] == summary["routed"]
    frontier = budget_whatif(engine, routerbench, [0.1, 0.5, 1.0, 2.0, 5.0]).to_pylist()
    assert all(r["spend"] <= r["budget"] + 1e-9 and r["budget_overrun"] == 0 for r in frontier)
    w = [r["willingness_to_pay"] for r in frontier]
    assert w == sorted(w)  # a larger budget buys quality at a higher price


def test_bad_replay_input_names_the_argument(engine, wide):
    engine.register_agents(agent_specs())
    with pytest.raises(InvalidArgument, match="holdout=0"):
        simulate(engine, wide, holdout=0)
    with pytest.raises(InvalidArgument, match="observed_only='yes'"):
        simulate(engine, wide, observed_only="yes")
    with pytest.raises(InvalidArgument, match="willingness_to_pay=0.1.*budget"):
        simulate(engine, wide, budget=1.0, willingness_to_pay=0.1)
