"""Multi-agent plans (pipeline, parallel, ensemble) and batch routing (total_cost, Lagrangian budget)."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import rows

import tinydancer_duck as td

SEED_MULTI = """
SELECT * FROM ruvector_route_multi(
request := 'Build and deploy a web application',
num_agents := 3,
strategy := 'pipeline' -- or 'parallel', 'ensemble'
);"""

SEED_BATCH = """
SELECT * FROM ruvector_batch_route(
requests := ARRAY[
'Simple question 1',
'Complex analysis task',
'Code generation request'
],
optimize_for := 'total_cost'
);"""


def test_seed_multi_agent_pipeline_runs_verbatim(seed_con):
    steps = rows(seed_con, SEED_MULTI)
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1)) and 1 <= len(steps) <= 3
    assert len({s["agent_name"] for s in steps}) == len(steps)
    assert sum(s["weight"] for s in steps) == pytest.approx(1.0)
    assert all(np.isfinite(s["estimated_cost"]) and s["capabilities"] for s in steps)
    plan = seed_con.execute("SELECT ruvector_route_multi('Build and deploy a web application') AS p").fetchone()[0]
    assert plan["total_latency_ms"] == pytest.approx(sum(s["estimated_latency_ms"] for s in steps))
    assert plan["total_cost"] == pytest.approx(sum(s["estimated_cost"] for s in steps))


def test_pipeline_covers_required_capabilities_in_order(seed_con):
    steps = rows(seed_con, """SELECT * FROM ruvector_route_multi('build it', num_agents := 3,
                              required_capabilities := ['testing', 'reasoning', 'debugging'])""")
    assert [(s["agent_name"], s["capabilities"]) for s in steps] == [
        ("code-specialist", ["debugging", "testing"]), ("gpt-4", ["reasoning"])]
    assert [s["weight"] for s in steps] == pytest.approx([2 / 3, 1 / 3])


def test_pipeline_reports_capabilities_nobody_serves(seed_con):
    plan = seed_con.execute("""SELECT ruvector_route_multi('x', required_capabilities := ['debugging'],
                               excluded_agents := ['code-specialist'])""").fetchone()[0]
    assert plan["steps"] == [] and "no candidate holds debugging" in plan["reasoning"]


def test_parallel_and_ensemble(seed_con, engine):
    parallel = engine.route_multi("write and test some code", num_agents=2, strategy="parallel").to_pylist()
    assert len(parallel) == 2 and len({s["agent_name"] for s in parallel}) == 2
    assert [s["weight"] for s in parallel] == [0.5, 0.5]
    plan = seed_con.execute("SELECT ruvector_route_multi('write and test some code', num_agents := 2, "
                            "strategy := 'parallel') AS p").fetchone()[0]
    assert plan["total_latency_ms"] == max(s["estimated_latency_ms"] for s in parallel)
    ensemble = engine.route_multi("write and test some code", num_agents=5, strategy="ensemble").to_pylist()
    assert len(ensemble) == 3  # only three agents exist
    weights = [s["weight"] for s in ensemble]
    assert sum(weights) == pytest.approx(1.0) and weights == sorted(weights, reverse=True)
    assert ensemble[0]["agent_name"] == parallel[0]["agent_name"]


def test_multi_over_a_column_with_per_row_strategies(seed_con):
    plans = rows(seed_con, """SELECT s, ruvector_route_multi('debug this code', num_agents := k, strategy := s) AS p
                              FROM (VALUES ('parallel', 1), ('ensemble', 2), ('pipeline', 2)) v(s, k) ORDER BY s""")
    assert [(r["s"], r["p"]["strategy"], len(r["p"]["steps"]) <= 2) for r in plans] == [
        ("ensemble", "ensemble", True), ("parallel", "parallel", True), ("pipeline", "pipeline", True)]
    assert len(plans[1]["p"]["steps"]) == 1


@pytest.mark.parametrize(("call", "message"), [
    ("ruvector_route_multi('x', strategy := 'relay')", "invalid strategy='relay'"),
    ("ruvector_route_multi('x', num_agents := 0)", "invalid num_agents=0"),
    ("ruvector_route_multi('x', num_agents := 100000)", "invalid num_agents=100000"),
    ("ruvector_batch_route(['a'], optimize_for := 'cheapest')", "invalid optimize_for='cheapest'"),
    ("ruvector_batch_route(['a'], budget := -1)", "invalid budget=-1.0"),
])
def test_bad_multi_and_batch_arguments(seed_con, call, message):
    with pytest.raises(duckdb.Error, match=message):
        seed_con.execute(f"SELECT * FROM {call}").fetchall()


def test_seed_batch_route_runs_verbatim(seed_con):
    decided = rows(seed_con, SEED_BATCH)
    assert [d["request"] for d in decided] == ["Simple question 1", "Complex analysis task",
                                               "Code generation request"]
    assert {d["agent_name"] for d in decided} == {"claude-3-haiku"}  # the cheapest for every request
    assert all(d["willingness_to_pay"] is None and d["estimated_cost"] < 0.001 for d in decided)


@pytest.fixture
def market(engine):
    """Three agents on one capability; requests of different lengths make cost per request vary."""
    engine.register_agents([
        {"name": "budget", "agent_type": "llm", "capabilities": ["answers"], "cost_per_1k_tokens": 0.0005,
         "avg_output_tokens": 100, "quality_score": 0.55},
        {"name": "mid", "agent_type": "llm", "capabilities": ["answers"], "cost_per_1k_tokens": 0.004,
         "avg_output_tokens": 100, "quality_score": 0.8},
        {"name": "premium", "agent_type": "llm", "capabilities": ["answers"], "cost_per_1k_tokens": 0.03,
         "avg_output_tokens": 100, "quality_score": 0.97},
    ])
    rng = np.random.default_rng(7)
    texts = ["please answer " * int(k) for k in rng.integers(5, 400, 300)]
    return engine, texts


def greedy_in_order(cost: np.ndarray, quality: np.ndarray, budget: float) -> float:
    """Baseline: each request in turn takes the best agent the remaining budget still pays for."""
    remaining, total = budget, 0.0
    for c, q in zip(cost, quality):
        affordable = np.flatnonzero(c <= remaining)
        if len(affordable):
            best = affordable[np.argmax(q[affordable])]
            remaining -= c[best]
            total += q[best]
    return total


def test_lagrangian_respects_the_budget_and_beats_greedy(market):
    engine, texts = market
    everyone = {name: engine.batch_route(texts, optimize_for="quality", excluded_agents=[
        o for o in ("budget", "mid", "premium") if o != name]) for name in ("budget", "mid", "premium")}
    cost = np.column_stack([everyone[a]["estimated_cost"].to_numpy() for a in ("budget", "mid", "premium")])
    quality = np.array([0.55, 0.8, 0.97])
    for budget in (cost[:, 0].sum() * 1.5, cost[:, 1].sum(), cost[:, 1].sum() * 2.5):
        decided = engine.batch_route(texts, budget=budget)
        spent = pc_sum(decided["estimated_cost"])
        assert spent <= budget + 1e-12
        assert decided["agent_name"].null_count == 0
        total_quality = pc_sum(decided["expected_quality"])
        assert total_quality > greedy_in_order(cost, np.tile(quality, (len(texts), 1)), budget)
        assert 0 < decided["willingness_to_pay"][0].as_py() < float("inf")  # the budget's price of quality


def test_budget_that_does_not_bind_and_one_that_cannot_be_met(market):
    engine, texts = market
    rich = engine.batch_route(texts, budget=1e6)
    assert set(rich["agent_name"].to_pylist()) == {"premium"} and rich["willingness_to_pay"][0].as_py() == float("inf")
    cheapest_total = pc_sum(engine.batch_route(texts, optimize_for="total_cost")["estimated_cost"])
    poor = engine.batch_route(texts, budget=cheapest_total / 2)
    assert 0 < poor["agent_name"].null_count < len(texts)
    assert pc_sum(poor["estimated_cost"]) <= cheapest_total / 2
    assert "the budget ran out" in poor.filter(poor["agent_name"].is_null())["reasoning"][0].as_py()


def test_batch_route_over_a_parquet_file_in_sql(market, tmp_path):
    engine, texts = market
    pq.write_table(pa.table({"request": texts}), tmp_path / "log.parquet")
    con = engine.connect()
    budget = 0.5 * pc_sum(engine.batch_route(texts, budget=1e6)["estimated_cost"])
    decided = rows(con, f"""SELECT * FROM ruvector_batch_route((SELECT list(request) FROM '{tmp_path}/log.parquet'),
                            budget := {budget})""")
    assert len(decided) == len(texts) and sum(d["estimated_cost"] for d in decided) <= budget + 1e-12
    python = engine.batch_route(texts, budget=budget).to_pylist()
    assert [d["agent_name"] for d in decided] == [p["agent_name"] for p in python]


def pc_sum(column: pa.ChunkedArray) -> float:
    return float(np.nansum(column.to_numpy(zero_copy_only=False).astype(float)))


def test_python_errors(engine):
    with pytest.raises(td.InvalidArgument, match="strategy"):
        engine.route_multi("x", strategy="chain")
    with pytest.raises(td.InvalidArgument, match="budget"):
        engine.batch_route(["x"], budget=float("nan"))
