"""Usage benchmarks: bulk ingest of a 1M-row Parquet log, vectorized SQL record, analytics, health and budgets.

    python benchmarks/bench_usage.py [--rows 1000000] [--sql-rows 100000] [--repeats 3]

Every ingest checks that nothing was lost (row count and cost sum equal the source). Prints a table and writes
benchmarks/results/usage-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import tinydancer_duck as td

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
AGENTS = [
    {"name": "gpt-4", "agent_type": "llm", "capabilities": ["reasoning", "code", "analysis"],
     "cost_per_1k_tokens": 0.03, "avg_latency_ms": 2500, "quality_score": 0.95},
    {"name": "claude-3-haiku", "agent_type": "llm", "capabilities": ["chat", "classification"],
     "cost_per_1k_tokens": 0.00025, "avg_latency_ms": 400, "quality_score": 0.8},
    {"name": "code-specialist", "agent_type": "tool", "capabilities": ["code", "debugging"],
     "cost_per_call": 0.001, "avg_latency_ms": 100, "quality_score": 0.9},
    *({"name": f"agent-{i:02d}", "agent_type": "api", "capabilities": [f"skill-{i % 5}"],
       "cost_per_call": 0.0005 * (i + 1), "avg_latency_ms": 200 + 50 * i, "quality_score": 0.6 + 0.02 * i}
      for i in range(7)),
]


def write_log(path: Path, rows: int, *, seed: int = 0) -> tuple[int, float]:
    """A request log over the last 30 days in time order, written in 100K-row groups; returns (rows, cost sum)."""
    rng = np.random.default_rng(seed)
    names = np.array([a["name"] for a in AGENTS])
    end = datetime.now(timezone.utc)
    offsets = np.sort(rng.integers(0, 30 * 86400 * 10**6, rows))
    start_us = int((end - timedelta(days=30)).timestamp() * 10**6)
    total = 0.0
    chunk = 100_000
    schema = None
    writer = None
    try:
        for lo in range(0, rows, chunk):
            n = min(chunk, rows - lo)
            cost = rng.uniform(0.0, 0.05, n)
            total += math.fsum(cost)
            table = pa.table({
                "ts": pa.array(start_us + offsets[lo:lo + n], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                "request_id": pa.array([f"req-{i}" for i in range(lo, lo + n)]),
                "agent": pa.array(rng.choice(names, n)),
                "route": pa.array(rng.choice(["support", "coding", "docs"], n)),
                "category": pa.array(rng.choice(["chat", "code", "analysis", "debugging"], n)),
                "tokens_in": rng.integers(10, 800, n),
                "tokens_out": rng.integers(10, 400, n),
                "cost": cost,
                "latency_ms": rng.gamma(2.0, 300.0, n),
                "success": rng.random(n) > 0.05,
                "quality": pa.array(rng.uniform(0.5, 1.0, n), mask=rng.random(n) < 0.5),
            })
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(path, schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return rows, total


def check_lossless(engine: td.Engine, rows: int, cost: float) -> None:
    frame = engine.usage.frame()
    stored_cost = float(frame["cost"].sum())
    if frame.height != rows or not math.isclose(stored_cost, cost, rel_tol=1e-9):
        raise SystemExit(f"lost data: {frame.height} rows, cost {stored_cost} vs {rows} rows, cost {cost}")


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench(rows: int, sql_rows: int, repeats: int) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        log, small = scratch / "log.parquet", scratch / "small.parquet"
        n, cost = write_log(log, rows)
        n_small, cost_small = write_log(small, sql_rows, seed=1)

        ingest_times = []
        for run in range(repeats):
            engine = td.Engine(scratch / f"ingest-{run}")
            engine.register_agents(AGENTS)
            ingest_times.append(timed(lambda: engine.usage.ingest(log)))  # noqa: B023 - called at once
            check_lossless(engine, n, cost)
        seconds = statistics.median(ingest_times)
        results.append({"operation": f"bulk ingest (engine.usage.ingest), {n:,} rows", "seconds": seconds,
                        "rows_per_s": n / seconds, "check": "row count and cost sum equal the source"})

        sql_times = []
        for run in range(repeats):
            sql_engine = td.Engine(scratch / f"sql-{run}")
            sql_engine.register_agents(AGENTS)
            con = sql_engine.connect()
            query = (f"SELECT count(*) FILTER (ok) FROM (SELECT ruvector_record_usage(agent, cost, success, "
                     f"latency_ms, ts := ts, request_id := request_id, route := route, category := category, "
                     f"tokens_in := tokens_in, tokens_out := tokens_out, quality := quality) AS ok "
                     f"FROM '{small}')")
            sql_times.append(timed(lambda: con.execute(query).fetchall()))  # noqa: B023 - called at once
            check_lossless(sql_engine, n_small, cost_small)
        seconds = statistics.median(sql_times)
        results.append({"operation": f"SELECT ruvector_record_usage(...) FROM 'log.parquet', {n_small:,} rows",
                        "seconds": seconds, "rows_per_s": n_small / seconds,
                        "check": "row count and cost sum equal the source"})

        # analytics, health, budgets over the 1M-row usage table of the last ingest, from a fresh engine (cold)
        engine = td.Engine(engine.store.path)
        con = engine.connect()
        analytics = "SELECT * FROM ruvector_routing_analytics(time_range := '7 days', group_by := '{}')"
        cold = timed(lambda: con.execute(analytics.format("agent")).fetchall())
        results.append({"operation": f"ruvector_routing_analytics, cold (reads {n:,} usage rows)", "seconds": cold})
        for group in ("agent", "route", "category", "day", "hour"):
            warm = statistics.median(timed(lambda: con.execute(analytics.format(group)).fetchall())  # noqa: B023
                                     for _ in range(repeats))
            results.append({"operation": f"ruvector_routing_analytics group_by := '{group}', warm", "seconds": warm})
        whole = statistics.median(timed(lambda: con.execute(
            "SELECT * FROM ruvector_routing_analytics('all', 'hour')").fetchall()) for _ in range(repeats))
        results.append({"operation": f"ruvector_routing_analytics('all', 'hour') over {n:,} rows, warm",
                        "seconds": whole})
        names = engine.registry.snapshot().names
        engine.budgets.set(1000.0)
        engine.budgets.set(10.0, agent="gpt-4", period="day")
        for label, call in (("Health.states", lambda: engine.health.states(names)),
                            ("Budgets.blocked", lambda: engine.budgets.blocked(names))):
            results.append({"operation": f"{label}, first call: builds from all {n:,} usage rows",
                            "seconds": timed(call)})
            engine.usage.record("gpt-4", 0.01, True, 100.0)  # a new usage version, made by this process
            results.append({"operation": f"{label}, first call after this process recorded an event",
                            "seconds": timed(call)})
            results.append({"operation": f"{label}, cached (no usage write since)",
                            "seconds": statistics.median(timed(call) for _ in range(20))})
        results += live_loop(con, n, iterations=max(60, 20 * repeats))
        results.append({"operation": "ruvector_optimize_budget(100.00, 0.85, 2000) from 30 days of usage",
                        "seconds": statistics.median(timed(lambda: con.execute(
                            "SELECT * FROM ruvector_optimize_budget(100.00, 0.85, 2000)").fetchall())
                            for _ in range(repeats))})
    return results


def live_loop(con, usage_rows: int, iterations: int) -> list[dict]:
    """A live service: record one usage event, then route the next request, through SQL, ``iterations`` times.

    Each record appends to the usage table (and rewrites the agent's running stats), so the route after it cannot
    use the previous version's caches: it extends them by the appended row, or re-reads the table when it cannot.
    """
    record = "SELECT ruvector_record_usage('gpt-4', 0.002, true, 900.0)"
    route = "SELECT * FROM ruvector_route(request := 'Write a Python function', optimize_for := 'cost')"
    con.execute(route).fetchall()
    records, routes = [], []
    for _ in range(iterations):
        records.append(timed(lambda: con.execute(record).fetchall()))
        routes.append(timed(lambda: con.execute(route).fetchall()))
    ordered = sorted(routes)
    return [
        {"operation": f"live loop: ruvector_record_usage, one event ({usage_rows:,} usage rows, budgets set)",
         "seconds": statistics.median(records)},
        {"operation": "live loop: the one-request route right after it, median", "seconds": statistics.median(routes)},
        {"operation": f"live loop: the same, p90 of {iterations} (max {ordered[-1] * 1e3:.1f} ms)",
         "seconds": ordered[int(0.9 * len(ordered))], "max_seconds": ordered[-1]},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the ingested log (default 1M)")
    parser.add_argument("--sql-rows", type=int, default=100_000, help="rows recorded through SQL (default 100K)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per measurement; the median is kept")
    args = parser.parse_args()
    results = bench(args.rows, args.sql_rows, args.repeats)
    print(f"{'operation':<78} {'seconds':>9} {'rows/s':>12}")
    for r in results:
        rate = f"{r['rows_per_s']:>12,.0f}" if "rows_per_s" in r else f"{'':>12}"
        print(f"{r['operation']:<78} {r['seconds']:>9.4f} {rate}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"usage-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
