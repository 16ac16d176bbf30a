"""The whole benchmark suite against DESIGN §8, in one run: the GEMM bound, then every operation.

    python benchmarks/run.py [--rows 100000] [--log-rows 1000000] [--long-rows 100000] [--repeats 5] [--peer]

Measures numpy's float32 GEMM rate for each shape an operation uses (the physical bound on this machine, in the same
run), then every DESIGN §8 operation at 768-dim on 100K-row batches (medians of ``--repeats``), the 1M-row Parquet
routing query (child processes: time and peak RSS), one request through SQL and ``Engine.route_one``, long prompts
(RouterBench) through SQL against short queries and the embedder alone on them, and route-parquet's local engine
against SQL writing the same file (benchmarks/bench_long.py). Kernels run with BLAS at one thread,
as every UDF call does (tinydancer_duck/_blas.py): on 2 shared cores a second BLAS thread measured slower, not faster. Prints one table (operation,
µs/row, rows/s, target, × the seed's figure, % of the GEMM bound for the same FLOPs, pass/fail) and writes it as
JSON to benchmarks/results/run-<timestamp>.json. ``--peer`` adds a side-by-side with semantic-router
(benchmarks/bench_peer.py; skipped with a message when it cannot be installed). About 3-5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import bench_fastgrnn, bench_long, bench_peer, bench_route, bench_semantic

RESULTS = REPO / "benchmarks" / "results"
D, H, RANK, ROUTES, AGENTS = 768, 64, 16, 1000, 10
SEED_US = {"step": 45.0, "classification": 120.0, "semantic": 250.0, "decision": 500.0}


def gemm_rate(rows: int, width: int, repeats: int) -> float:
    """FLOP/s of numpy float32 (rows × 768) @ (768 × width) into a preallocated output (median of repeats)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, D), dtype=np.float32)
    w = np.ascontiguousarray(rng.standard_normal((width, D), dtype=np.float32).T)
    out = np.empty((rows, width), np.float32)
    seconds = bench_fastgrnn.median_seconds(lambda: np.matmul(x, w, out=out), repeats)
    return 2.0 * rows * D * width / seconds


def row(operation: str, us: float, target: str, passed: bool | None, *, seed: str | None = None,
        flops_per_row: float = 0.0, rate: float = 0.0, **extra: float) -> dict:
    """One table row; % of the GEMM bound = (time the bound needs for the same FLOPs) / measured time."""
    return {"operation": operation, "us_per_row": us, "rows_per_s": 1e6 / us, "target": target,
            "x_seed": SEED_US[seed] / us if seed else None,
            "pct_gemm_bound": 100.0 * flops_per_row / rate / (us * 1e-6) if flops_per_row and rate else None,
            "passed": passed, **extra}


def kernels(rows: int, repeats: int) -> tuple[dict[str, float], list[dict]]:
    """Each operation and the GEMM of its shape are timed in alternation, repeat by repeat, and the medians kept:
    on a shared machine a bound measured minutes apart from the operation it bounds means little."""
    runs, rank_rates, decisions, route_rates = [], [], [], []
    for _ in range(repeats):
        runs.append(bench_fastgrnn.run(rows, 1))  # its own GEMM (n x 768) @ (768 x 64), then every case
        rank_rates.append(gemm_rate(rows, RANK, 1))
        route_rates.append(gemm_rate(rows, AGENTS, 1))
        decisions.append(bench_route.bench_kernel(rows, 1)["us_per_row"])
    res = {name: {"seconds": statistics.median(r[name]["seconds"] for r in runs), "flops": runs[0][name]["flops"]}
           for name in runs[0]}
    rate = {H: res["gemm"]["flops"] / res["gemm"]["seconds"], RANK: statistics.median(rank_rates),
            AGENTS: statistics.median(route_rates)}
    out = []
    for name, label in (("step full, h given", "FastGRNN step, full rank (h given)"),
                        ("step full, h=None", "FastGRNN step, full rank (h = 0)")):
        us = res[name]["seconds"] / rows * 1e6
        pct = 100.0 * res[name]["flops"] / rate[H] / res[name]["seconds"]
        out.append(row(label, us, ">= 60% of GEMM bound, <= 3 us/row", pct >= 60 and us <= 3.0, seed="step",
                       flops_per_row=res[name]["flops"] / rows, rate=rate[H]))
    for name, label in (("step rank16, h given", "FastGRNN step, low rank r=16 (h given)"),
                        ("step rank16, h=None", "FastGRNN step, low rank r=16 (h = 0)")):
        us = res[name]["seconds"] / rows * 1e6
        out.append(row(label, us, "<= 1 us/row", us <= 1.0, seed="step",
                       flops_per_row=res[name]["flops"] / rows, rate=rate[RANK]))
    us = res["classification full"]["seconds"] / rows * 1e6
    out.append(row("classification (FastGRNN + head 150 + softmax)", us, "<= 4 us/row", us <= 4.0,
                   seed="classification", flops_per_row=res["classification full"]["flops"] / rows, rate=rate[H]))

    rng = np.random.default_rng(0)
    queries, routes = bench_semantic.unit(rng, rows), bench_semantic.unit(rng, ROUTES)
    k_us, g_us = bench_semantic.measure(queries, routes, 1024, repeats)  # interleaved with its GEMM
    flops = 2.0 * ROUTES * D
    rate[ROUTES] = flops / (g_us * 1e-6)
    out.append(row("semantic match, 1K routes, top-3", k_us, ">= 60% of GEMM bound, <= 50 us/row",
                   g_us / k_us >= 0.6 and k_us <= 50, seed="semantic", flops_per_row=flops, rate=rate[ROUTES]))

    us = statistics.median(decisions)
    out.append(row("full routing decision from an embedding, 10 agents", us, "<= 5 us/row", us <= 5.0,
                   seed="decision", flops_per_row=2.0 * AGENTS * D, rate=rate[AGENTS]))
    return {f"(n x {D}) @ ({D} x {w})": v / 1e9 for w, v in rate.items()}, out


def sql(log_rows: int, long_rows: int, repeats: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as scratch:
        store, log = Path(scratch) / "store", Path(scratch) / "log.parquet"
        engine = bench_route.agents_store(store)
        bench_route.write_log(log, log_rows)
        out = [row(r["operation"], r["us_per_row"], r["target"], r["passed"],
                   **{k: r[k] for k in ("seconds", "peak_rss_mib", "ru_maxrss_mib")})
               for r in bench_route.bench_sql_log(store, log, log_rows, repeats)]
        embed = bench_route.bench_embedder(engine, repeats)
        out.append(row(embed["operation"], embed["us_per_row"], embed["target"], embed["passed"]))
        for one in (bench_route.bench_one_request(engine), bench_route.bench_route_one(engine)):
            out.append(row(one["operation"], one["us_per_row"], one["target"], one["passed"]))
    for r in bench_long.bench(long_rows, long_rows, repeats):
        out.append(row(r["operation"], r["us_per_row"], r["target"], r["passed"],
                       **{k: r[k] for k in ("ratio", "mb_per_s") if k in r}))
    return out


def print_table(rows: list[dict]) -> None:
    print(f"| {'operation':<66} | {'µs/row':>8} | {'rows/s':>11} | {'target':<34} | {'× seed':>6} | "
          f"{'% GEMM':>6} | result |")
    print(f"|{'-' * 68}|{'-' * 10}|{'-' * 13}|{'-' * 36}|{'-' * 8}|{'-' * 8}|--------|")
    for r in rows:
        seed = f"{r['x_seed']:.0f}×" if r.get("x_seed") else "-"
        pct = f"{r['pct_gemm_bound']:.0f}%" if r.get("pct_gemm_bound") else "-"
        verdict = {True: "pass", False: "FAIL", None: "-"}[r["passed"]]
        extra = f" ({r['seconds']:.2f} s, peak RSS {r['peak_rss_mib']:.0f} MiB)" if "seconds" in r else ""
        print(f"| {r['operation'] + extra:<66} | {r['us_per_row']:>8.2f} | {r['rows_per_s']:>11,.0f} | "
              f"{r['target']:<34} | {seed:>6} | {pct:>6} | {verdict:<6} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows per kernel batch (default 100K)")
    parser.add_argument("--log-rows", type=int, default=1_000_000, help="rows in the Parquet log (default 1M)")
    parser.add_argument("--long-rows", type=int, default=100_000,
                        help="rows in the long-prompt, short-query and route-parquet logs (default 100K)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per figure, >= 5; the median is kept")
    parser.add_argument("--peer", action="store_true", help="also compare with semantic-router (separate venv)")
    parser.add_argument("--skip-sql", action="store_true", help="kernels only (no Parquet log, no SQL)")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be >= 5 (figures are medians)")
    started = time.perf_counter()
    load_before = os.getloadavg()
    with threadpool_limits(limits=1, user_api="blas"):
        rates, rows = kernels(args.rows, args.repeats)
    if not args.skip_sql:
        rows += sql(args.log_rows, args.long_rows, args.repeats)
    load_after = os.getloadavg()
    print(f"\nnumpy {np.__version__}, {os.cpu_count()} cores, {platform.machine()}; load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after; {time.perf_counter() - started:.0f} s")
    print("GEMM bound, float32, GFLOP/s: " + ", ".join(f"{k} = {v:.1f}" for k, v in rates.items()))
    print_table(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"run-{time.strftime('%Y%m%d-%H%M%S')}.json"
    result = {"gemm_gflops": rates, "load_average": [load_before, load_after], "rows": rows, "peer": None}
    out.write_text(json.dumps(result, indent=2))
    if args.peer:
        result["peer"] = bench_peer.compare(args.repeats)
        if result["peer"] is not None:
            bench_peer.print_comparison(result["peer"])
            out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
