"""Usage events: SQL record (vectorized over Parquet, batch boundaries), bulk ingest, running stats, bad input."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SEED_AGENTS_SQL, rows

import tinydancer_duck as td
from tinydancer_duck.registry._stats import ewma_fold

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
AGENTS = ("gpt-4", "claude-3-haiku", "code-specialist")


def make_log(n: int, *, seed: int = 0, unknown: bool = False) -> pa.Table:
    """A synthetic request log in time order: seed agents (and a retired one), costs, latencies, outcomes."""
    rng = np.random.default_rng(seed)
    names = np.array([*AGENTS, "retired-bot"] if unknown else AGENTS)
    agent = rng.choice(names, n)
    quality = pa.array(rng.uniform(0.5, 1.0, n), mask=rng.random(n) < 0.4)
    return pa.table({
        "ts": pa.array([T0 + timedelta(seconds=int(s)) for s in np.sort(rng.integers(0, 14 * 86400, n))],
                       pa.timestamp("us", tz="UTC")),
        "request_id": [f"req-{i:06d}" for i in range(n)],
        "agent": agent,
        "route": rng.choice(["support", "coding", "docs"], n),
        "category": rng.choice(["chat", "code", "analysis"], n),
        "tokens_in": rng.integers(10, 800, n),
        "tokens_out": rng.integers(10, 400, n),
        "cost": rng.uniform(0.0, 0.05, n).round(6),
        "latency_ms": rng.gamma(2.0, 300.0, n).round(3),
        "success": rng.random(n) > 0.08,
        "quality": quality,
    })


def usage_rows(engine) -> pl.DataFrame:
    return engine.usage.frame().sort("request_id", "ts", "agent", nulls_last=True)


def expected_stats(log: pa.Table, agent: str, start: dict, alpha: float = 0.1) -> dict:
    """The closed-form EWMA of the agent's events in time order, from its registered starting stats."""
    mine = pl.from_arrow(log).filter(pl.col("agent") == agent).sort("ts", maintain_order=True)
    quality = mine["quality"].drop_nulls().to_numpy()
    return {
        "avg_latency_ms": ewma_fold(start["avg_latency_ms"], mine["latency_ms"].to_numpy(), alpha),
        "success_rate": ewma_fold(start["success_rate"], mine["success"].cast(pl.Float64).to_numpy(), alpha),
        "quality_score": ewma_fold(start["quality_score"], quality, alpha),
        "total_requests": start["total_requests"] + mine.height,
    }


def test_record_one_event_stores_it_and_updates_the_agent(seed_con, engine):
    before = engine.get_agent("claude-3-haiku")
    done = seed_con.execute("""SELECT ruvector_record_usage('claude-3-haiku', 0.0004, false, 1400,
        ts := TIMESTAMPTZ '2026-03-02 12:00:00+00', request_id := 'r1', route := 'support', category := 'chat',
        tokens_in := 120, tokens_out := 80, quality := 0.5)""").fetchone()[0]
    assert done is True
    stored = engine.usage.frame().to_dicts()
    assert stored == [{"ts": T0, "request_id": "r1", "agent": "claude-3-haiku", "route": "support",
                       "category": "chat", "tokens_in": 120, "tokens_out": 80, "cost": 0.0004, "latency_ms": 1400.0,
                       "success": False, "quality": 0.5, "propensity": None, "policy": None}]
    after = engine.get_agent("claude-3-haiku")
    assert after["avg_latency_ms"] == pytest.approx(0.9 * before["avg_latency_ms"] + 0.1 * 1400)
    assert after["success_rate"] == pytest.approx(0.9)
    assert after["quality_score"] == pytest.approx(0.9 * 0.8 + 0.1 * 0.5)
    assert after["total_requests"] == 1


def test_ts_defaults_to_now_and_text_offsets_are_honoured(seed_con, engine):
    started = datetime.now(timezone.utc)
    seed_con.execute("SELECT ruvector_record_usage('gpt-4', 0.01, true, 900)").fetchall()
    seed_con.execute("SELECT ruvector_record_usage('gpt-4', 0.01, true, 900, ts := '2026-03-02T14:00:00+02:00')"
                     ).fetchall()
    seed_con.execute("SELECT ruvector_record_usage('gpt-4', 0.01, true, 900, ts := '2026-03-02 12:00:00')").fetchall()
    stamps = engine.usage.frame()["ts"].to_list()
    assert started - timedelta(seconds=1) <= stamps[0] <= datetime.now(timezone.utc)
    assert stamps[1:] == [T0, T0]


def test_unknown_agent_is_stored_but_updates_no_stats(seed_con, engine):
    agents_version = engine.store.version("agents")
    flags = seed_con.execute("SELECT ruvector_record_usage(a, 0.01, true, 100) FROM (VALUES ('gpt-4'), "
                             "('retired-bot'), ('gpt-4')) v(a)").fetchall()
    assert [f[0] for f in flags] == [True, False, True]
    assert engine.usage.frame()["agent"].to_list().count("retired-bot") == 1
    assert engine.get_agent("retired-bot") is None and engine.get_agent("gpt-4")["total_requests"] == 2
    assert engine.store.version("agents") == agents_version + 1  # one agents write for the batch


def test_bulk_ingest_loses_nothing_and_updates_running_stats(engine, tmp_path):
    engine.register_agents([{"name": a, "agent_type": "llm", "capabilities": ["x"], "avg_latency_ms": 500,
                             "quality_score": 0.8} for a in AGENTS])
    start = {a: engine.get_agent(a) for a in AGENTS}
    log = make_log(20_000, unknown=True)
    renamed = log.rename_columns(["when", "request_id", "model", "route", "category", "tokens_in", "tokens_out",
                                  "usd", "latency_ms", "success", "quality"])
    path = tmp_path / "log.parquet"
    pq.write_table(renamed, path, row_group_size=7_000)
    calls = []
    report = engine.usage.ingest(path, columns={"ts": "when", "agent": "model", "cost": "usd"}, batch_rows=4096,
                                 progress=lambda done, total: calls.append((done, total)))
    assert report.rows == 20_000 and engine.store.count("usage") == 20_000
    assert report.total_cost == pytest.approx(float(np.sum(log["cost"].to_numpy())), rel=1e-12)
    assert engine.usage.frame()["cost"].sum() == pytest.approx(float(np.sum(log["cost"].to_numpy())), rel=1e-12)
    assert report.unknown_agents == ["retired-bot"] and report.agents_updated == sorted(AGENTS)
    assert calls[0] == (0, 20_000) and calls[-1] == (20_000, 20_000)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) >= 5
    stored = usage_rows(engine).select(log.column_names)  # and NULL propensity and policy: the log has none
    assert stored.drop("ts").equals(pl.from_arrow(log).sort("request_id").drop("ts"))
    for agent in AGENTS:
        got = engine.get_agent(agent)
        for field, value in expected_stats(log, agent, start[agent]).items():
            assert got[field] == pytest.approx(value, rel=1e-9), (agent, field)
        assert start[agent]["p99_latency_ms"] != got["p99_latency_ms"] > got["avg_latency_ms"]


def test_sql_record_over_parquet_equals_bulk_ingest(seed_con, engine, tmp_path):
    log = make_log(5000, seed=1)  # batches of 2048, 2048, 904
    path = tmp_path / "log.parquet"
    pq.write_table(log, path)
    seed_con.execute("SET threads = 1")  # the EWMA folds events in the order they arrive
    flags = seed_con.execute(f"""SELECT ruvector_record_usage(agent, cost, success, latency_ms, ts := ts,
        request_id := request_id, route := route, category := category, tokens_in := tokens_in,
        tokens_out := tokens_out, quality := quality) AS ok FROM '{path}'""").fetchall()
    assert len(flags) == 5000 and all(f[0] for f in flags)

    bulk = td.Engine(tmp_path / "bulk")
    bulk.connect().execute(SEED_AGENTS_SQL).fetchall()
    bulk.usage.ingest(path)
    assert usage_rows(engine).equals(usage_rows(bulk))
    for agent in AGENTS:
        by_sql, by_ingest = engine.get_agent(agent), bulk.get_agent(agent)
        for field in ("avg_latency_ms", "success_rate", "quality_score", "total_requests"):
            assert by_sql[field] == pytest.approx(by_ingest[field], rel=1e-9), (agent, field)


def test_ingest_from_sql_with_a_column_mapping(seed_con, engine, tmp_path):
    log = make_log(3000, seed=2).rename_columns(["ts", "request_id", "model", "route", "category", "tokens_in",
                                                   "tokens_out", "usd", "latency_ms", "success", "quality"])
    pq.write_table(log, tmp_path / "part-1.parquet")
    report = rows(seed_con, f"SELECT * FROM ruvector_ingest_usage('{tmp_path}/part-*.parquet', "
                            "columns := {'agent': 'model', 'cost': 'usd'}, batch_rows := 1000)")[0]
    assert report["rows"] == 3000 and report["unknown_agents"] == []
    assert report["total_cost"] == pytest.approx(float(np.sum(log["usd"].to_numpy())))
    assert sum(engine.get_agent(a)["total_requests"] for a in AGENTS) == 3000
    with pytest.raises(duckdb.Error, match="invalid columns='agent'.*no column 'agent'"):
        seed_con.execute(f"SELECT * FROM ruvector_ingest_usage('{tmp_path}/part-1.parquet')").fetchall()
    with pytest.raises(duckdb.Error, match="invalid columns='colour'"):
        seed_con.execute(f"SELECT * FROM ruvector_ingest_usage('{tmp_path}/part-1.parquet', "
                         "columns := '{\"colour\": \"model\"}')").fetchall()
    assert engine.store.count("usage") == 3000


def test_ingest_validates_the_whole_file_before_writing(seed_con, engine, tmp_path):
    log = make_log(20_000, seed=3)
    cost = log["cost"].to_numpy().copy()
    cost[17_321] = -0.5
    pq.write_table(log.set_column(log.schema.get_field_index("cost"), "cost", pa.array(cost)), tmp_path / "bad.parquet")
    agents_before = engine.list_agents()
    with pytest.raises(td.InvalidArgument, match=r"invalid cost=-0.5: must be >= 0"):
        engine.usage.ingest(tmp_path / "bad.parquet", batch_rows=4096)
    assert engine.store.count("usage") == 0 and engine.list_agents().equals(agents_before)
    with pytest.raises(td.InvalidArgument, match="invalid path="):
        engine.usage.ingest(tmp_path / "missing.parquet")


BAD_RECORDS = [
    ("'gpt-4', -0.01, true, 100", "invalid cost=-0.01: must be >= 0"),
    ("'gpt-4', 'inf'::DOUBLE, true, 100", "invalid cost=inf: must be a finite number"),
    ("'gpt-4', NULL, true, 100", "invalid cost=None: is required"),
    ("'gpt-4', 0.01, true, 'NaN'::DOUBLE", "invalid latency_ms=nan: must be a finite number"),
    ("'gpt-4', 0.01, true, -3", "invalid latency_ms=-3.0: must be >= 0"),
    ("'gpt-4', 0.01, true, 100, quality := 1.5", "invalid quality=1.5: must be within [0, 1]"),
    ("NULL, 0.01, true, 100", "invalid agent=None: is required"),
    ("'  ', 0.01, true, 100", "invalid agent='  ': must be a non-empty string"),
    ("'gpt-4', 0.01, NULL, 100", "invalid success=None: is required"),
    ("'gpt-4', 0.01, true, 100, tokens_in := -5", "invalid tokens_in=-5.0: must be >= 0"),
]


@pytest.mark.parametrize(("args", "message"), BAD_RECORDS)
def test_bad_record_names_the_argument_and_stores_nothing(seed_con, engine, args, message):
    agents_before = engine.list_agents()
    with pytest.raises(duckdb.Error) as caught:
        seed_con.execute(f"SELECT ruvector_record_usage({args})").fetchall()
    assert message in str(caught.value)
    assert engine.store.count("usage") == 0 and engine.list_agents().equals(agents_before)


def test_a_bad_row_fails_its_whole_batch(seed_con, engine):
    with pytest.raises(duckdb.Error, match="invalid quality=1.5"):
        seed_con.execute("SELECT ruvector_record_usage('gpt-4', 0.01, true, 100, quality := q) "
                         "FROM (VALUES (0.5), (1.5), (NULL)) v(q)").fetchall()
    assert engine.store.count("usage") == 0 and engine.get_agent("gpt-4")["total_requests"] == 0


def test_python_record_and_persistence_across_engines(engine, store):
    engine.register_agent("a", "api", ["x"], cost_per_call=0.01)
    flags = engine.usage.record(["a", "a", "ghost"], [0.01, 0.02, 0.03], [True, False, True], [10, 20, 30],
                                ts=[T0 + timedelta(seconds=2), T0, T0 + timedelta(seconds=1)])
    assert flags.tolist() == [True, True, False]  # the caller's row order, though folded in time order
    with pytest.raises(td.InvalidArgument, match="invalid ts='soon'"):
        engine.usage.record("a", 0.01, True, 10, ts="soon")
    again = td.Engine(store)
    assert again.usage.frame().height == 3 and again.get_agent("a")["total_requests"] == 2
    assert again.usage.frame().sort("ts")["cost"].to_list() == [0.02, 0.03, 0.01]
