"""Long prompts and route-parquet beside DESIGN §8: real LLM prompts through SQL against short queries in the same run,
the embedder alone on them, and ``route-parquet --engine local`` against SQL writing the same file.

    python benchmarks/bench_long.py [--rows 100000] [--parquet-rows 100000] [--repeats 5]

Long prompts are RouterBench's (../shared/datasets/routerbench/*_train.parquet, the ``prompt`` column as stored: a
Python-list literal of turns, mean 1.6 KB, few-shot); the rows that need them are skipped with a message when the
files are absent. Short queries are CLINC150's (bench_route.write_log). Each SQL figure is the median of fresh child
processes, short and long alternating, so the ratio is measured side by side. route-parquet and SQL both read the
same log and write request_id, request and every decision field to one Parquet file (SQL: ``COPY (SELECT request_id,
request, unnest(ruvector_route(request)) ...) TO ...``), alternating in this process.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import bench_route

ROUTERBENCH = REPO.parent / "shared" / "datasets" / "routerbench"
ROUTE_QUERY = "SELECT count(r.agent_name) FROM (SELECT ruvector_route(request) AS r FROM '{log}')"
LONG_RATIO_TARGET, PARQUET_RATIO_TARGET = 0.20, 0.9


def long_prompts() -> list[str] | None:
    """RouterBench's prompts as stored (None without the shared files)."""
    paths = sorted(ROUTERBENCH.glob("*_train.parquet"))
    if not paths:
        return None
    return [p for path in paths for p in pq.read_table(path, columns=["prompt"])["prompt"].to_pylist()]


def write_long_log(path: Path, rows: int, prompts: list[str]) -> float:
    """A log of ``rows`` prompts drawn in a seeded order (request_id, request); returns their mean bytes."""
    order = np.random.default_rng(0).integers(0, len(prompts), rows)
    requests = pa.array([prompts[i] for i in order], pa.string())
    pq.write_table(pa.table({"request_id": np.arange(rows), "request": requests}), path)
    return float(pc.mean(pc.binary_length(requests)).as_py())


def bench_long_sql(store: Path, short_log: Path, long_log: Path, rows: int, repeats: int, mean_bytes: float
                   ) -> list[dict]:
    """``SELECT ruvector_route(request)`` over a short and a long log of the same rows, alternating child processes."""
    seconds: dict[str, list[float]] = {"short": [], "long": []}
    for _ in range(max(2, repeats // 2)):
        for name, log in (("short", short_log), ("long", long_log)):
            seconds[name].append(bench_route.run_child(store, log, ROUTE_QUERY)["seconds"])
    short, long = (statistics.median(seconds[k]) for k in ("short", "long"))
    ratio = short / long
    return [{"operation": f"SELECT ruvector_route(request), short queries (CLINC150), {rows:,} rows",
             "us_per_row": short / rows * 1e6, "rows_per_s": rows / short, "target": "(the ratio's reference)",
             "passed": None},
            {"operation": f"the same, long prompts (RouterBench, mean {mean_bytes / 1e3:.1f} KB): {ratio:.3f}x the "
                          f"short rows/s, 1M rows in {long / rows * 1e6:.0f} s",
             "us_per_row": long / rows * 1e6, "rows_per_s": rows / long,
             "target": f">= {LONG_RATIO_TARGET:.2f}x short (1M < 50 s)", "passed": ratio >= LONG_RATIO_TARGET,
             "ratio": ratio}]


def bench_long_embedder(prompts: list[str], repeats: int, rows: int = 20_480) -> dict:
    """The default embedder alone on long prompts in DuckDB-sized (2048-row) calls: texts/s and MB/s."""
    from tinydancer_duck.embed import make_embedder

    embedder = make_embedder("static")
    order = np.random.default_rng(1).integers(0, len(prompts), rows)
    texts = pa.array([prompts[i] for i in order], pa.string())
    megabytes = pc.sum(pc.binary_length(texts)).as_py() / 1e6
    seconds = bench_route.median_seconds(
        lambda: [embedder.embed(texts.slice(i, 2048)) for i in range(0, rows, 2048)], repeats)
    return {"operation": f"default embedder alone, long prompts, 2048-row batches: {megabytes / seconds:.1f} MB/s",
            "us_per_row": seconds / rows * 1e6, "rows_per_s": rows / seconds, "target": "(reference)",
            "passed": None, "mb_per_s": megabytes / seconds}


def bench_route_parquet(engine, log: Path, rows: int, repeats: int) -> dict:
    """route_parquet(engine="local") against SQL writing the same columns to Parquet, alternating, medians."""
    from tinydancer_duck.distributed import route_parquet

    snapshot, con = engine.snapshot(), engine.connect()
    out = Path(tempfile.mkdtemp(prefix="route-parquet-"))
    copy = (f"COPY (SELECT request_id, request, unnest(ruvector_route(request)) FROM read_parquet('{log}')) "
            f"TO '{out / 'sql.parquet'}' (FORMAT parquet)")

    def local() -> None:
        shutil.rmtree(out / "local", ignore_errors=True)
        route_parquet(str(log), str(out / "local"), snapshot, engine="local")

    timings: dict[str, list[float]] = {"sql": [], "local": []}
    try:
        for run in range(repeats + 1):
            for name, work in (("sql", lambda: con.execute(copy)), ("local", local)):
                started = time.perf_counter()
                work()
                if run:  # the first round warms both
                    timings[name].append(time.perf_counter() - started)
        same = pq.read_table(out / "sql.parquet").column("agent_name").equals(
            pq.read_table(out / "local" / "part-00000.parquet").column("agent_name"))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    sql, local_s = statistics.median(timings["sql"]), statistics.median(timings["local"])
    ratio = sql / local_s
    return {"operation": f"route-parquet --engine local vs SQL COPY, same {rows:,}-row log, same file: "
                         f"{ratio:.2f}x SQL's rows/s (SQL {rows / sql:,.0f}/s){'' if same else ', AGENTS DIFFER'}",
            "us_per_row": local_s / rows * 1e6, "rows_per_s": rows / local_s,
            "target": f">= {PARQUET_RATIO_TARGET}x SQL", "passed": ratio >= PARQUET_RATIO_TARGET and same,
            "ratio": ratio}


def bench(rows: int, parquet_rows: int, repeats: int) -> list[dict]:
    """Every row above in one run (the long-prompt rows need the shared RouterBench files)."""
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "store"
        engine = bench_route.agents_store(store)
        parquet_log = Path(scratch) / "parquet-log.parquet"
        bench_route.write_log(parquet_log, parquet_rows)
        out = [bench_route_parquet(engine, parquet_log, parquet_rows, repeats)]
        prompts = long_prompts()
        if prompts is None:
            print(f"long-prompt rows skipped: no RouterBench files under {ROUTERBENCH}")
            return out
        short_log, long_log = Path(scratch) / "short.parquet", Path(scratch) / "long.parquet"
        bench_route.write_log(short_log, rows)
        mean_bytes = write_long_log(long_log, rows, prompts)
        return [*bench_long_sql(store, short_log, long_log, rows, repeats, mean_bytes),
                bench_long_embedder(prompts, repeats), *out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the short and the long log")
    parser.add_argument("--parquet-rows", type=int, default=100_000, help="rows in the route-parquet log")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per measurement; the median is kept")
    args = parser.parse_args()
    for r in bench(args.rows, args.parquet_rows, args.repeats):
        verdict = {True: "pass", False: "FAIL", None: "-"}[r["passed"]]
        print(f"{r['operation']:<120} {r['us_per_row']:>9.2f} µs/row {r['rows_per_s']:>10,.0f}/s  "
              f"{r['target']:<28} {verdict}")


if __name__ == "__main__":
    main()
