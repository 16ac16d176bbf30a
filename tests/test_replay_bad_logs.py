"""Replays, what-if and outcome training reject impossible figures in a log, naming the column and the first bad
row (before: cost -1 and quality -5 reported savings 50.5, budget_whatif reported spend -50, quality +inf gave a
realized quality of inf)."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tinydancer_duck as td

N = 10
CALLS = ("SELECT * FROM ruvector_simulate_summary(log := '{log}')",
         "SELECT * FROM ruvector_budget_whatif(log := '{log}', budgets := [1.0])",
         "SELECT * FROM ruvector_cost_quality_curve(log := '{log}')",
         "SELECT * FROM ruvector_train_outcome_router(source := '{log}', epochs := 2)")


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    engine = td.Engine(tmp_path_factory.mktemp("replay") / "s", embedder="hashing")
    engine.register_agent("a", "llm", ["code"], cost_per_call=0.01)
    engine.register_agent("b", "llm", ["code"], cost_per_call=0.02)
    return engine.connect()


@pytest.mark.parametrize("column, bad, why", [
    ("a|total_cost", -1.0, "a cost must be finite and >= 0"), ("a", -5.0, "a quality must be finite and within"),
    ("b", float("inf"), "a quality must be finite"), ("cost", -50.0, "a cost must be finite and >= 0"),
    ("b|total_cost", float("nan"), "a cost must be finite"), ("quality", 1.5, "a quality must be finite and within"),
])
@pytest.mark.parametrize("call", CALLS)
def test_an_impossible_figure_is_named_by_column_and_row(con, tmp_path, column, bad, why, call):
    log = {"request": [f"request {i}" for i in range(N)], "a": [0.5] * N, "a|total_cost": [0.01] * N,
           "b": [0.9] * N, "b|total_cost": [0.02] * N, "agent": ["a"] * N, "cost": [0.01] * N, "quality": [0.5] * N}
    log[column] = [bad if i == 3 else value for i, value in enumerate(log[column])]
    pq.write_table(pa.table(log), tmp_path / "log.parquet")
    with pytest.raises(duckdb.Error, match=rf"invalid log='{column}': column '{column}' row 3 holds .*; {why}"):
        con.execute(call.format(log=tmp_path / "log.parquet")).fetchall()


def test_budget_whatif_takes_max_latency_ms_like_every_replay(con, tmp_path):
    """The what-if's latency limit is the routing option max_latency_ms (once latency_threshold_ms silently overwrote
    it); the old name is not a parameter."""
    pq.write_table(pa.table({"request": ["x"], "a": [0.5], "a|total_cost": [0.01]}), tmp_path / "log.parquet")
    with pytest.raises(duckdb.Error, match=r"invalid max_latency_ms=-1.0: must be >= 0"):
        con.execute(f"SELECT * FROM ruvector_budget_whatif(log := '{tmp_path / 'log.parquet'}', budgets := [1.0], "
                    "max_latency_ms := -1)").fetchall()
    with pytest.raises(duckdb.BinderException, match="max_latency_ms := NULL"):
        con.execute(f"SELECT * FROM ruvector_budget_whatif(log := '{tmp_path / 'log.parquet'}', budgets := [1.0], "
                    "latency_threshold_ms := 10)").fetchall()
