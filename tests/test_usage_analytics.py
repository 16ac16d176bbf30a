"""Routing analytics and the summary: the seed query verbatim, every group_by against a hand computation, bad input."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import rows
from test_usage import make_log

from tinydancer_duck.usage._analytics import parse_time_range

NOW = datetime(2026, 3, 16, 12, 0, tzinfo=timezone.utc)  # make_log spans 2026-03-02 12:00 + 14 days


def by_hand(log: pl.DataFrame, group_by: str) -> dict:
    """Group metrics computed row by row with numpy (linear percentiles, as numpy's default)."""
    keys = {"agent": log["agent"], "route": log["route"], "category": log["category"],
            "day": log["ts"].dt.date(), "hour": log["ts"].dt.truncate("1h")}[group_by].to_list()
    out = {}
    for key in sorted(set(keys)):
        part = log.filter(pl.Series([k == key for k in keys]))
        latency = part["latency_ms"].to_numpy()
        quality = part["quality"].drop_nulls().to_numpy()
        out[key] = {"total_requests": part.height, "total_cost": float(part["cost"].to_numpy().sum()),
                    "avg_cost": float(part["cost"].to_numpy().mean()), "avg_latency_ms": float(latency.mean()),
                    "p50_latency_ms": float(np.percentile(latency, 50)),
                    "p95_latency_ms": float(np.percentile(latency, 95)),
                    "success_rate": float(part["success"].to_numpy().mean()),
                    "avg_quality": float(quality.mean()) if len(quality) else None}
    return out


@pytest.fixture
def logged(seed_con, engine, tmp_path):
    log = make_log(6000, seed=7, unknown=True)
    pq.write_table(log, tmp_path / "log.parquet")
    engine.usage.ingest(tmp_path / "log.parquet")
    return pl.from_arrow(log)


def test_seed_query_runs_verbatim(seed_con):
    seed_con.execute("""SELECT ruvector_record_usage(a, c, s, l, category := 'chat') FROM (VALUES
        ('gpt-4', 0.03, true, 2500.0), ('gpt-4', 0.03, false, 2300.0), ('claude-3-haiku', 0.00025, true, 400.0))
        v(a, c, s, l)""").fetchall()
    result = rows(seed_con, """SELECT * FROM ruvector_routing_analytics(
time_range := '7 days',
group_by := 'agent'
);""")
    assert [r["agent"] for r in result] == ["claude-3-haiku", "gpt-4"]
    gpt4 = result[1]
    assert gpt4["total_requests"] == 2 and gpt4["total_cost"] == pytest.approx(0.06)
    assert gpt4["avg_latency_ms"] == pytest.approx(2400.0) and gpt4["success_rate"] == pytest.approx(0.5)
    assert gpt4["p95_latency_ms"] == pytest.approx(2490.0) and gpt4["p50_latency_ms"] == pytest.approx(2400.0)
    assert all(math.isfinite(v) for r in result for k, v in r.items() if k not in ("agent", "avg_quality"))
    assert list(result[0]) == ["agent", "total_requests", "total_cost", "avg_cost", "avg_latency_ms",
                               "p50_latency_ms", "p95_latency_ms", "success_rate", "avg_quality"]


@pytest.mark.parametrize("group_by", ["agent", "route", "category", "day", "hour"])
def test_every_group_by_equals_a_hand_computation(logged, seed_con, group_by):
    got = rows(seed_con, f"SELECT * FROM ruvector_routing_analytics(time_range := 'all', group_by := '{group_by}')")
    expected = by_hand(logged, group_by)
    assert [r[group_by] for r in got] == list(expected)
    for row in got:
        want = expected[row.pop(group_by)]
        assert row.keys() == want.keys()
        for field, value in want.items():
            assert row[field] == pytest.approx(value, rel=1e-9, abs=1e-12), field


def test_time_range_keeps_the_recent_events(logged, engine):
    for text, span in (("7 days", timedelta(days=7)), ("24 hours", timedelta(hours=24)),
                       ("30 minutes", timedelta(minutes=30)), ("1 week", timedelta(weeks=1))):
        got = engine.analytics.routing_analytics(text, "category", now=NOW)
        recent = logged.filter(pl.col("ts") >= NOW - span)
        expected = by_hand(recent, "category")
        assert got["category"].to_list() == list(expected)
        assert got["total_requests"].to_list() == [v["total_requests"] for v in expected.values()]
        assert got["total_cost"].to_list() == pytest.approx([v["total_cost"] for v in expected.values()])


def test_time_range_forms():
    assert parse_time_range("7 days") == timedelta(days=7)
    assert parse_time_range(" 24 Hours ") == timedelta(hours=24)
    assert parse_time_range("1 week") == parse_time_range("7d") == timedelta(days=7)
    assert parse_time_range("90 s") == timedelta(seconds=90) and parse_time_range("1.5 days") == timedelta(hours=36)
    assert parse_time_range("all") is None and parse_time_range(None) is None


@pytest.mark.parametrize(("call", "message"), [
    ("time_range := 'yesterday-ish'", "invalid time_range='yesterday-ish'"),
    ("time_range := '3 months'", "invalid time_range='3 months'"),
    ("time_range := '-1 days'", "invalid time_range='-1 days'"),
    ("group_by := 'model'", "invalid group_by='model': must be one of agent, route, category, day, hour"),
])
def test_bad_arguments_name_the_argument(logged, seed_con, engine, call, message):
    version = engine.store.version("usage")
    with pytest.raises(duckdb.Error) as caught:
        seed_con.execute(f"SELECT * FROM ruvector_routing_analytics({call})").fetchall()
    assert message in str(caught.value)
    assert engine.store.version("usage") == version


def test_routing_stats_summary(logged, seed_con, engine):
    engine.set_agent_active("gpt-4", False)
    stats = rows(seed_con, "SELECT * FROM ruvector_routing_stats()")[0]
    assert stats["agents"] == 3 and stats["active_agents"] == 2
    assert stats["total_requests"] == 6000 and stats["agents_with_usage"] == 4
    assert stats["total_cost"] == pytest.approx(float(logged["cost"].sum()))
    assert stats["success_rate"] == pytest.approx(float(logged["success"].mean()))
    assert stats["first_ts"] == logged["ts"].min() and stats["last_ts"] == logged["ts"].max()
    assert seed_con.execute("SELECT ruvector_routing_stats().total_requests").fetchone()[0] == 6000


def test_empty_usage_and_the_frame_cache(seed_con, engine):
    assert rows(seed_con, "SELECT * FROM ruvector_routing_analytics()") == []
    assert rows(seed_con, "SELECT * FROM ruvector_routing_stats()")[0]["success_rate"] is None
    first = engine.usage.frame()
    assert engine.usage.frame() is first  # cached by table version
    engine.usage.record("gpt-4", 0.01, True, 100)
    assert engine.usage.frame() is not first and engine.usage.frame().height == 1
