"""Usage events carry the routing policy's propensity and name, and the store's events read back as a log a replay
weighs (README "Replaying a production log")."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import lancedb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tinydancer_duck as td
from tinydancer_duck.datasets.example_data import write_example_data

RECORD = ("SELECT ruvector_record_usage(agent := 'gpt-4', cost := 0.01, success := true, latency_ms := 900, "
          "request_id := ?, quality := 0.9, propensity := ?, policy := ?)")


@pytest.fixture
def con(tmp_path):
    con = td.connect(tmp_path / "store")
    con.execute("SELECT ruvector_register_agent('gpt-4', 'llm', ['code'], cost_per_1k_tokens := 0.03)").fetchall()
    return con


def _events(con) -> list[tuple]:
    return con.execute("SELECT request_id, agent, propensity, policy FROM ruvector_usage_events()").fetchall()


def test_recorded_propensity_and_policy_read_back_in_time_order(con):
    assert con.execute(RECORD, ["r1", 0.25, "cost, explore 0.2"]).fetchone() == (True,)
    assert con.execute(RECORD, ["r2", None, None]).fetchone() == (True,)  # both optional
    assert _events(con) == [("r1", "gpt-4", 0.25, "cost, explore 0.2"), ("r2", "gpt-4", None, None)]


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, float("inf")])
def test_an_impossible_propensity_names_itself_and_stores_nothing(con, bad):
    con.execute(RECORD, ["kept", 1.0, "p"]).fetchall()
    with pytest.raises(duckdb.Error, match=r"propensity"):
        con.execute(RECORD, ["r-bad", bad, "p"]).fetchall()
    assert _events(con) == [("kept", "gpt-4", 1.0, "p")]


def test_ingest_takes_propensity_and_policy_columns_and_refuses_a_bad_one(con, tmp_path):
    ts = pa.array([datetime(2026, 1, 1, tzinfo=timezone.utc)] * 3, pa.timestamp("us", tz="UTC"))
    log = {"ts": ts, "request_id": ["a", "b", "c"], "agent": ["gpt-4"] * 3, "cost": [0.01] * 3,
           "success": [True] * 3, "latency_ms": [100.0] * 3, "propensity": [0.5, 1.0, 0.05],
           "policy": ["eps", "eps", "eps"]}
    pq.write_table(pa.table(log), tmp_path / "good.parquet")
    pq.write_table(pa.table({**log, "request_id": ["d", "e", "f"], "propensity": [0.5, 0.0, 1.0]}),
                   tmp_path / "bad.parquet")
    con.execute("SELECT * FROM ruvector_ingest_usage(?)", [str(tmp_path / "good.parquet")]).fetchall()
    with pytest.raises(duckdb.Error, match=r"propensity.*0\.0"):
        con.execute("SELECT * FROM ruvector_ingest_usage(?)", [str(tmp_path / "bad.parquet")]).fetchall()
    assert _events(con) == [("a", "gpt-4", 0.5, "eps"), ("b", "gpt-4", 1.0, "eps"), ("c", "gpt-4", 0.05, "eps")]


def test_usage_events_keep_to_their_time_range_and_name_a_bad_one(con):
    old = datetime.now(timezone.utc) - timedelta(days=3)
    con.execute("SELECT ruvector_record_usage(agent := 'gpt-4', cost := 0.01, success := true, latency_ms := 1, "
                "request_id := 'old', ts := ?)", [old]).fetchall()
    con.execute(RECORD, ["new", 0.5, "p"]).fetchall()
    ids = con.execute("SELECT request_id FROM ruvector_usage_events(time_range := '1 day')").fetchall()
    assert ids == [("new",)]
    assert [r[0] for r in _events(con)] == ["old", "new"]
    with pytest.raises(duckdb.Error, match=r"time_range.*fortnight"):
        con.execute("SELECT * FROM ruvector_usage_events(time_range := 'fortnight')").fetchall()


def test_a_usage_table_from_before_propensities_gains_the_columns(tmp_path):
    store = tmp_path / "old"
    engine = td.Engine(store)
    engine.register_agent("gpt-4", "llm", ["code"], cost_per_call=0.01)
    engine.usage.record("gpt-4", 0.01, True, 100.0, request_id="before")
    old = engine.store.read("usage").drop_columns(["propensity", "policy"])
    db = lancedb.connect(str(store))
    db.drop_table("usage")
    db.create_table("usage", old)
    con = td.connect(store)
    assert _events(con) == [("before", "gpt-4", None, None)]
    con.execute(RECORD, ["after", 0.5, "p"]).fetchall()
    assert _events(td.connect(store)) == [("before", "gpt-4", None, None), ("after", "gpt-4", 0.5, "p")]


def test_a_log_served_with_exploration_replays_another_policy_within_its_interval(tmp_path, monkeypatch):
    """The README's example: serve 'cost' with explore 0.2 over a log that knows every outcome, record what the
    chosen agents returned with their propensities, build the production log from the store's events, and replay
    'quality' from it: the doubly robust interval holds the truth, read from the full log."""
    monkeypatch.chdir(tmp_path)
    write_example_data(tmp_path)
    con = td.connect(tmp_path / "store")
    con.execute("SELECT * FROM ruvector_import_agents('outcomes.parquet')").fetchall()
    con.execute("CREATE TABLE served AS SELECT * FROM ruvector_simulate(log := 'outcomes.parquet', "
                "optimize_for := 'cost', explore := 0.2)")
    routed = con.execute("SELECT d.agent_name, d.propensity FROM (SELECT ruvector_route(request, optimize_for := "
                         "'cost', explore := 0.2) AS d FROM read_parquet('outcomes.parquet') LIMIT 300)").fetchall()
    assert con.execute("SELECT agent_name, propensity FROM served ORDER BY row LIMIT 300").fetchall() == routed
    shares = dict(con.execute("SELECT round(propensity, 4), count(*) FROM served GROUP BY 1").fetchall())
    assert set(shares) == {0.8667, 0.0667} and shares[0.0667] > 100  # (1 - 0.2) + 0.2/3 and 0.2/3
    recorded = con.execute("SELECT count_if(ruvector_record_usage(agent := agent_name, cost := cost, success := "
                           "quality >= 0.5, latency_ms := latency_ms, request_id := request_id, quality := quality, "
                           "category := category, propensity := propensity, policy := 'cost, explore 0.2')) "
                           "FROM served").fetchone()[0]
    assert recorded == 2000
    con.execute("COPY (SELECT o.request, e.request_id, e.category, e.agent, e.quality, e.cost, e.propensity FROM "
                "ruvector_usage_events() e JOIN read_parquet('outcomes.parquet') o USING (request_id)) "
                "TO 'production.parquet'")
    assert pq.read_metadata("production.parquet").num_rows == 2000
    estimate = con.execute("SELECT quality_estimator, mean_quality, mean_quality_low, mean_quality_high, total_cost, "
                           "total_cost_low, total_cost_high, untried_decisions FROM ruvector_simulate_summary("
                           "log := 'production.parquet', optimize_for := 'quality', estimator := 'dr')").fetchone()
    truth = con.execute("SELECT mean_quality, total_cost FROM ruvector_simulate_summary(log := 'outcomes.parquet', "
                        "optimize_for := 'quality')").fetchone()
    label, quality, low, high, cost, cost_low, cost_high, untried = estimate
    assert label == "dr (propensities logged)" and untried == 0
    assert low < truth[0] < high and high - low < 0.15 and abs(quality - truth[0]) < 0.03
    assert cost_low <= truth[1] * 1.01 and truth[1] * 0.99 <= cost_high and abs(cost / truth[1] - 1) < 0.02
