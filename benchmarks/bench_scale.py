"""Beyond one machine, measured (DESIGN §8, §10): one 1M-row Parquet log routed by every engine in one run.

    python benchmarks/bench_scale.py [--rows 1000000] [--batch-rows 8192] [--repeats 1] [--engines sql,local,ray,spark]

Engines: DuckDB SQL (``SELECT ruvector_route(request)``, 2048-row UDF calls), ``route_batch`` in one process over
8192-row batches, Ray Data with 1 and 2 worker CPUs, Spark local[1] and local[2] (when pyspark and Java are present;
Ray when ray is installed). Each engine runs in a child process of its own; the clock and the CPU count start after
the engine is up (ray.init, the Spark session) and after a warm-up over 4 batches per worker (so every worker process has started), and stop when every decision is
materialized (SQL: an Arrow table; local: in memory; Ray and Spark: written as Parquet). CPU µs/row is the
user + system CPU of the child and every process it started (Ray's raylet and workers, Spark's JVM and Python
workers), read from /proc, so it counts all the work an engine does per row. Every engine's decisions are compared
with the SQL path's on every row: agent names equal, the largest confidence difference printed.

Prints a table and writes benchmarks/results/scale-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
ENGINES = ("sql", "local", "ray", "spark")


def tree_cpu_seconds(root: int) -> float:
    """user + system CPU of ``root`` and its live descendants (with the children they reaped), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = sum(int(v) for v in fields[11:15]) / ticks  # utime, stime, cutime, cstime
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0.0)
        stack += [child for child, parent in parents.items() if parent == pid]
    return total


# -- the child: one engine -----------------------------------------------------------------------------------------
def child(engine: str, workers: int, snapshot_path: str, store: str, log: str, out: str, batch_rows: int) -> dict:
    """Route the log on one engine; returns seconds, CPU seconds and where the decisions are."""
    import pyarrow.parquet as pq

    import tinydancer_duck as td

    snapshot = td.RoutingSnapshot.load(snapshot_path)
    warm = str(Path(out).parent / f"warm-{engine}-{workers}.parquet")
    pq.write_table(pq.read_table(log).slice(0, 4 * batch_rows * max(workers, 1)), warm)  # every worker starts
    run = {"sql": _sql, "local": _local, "ray": _ray, "spark": _spark}[engine]
    return run(snapshot=snapshot, workers=workers, store=store, log=log, warm=warm, out=out, batch_rows=batch_rows)


def _timed(work) -> tuple[float, float]:
    pid = os.getpid()
    cpu, started = tree_cpu_seconds(pid), time.perf_counter()
    work()
    return time.perf_counter() - started, tree_cpu_seconds(pid) - cpu


def _sql(*, store: str, log: str, warm: str, out: str, **_) -> dict:
    import pyarrow.parquet as pq

    import tinydancer_duck as td

    con = td.connect(store)
    query = ("SELECT request_id, r.agent_name, r.confidence FROM "
             "(SELECT request_id, ruvector_route(request) AS r FROM read_parquet(?))")
    con.sql(query, params=[warm]).to_arrow_table()
    result = {}
    seconds, cpu = _timed(lambda: result.update(table=con.sql(query, params=[log]).to_arrow_table()))
    pq.write_table(result["table"], out)
    return {"seconds": seconds, "cpu_s": cpu, "output": out}


def _local(*, snapshot, log: str, warm: str, out: str, batch_rows: int, **_) -> dict:
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from tinydancer_duck.distributed import route_batch

    def work(path: str) -> pa.Table:
        return pa.Table.from_batches([route_batch(snapshot, b, keep=["request_id"]) for b in
                                      ds.dataset(path).to_batches(batch_size=batch_rows, columns=["request_id",
                                                                                                  "request"])])
    work(warm)
    result = {}
    seconds, cpu = _timed(lambda: result.update(table=work(log)))
    pq.write_table(result["table"].select(["request_id", "agent_name", "confidence"]), out)
    return {"seconds": seconds, "cpu_s": cpu, "output": out}


def _ray(*, snapshot, workers: int, log: str, warm: str, out: str, batch_rows: int, **_) -> dict:
    import ray

    from tinydancer_duck.distributed import ray_route

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False

        def work(path: str, target: str) -> None:
            ray_route(ray.data.read_parquet(path, columns=["request_id", "request"]), snapshot,
                      keep=["request_id"], batch_rows=batch_rows).write_parquet(target)
        work(warm, out + "-warm")
        seconds, cpu = _timed(lambda: work(log, out))
    finally:
        ray.shutdown()
    return {"seconds": seconds, "cpu_s": cpu, "output": out}


def _spark(*, snapshot, workers: int, log: str, warm: str, out: str, batch_rows: int, **_) -> dict:
    from tinydancer_duck.distributed import local_session, spark_route

    session = local_session(workers, batch_rows=batch_rows)
    session.sparkContext.setLogLevel("ERROR")
    try:
        def work(path: str, target: str) -> None:
            frame = session.read.parquet(path).select("request_id", "request")
            spark_route(frame, snapshot, keep=["request_id"], partitions=workers * 2).write.mode(
                "overwrite").parquet(target)
        work(warm, out + "-warm")
        seconds, cpu = _timed(lambda: work(log, out))
    finally:
        session.stop()
    return {"seconds": seconds, "cpu_s": cpu, "output": out}


# -- the parent: set up, run every engine in a child, compare --------------------------------------------------------
def make_inputs(folder: Path, rows: int) -> tuple[Path, Path, Path]:
    """A store with the packaged agents and a semantic route, its snapshot file, and a log of ``rows`` requests."""
    sys.path.insert(0, str(REPO / "tests"))
    from _distributed import request_log, routing_engine

    engine = routing_engine(folder / "store")
    snapshot = engine.snapshot().save(folder / "snap.tds")
    log = request_log(folder / "log.parquet", rows)
    return folder / "store", snapshot, log


def run_engine(engine: str, workers: int, paths: dict, batch_rows: int) -> dict:
    out = str(paths["folder"] / f"out-{engine}-{workers}")
    args = [sys.executable, __file__, "--child", engine, str(workers), str(paths["snapshot"]), str(paths["store"]),
            str(paths["log"]), out, str(batch_rows)]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "RAY_DEDUP_LOGS": "0"}
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        return {"engine": engine, "workers": workers, "error": done.stderr.strip().splitlines()[-1:]}
    return {"engine": engine, "workers": workers, **json.loads(done.stdout.strip().splitlines()[-1])}


def compare(output: str, reference) -> dict:
    import numpy as np
    import pyarrow.dataset as ds

    table = ds.dataset(output, format="parquet").to_table(columns=["request_id", "agent_name", "confidence"])
    table = table.sort_by("request_id")
    agents_equal = table["agent_name"].to_pylist() == reference["agent_name"].to_pylist()
    a = table["confidence"].to_numpy(zero_copy_only=False).astype(float)
    b = reference["confidence"].to_numpy(zero_copy_only=False).astype(float)
    both = ~(np.isnan(a) | np.isnan(b))
    return {"rows_out": table.num_rows, "agents_equal": agents_equal,
            "max_confidence_diff": float(np.abs(a[both] - b[both]).max()) if both.any() else 0.0}


def plan(engines: list[str]) -> list[tuple[str, int]]:
    runs = []
    for engine in engines:
        if engine in ("sql", "local"):
            runs.append((engine, 1))
        elif engine == "ray" and _importable("ray"):
            runs += [("ray", 1), ("ray", 2)]
        elif engine == "spark" and _importable("pyspark") and shutil.which("java"):
            runs += [("spark", 1), ("spark", 2)]
        else:
            print(f"skipped {engine}: " + ("no Java runtime" if engine == "spark" and _importable("pyspark")
                                          else f"{engine} is not installed"), file=sys.stderr)
    return runs


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def print_table(results: list[dict], rows: int) -> None:
    print(f"\n{rows:,} rows | engine | workers | seconds | rows/s | CPU µs/row | agents = SQL | max Δconfidence")
    for r in results:
        if "error" in r:
            print(f"  {r['engine']:6} {r['workers']}  failed: {r['error']}")
            continue
        print(f"  {r['engine']:6} {r['workers']:>2} {r['seconds']:8.2f} {r['rows_per_s']:>10,.0f} "
              f"{r['cpu_us_per_row']:8.2f}   {r['agents_equal']!s:5}  {r['max_confidence_diff']:.1e}")


def summary(results: list[dict]) -> dict:
    by = {(r["engine"], r["workers"]): r for r in results if "error" not in r}
    out = {}
    if ("sql", 1) in by and ("local", 1) in by:
        sql, local = by[("sql", 1)], by[("local", 1)]
        out["sql_vs_route_batch_wall"] = local["rows_per_s"] / sql["rows_per_s"]
        out["sql_vs_route_batch_cpu"] = sql["cpu_us_per_row"] / local["cpu_us_per_row"]
    for engine in ("ray", "spark"):
        if (engine, 1) in by and (engine, 2) in by:
            out[f"{engine}_2_vs_1"] = by[(engine, 2)]["rows_per_s"] / by[(engine, 1)]["rows_per_s"]
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine, workers, snapshot, store, log, out, batch_rows = sys.argv[2:9]
        print(json.dumps(child(engine, int(workers), snapshot, store, log, out, int(batch_rows))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the log (default 1M)")
    parser.add_argument("--batch-rows", type=int, default=8192, help="rows per route_batch call (default 8192)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per engine; the median time is kept")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of " + ",".join(ENGINES))
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        folder = Path(scratch)
        store, snapshot, log = make_inputs(folder, args.rows)
        paths = {"folder": folder, "store": store, "snapshot": snapshot, "log": log}
        results = []
        for engine, workers in plan(["sql"] + [e for e in args.engines.split(",") if e != "sql"]):
            runs = [run_engine(engine, workers, paths, args.batch_rows) for _ in range(max(args.repeats, 1))]
            ok = [r for r in runs if "error" not in r]
            if not ok:
                results.append(runs[0])
                continue
            best = sorted(ok, key=lambda r: r["seconds"])[len(ok) // 2]
            best["seconds_all"] = [r["seconds"] for r in ok]
            best["rows_per_s"] = args.rows / best["seconds"]
            best["cpu_us_per_row"] = statistics.median(r["cpu_s"] for r in ok) / args.rows * 1e6
            results.append(best)
            print(f"{engine} x{workers}: {best['seconds']:.2f} s", file=sys.stderr, flush=True)
        import pyarrow.parquet as pq

        reference = pq.read_table(results[0]["output"]).sort_by("request_id")
        for r in results:
            if "error" not in r:
                r.update(compare(r["output"], reference))
    record = {"rows": args.rows, "batch_rows": args.batch_rows, "results": results, "summary": summary(results),
              "load_before": load_before, "load_after": os.getloadavg(), "machine": platform.machine(),
              "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    print_table(results, args.rows)
    print("summary:", json.dumps(record["summary"]), f"load {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(record, indent=2, default=str))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
