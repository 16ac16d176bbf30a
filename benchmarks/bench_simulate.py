"""Simulation throughput and memory: replay a generated 1M-row log (tinydancer_duck/datasets/generate_log.py) streamed in record
batches, in a child process that reports its own peak RSS (resource.getrusage), for a per-request objective
(streaming) and for a whole-log budget (the (n, A) matrices held, no embeddings).

    python benchmarks/bench_simulate.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path


def _child(store: str, log: str, optimize_for: str, budget: float | None, queue) -> None:
    import tinydancer_duck as td
    from tinydancer_duck.replay._simulate import simulate

    engine = td.Engine(store)
    started = time.perf_counter()
    _, summary = simulate(engine, log, optimize_for=optimize_for, budget=budget, keep_rows=False)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is KiB on Linux
    queue.put({"rows": summary["rows"], "seconds": seconds, "peak_rss_mib": peak_mib,
               "total_cost": summary["total_cost"], "savings": summary["savings"]})


def run(store: str, log: str, optimize_for: str, budget: float | None) -> dict:
    context = multiprocessing.get_context("spawn")  # no fork after LanceDB
    queue = context.Queue()
    child = context.Process(target=_child, args=(store, log, optimize_for, budget, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tinydancer_duck as td
    from tinydancer_duck.datasets.generate_log import agent_specs, write_log

    work = Path(tempfile.mkdtemp(prefix="bench-simulate-"))
    log = str(work / "log.parquet")
    started = time.perf_counter()
    write_log(log, args.rows, seed=0)
    print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s ({Path(log).stat().st_size / 2**20:.0f} MiB)")
    td.Engine(work / "store").register_agents(agent_specs())
    cases = [("cost", None), ("balanced", None), ("quality", 0.002 * args.rows)]
    print(f"{'policy':28} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'peak RSS MiB':>13}")
    for objective, budget in cases:
        r = run(str(work / "store"), log, objective, budget)
        label = objective + ("" if budget is None else f", budget ${budget:,.0f}")
        print(f"{label:28} {r['rows']:>10,} {r['seconds']:8.1f} {r['rows'] / r['seconds']:10,.0f} "
              f"{r['peak_rss_mib']:13.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
