"""Budgets: the seed optimizer query verbatim, coverage then marginal upgrades, exact budget, unserved demand,
zero costs, no history; budget tracking per calendar period and the router's blocked() view."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import duckdb
import polars as pl
import pytest
from conftest import rows

import tinydancer_duck as td
from tinydancer_duck._validate import to_us
from tinydancer_duck.budget._budgets import period_bounds

NOW = datetime(2026, 3, 18, 15, 30, tzinfo=timezone.utc)  # a Wednesday
SEED_OPTIMIZE = """SELECT * FROM ruvector_optimize_budget(
monthly_budget := 100.00,
quality_threshold := 0.85,
latency_threshold_ms := 2000
);"""


def tiered(engine, **extra) -> None:
    """cheap < mid < premium in both price (per call) and quality; a free agent below the quality bar."""
    engine.register_agents([
        {"name": "cheap", "agent_type": "api", "capabilities": ["chat"], "cost_per_call": 0.01, "quality_score": 0.8},
        {"name": "mid", "agent_type": "api", "capabilities": ["chat"], "cost_per_call": 0.02, "quality_score": 0.9},
        {"name": "premium", "agent_type": "api", "capabilities": ["chat"], "cost_per_call": 0.05,
         "quality_score": 0.95},
        {"name": "free-but-bad", "agent_type": "tool", "capabilities": ["chat"], "quality_score": 0.3},
        *extra.get("more", []),
    ])


def by_kind(frame: pl.DataFrame) -> dict:
    return {(r["kind"], r["agent"]): r for r in frame.to_dicts()}


def check_invariants(frame: pl.DataFrame, budget: float, demand: float) -> None:
    assert frame["allocation"].sum() == pytest.approx(budget, rel=1e-12)
    assert frame["expected_spend"].sum() <= budget
    assert frame["expected_requests"].sum() == pytest.approx(demand, rel=1e-12)
    assert frame["share"].sum() == pytest.approx(1.0)
    assert frame.filter(pl.col("kind") != "agent")["kind"].to_list() == ["unserved", "unallocated"]
    numbers = frame.select("expected_requests", "allocation", "expected_spend", "share").to_numpy()
    assert (numbers >= 0).all() and all(math.isfinite(v) for v in numbers.ravel())


def test_seed_query_runs_verbatim_after_usage(seed_con, engine):
    seed_con.execute("""SELECT ruvector_record_usage(agent, cost, true, latency, category := category,
            tokens_in := 200, ts := TIMESTAMPTZ '2026-03-01 00:00:00+00' + INTERVAL (i) MINUTE)
        FROM (SELECT i, ['gpt-4', 'claude-3-haiku', 'code-specialist'][1 + i % 3] AS agent,
                     [0.012, 0.0001, 0.001][1 + i % 3] AS cost, [2400.0, 380.0, 110.0][1 + i % 3] AS latency,
                     ['analysis', 'chat', 'debugging'][1 + i % 3] AS category FROM range(3000) t(i))""").fetchall()
    named = rows(seed_con, SEED_OPTIMIZE)
    positional = rows(seed_con, "SELECT * FROM ruvector_optimize_budget(100.00, 0.85, 2000)")
    assert named == positional
    frame = pl.DataFrame(named)
    check_invariants(frame, 100.0, 3000.0)
    # gpt-4 is too slow (2500 ms) and haiku below 0.85: code-specialist ($0.001 a call) serves all 3000 requests
    got = by_kind(frame)
    assert got[("agent", "code-specialist")]["expected_requests"] == pytest.approx(3000.0)
    assert got[("agent", "code-specialist")]["expected_spend"] == pytest.approx(3.0)
    assert got[("agent", "code-specialist")]["expected_quality"] == pytest.approx(0.9)
    assert got[("unserved", None)]["expected_requests"] == 0.0
    assert got[("unallocated", None)]["allocation"] == pytest.approx(97.0)


def test_coverage_first_then_marginal_upgrades(engine):
    tiered(engine)
    demand = [{"category": "chat", "requests": 100}]
    # base: 100 x cheap = $1; cheap->mid gains 10 quality/$ ($1 more), mid->premium 1.67/$ ($3 more for all)
    plan = by_kind(engine.budgets.optimize(3.0, 0.5, 5000, demand=demand))
    assert ("agent", "cheap") not in plan
    assert plan[("agent", "mid")]["expected_requests"] == pytest.approx(200 / 3)
    assert plan[("agent", "premium")]["expected_requests"] == pytest.approx(100 / 3)
    assert plan[("agent", "premium")]["expected_spend"] == pytest.approx(5 / 3)
    assert plan[("unallocated", None)]["allocation"] == 0.0
    rich = engine.budgets.optimize(50.0, 0.5, 5000, demand=demand)
    check_invariants(rich, 50.0, 100.0)
    assert by_kind(rich)[("agent", "premium")]["expected_spend"] == pytest.approx(5.0)
    assert by_kind(rich)[("unallocated", None)]["allocation"] == pytest.approx(45.0)


def test_a_short_budget_is_spent_exactly_and_reports_unserved_demand(engine):
    tiered(engine, more=[{"name": "coder", "agent_type": "tool", "capabilities": ["code"], "cost_per_call": 0.03,
                          "quality_score": 0.9}])
    demand = pl.DataFrame({"category": ["chat", "code", "legal"], "requests": [1000.0, 500.0, 40.0]})
    plan = engine.budgets.optimize(12.0, 0.5, 5000, demand=demand)
    check_invariants(plan, 12.0, 1540.0)
    got = by_kind(plan)
    # chat and legal (cheap: 80 quality/$; nobody holds 'legal', so anyone eligible) come before code (only
    # coder holds 'code': 30 quality/$): $10 + $0.40, then the last $1.60 buys 53.3 of the 500 code requests
    assert got[("agent", "cheap")]["expected_requests"] == pytest.approx(1040.0)
    assert got[("agent", "cheap")]["categories"] == ["chat", "legal"]
    assert got[("agent", "coder")]["expected_requests"] == pytest.approx(1.6 / 0.03)
    assert got[("agent", "coder")]["expected_spend"] == pytest.approx(1.6)
    assert plan["expected_spend"].sum() == pytest.approx(12.0) and plan["expected_spend"].sum() <= 12.0
    assert got[("unserved", None)]["categories"] == ["code"]
    assert got[("unserved", None)]["expected_requests"] == pytest.approx(500.0 - 1.6 / 0.03)
    assert got[("unallocated", None)]["allocation"] == 0.0
    short = by_kind(engine.budgets.optimize(7.77, 0.5, 5000, demand=demand))
    assert short[("agent", "cheap")]["expected_requests"] == pytest.approx(777.0)
    assert short[("unserved", None)]["expected_requests"] == pytest.approx(763.0)
    assert short[("unserved", None)]["categories"] == ["chat", "code", "legal"]


def test_zero_costs_zero_requests_and_no_eligible_agent(engine):
    engine.register_agents([
        {"name": "free", "agent_type": "tool", "capabilities": ["chat"], "quality_score": 0.9},
        {"name": "also-free", "agent_type": "tool", "capabilities": ["chat"], "quality_score": 0.95},
        {"name": "slow", "agent_type": "human", "capabilities": ["legal"], "cost_per_call": 5.0,
         "avg_latency_ms": 60000, "quality_score": 0.99},
    ])
    demand = {"category": ["chat", "empty", "legal"], "requests": [300.0, 0.0, 10.0], "avg_tokens": [50.0, None, 0]}
    plan = engine.budgets.optimize(10.0, 0.8, 5000, demand=demand)
    check_invariants(plan, 10.0, 310.0)
    got = by_kind(plan)
    # free: the better of the two free agents; 'slow' holds 'legal' but is over the latency threshold, so legal
    # falls back to every eligible agent
    assert got[("agent", "also-free")]["expected_requests"] == 310.0
    assert got[("agent", "also-free")]["categories"] == ["chat", "legal"]
    assert got[("agent", "also-free")]["expected_spend"] == 0.0 and got[("agent", "also-free")]["share"] == 0.0
    assert got[("unallocated", None)]["allocation"] == 10.0
    nobody = by_kind(engine.budgets.optimize(10.0, 0.97, 5000, demand=demand))  # only 'slow' is good enough
    assert list(nobody) == [("unserved", None), ("unallocated", None)]
    assert nobody[("unserved", None)]["expected_requests"] == 310.0
    assert nobody[("unserved", None)]["categories"] == ["chat", "legal"]
    assert nobody[("unallocated", None)]["share"] == 1.0


def test_demand_from_a_parquet_file_in_sql(con, engine, tmp_path):
    tiered(engine)
    pl.DataFrame({"category": ["chat"], "requests": [100], "avg_tokens": [120.0]}).write_parquet(tmp_path / "d.parquet")
    got = rows(con, f"SELECT * FROM ruvector_optimize_budget(3.0, 0.5, demand := '{tmp_path}/d.parquet')")
    assert [r["agent"] for r in got if r["kind"] == "agent"] == ["premium", "mid"]
    with pytest.raises(duckdb.Error, match="invalid demand='.*nope.parquet'"):
        con.execute(f"SELECT * FROM ruvector_optimize_budget(3.0, demand := '{tmp_path}/nope.parquet')").fetchall()


def test_the_seeds_optimizer_runs_on_a_fresh_store_and_says_what_it_assumed(seed_con):
    rows = seed_con.execute("SELECT * FROM ruvector_optimize_budget(monthly_budget := 100.00, "
                            "quality_threshold := 0.85, latency_threshold_ms := 2000)").fetchall()
    columns = [d[0] for d in seed_con.description]
    table = [dict(zip(columns, row)) for row in rows]
    agents = [r for r in table if r["kind"] == "agent"]
    # gpt-4 is too slow (2500 ms) and claude-3-haiku below 0.85: only code-specialist is eligible
    assert [r["agent"] for r in agents] == ["code-specialist"]
    assert sum(r["expected_requests"] for r in table) == pytest.approx(10_000)
    assert all(r["basis"].startswith("assumed: no usage is recorded, so 10,000 requests a month") for r in table)
    assert sum(r["allocation"] for r in table) == pytest.approx(100.0)


@pytest.mark.parametrize(("call", "message"), [
    ("0", "invalid monthly_budget=0.0: must be > 0"),
    ("-5", "invalid monthly_budget=-5.0: must be > 0"),
    ("NULL", "invalid monthly_budget=None: must be a finite number"),
    ("'NaN'::DOUBLE", "invalid monthly_budget=nan: must be a finite number"),
    ("100.0, quality_threshold := 1.5", "invalid quality_threshold=1.5: must be within [0, 1]"),
    ("100.0, latency_threshold_ms := -1", "invalid latency_threshold_ms=-1.0: must be >= 0"),
])
def test_bad_optimizer_arguments(seed_con, engine, call, message):
    with pytest.raises(duckdb.Error) as caught:
        seed_con.execute(f"SELECT * FROM ruvector_optimize_budget({call})").fetchall()
    assert message in str(caught.value)
    with pytest.raises(td.InvalidArgument, match="invalid demand.requests=-1.0"):
        engine.budgets.optimize(10.0, demand={"category": ["a"], "requests": [-1.0]})
    with pytest.raises(td.InvalidArgument, match="needs a 'category' column"):
        engine.budgets.optimize(10.0, demand={"requests": [1.0]})


def test_budget_tracking_per_calendar_period(seed_con, engine):
    engine.usage.record(["gpt-4", "gpt-4", "claude-3-haiku", "gpt-4"], [2.0, 3.0, 0.5, 7.0], True, 100.0,
                        ts=[NOW - timedelta(hours=1), NOW - timedelta(days=2), NOW, NOW - timedelta(days=40)])
    seed_con.execute("SELECT ruvector_set_budget(20.0), ruvector_set_budget(4.0, agent := 'gpt-4', period := 'day'),"
                     " ruvector_set_budget(1.0, agent := 'claude-3-haiku', period := 'week')").fetchall()
    status = rows(seed_con, f"SELECT * FROM ruvector_budget_status(now := TIMESTAMPTZ '{NOW.isoformat()}')")
    assert [(r["scope"], r["agent"], r["period"]) for r in status] == [
        ("global", None, "month"), ("agent", "claude-3-haiku", "week"), ("agent", "gpt-4", "day")]
    assert [r["spent"] for r in status] == pytest.approx([5.5, 0.5, 2.0])  # March; this week; today
    assert [r["remaining"] for r in status] == pytest.approx([14.5, 0.5, 2.0])
    assert status[2]["period_start"] == datetime(2026, 3, 18, tzinfo=timezone.utc)
    assert status[1]["period_start"] == datetime(2026, 3, 16, tzinfo=timezone.utc)  # Monday
    blocked, remaining, until = engine.budgets.blocked(["claude-3-haiku", "code-specialist", "gpt-4"], NOW)
    assert blocked.tolist() == [False, False, False] and remaining == pytest.approx(14.5)
    assert until == to_us(datetime(2026, 3, 19, tzinfo=timezone.utc))  # the day budget's period ends first
    engine.usage.record("gpt-4", 2.5, True, 100.0, ts=NOW)
    blocked, remaining, _ = engine.budgets.blocked(["claude-3-haiku", "code-specialist", "gpt-4"], NOW)
    assert blocked.tolist() == [False, False, True] and remaining == pytest.approx(12.0)
    tomorrow = NOW + timedelta(days=1)
    assert engine.budgets.blocked(["gpt-4"], tomorrow)[0].tolist() == [False]
    # replacing keeps one budget per scope; removing the global one leaves NaN
    engine.budgets.set(30.0)
    assert engine.budgets.budgets().height == 3
    assert seed_con.execute("SELECT ruvector_remove_budget()").fetchone()[0] is True
    assert seed_con.execute("SELECT ruvector_remove_budget()").fetchone()[0] is False
    assert math.isnan(engine.budgets.blocked(["gpt-4"], NOW)[1])


@pytest.mark.parametrize(("call", "message"), [
    ("-1", "invalid amount=-1.0: must be >= 0"),
    ("NULL", "invalid amount=None: is required"),
    ("'inf'::DOUBLE", "invalid amount=inf: must be a finite number"),
    ("5, period := 'year'", "invalid period='year': must be one of day, week, month"),
    ("5, agent := 'ghost'", "agent 'ghost' not found"),
])
def test_bad_budgets_change_nothing(seed_con, engine, call, message):
    engine.budgets.set(10.0)
    version = engine.store.version("budgets")
    with pytest.raises(duckdb.Error) as caught:
        seed_con.execute(f"SELECT ruvector_set_budget({call})").fetchall()
    assert message in str(caught.value)
    assert engine.store.version("budgets") == version


def test_period_bounds():
    assert period_bounds("month", datetime(2026, 12, 31, 23, tzinfo=timezone.utc)) == (
        datetime(2026, 12, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc))
    assert period_bounds("week", datetime(2026, 3, 22, 23, 59, tzinfo=timezone.utc))[0] == datetime(
        2026, 3, 16, tzinfo=timezone.utc)
    assert period_bounds("day", datetime(2026, 3, 22, 1, tzinfo=timezone(timedelta(hours=5)))) == (
        datetime(2026, 3, 21, tzinfo=timezone.utc), datetime(2026, 3, 22, tzinfo=timezone.utc))
