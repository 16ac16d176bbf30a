"""Durability benchmark: N usage events recorded one by one (one LanceDB write each), reads measured as it grows.

    python benchmarks/bench_durability.py [--writes 100000] [--every 10000] [--known-every 10] [--no-compact]

Each write is a LanceDB version and a fragment. The Store compacts automatically (store.py: COMPACT_CHECK_EVERY,
COMPACT_FRAGMENTS, CLEANUP_EVERY_CHECKS, CLEANUP_OLDER_THAN); ``--no-compact`` turns that off to show what it saves.
Every ``--every`` writes it prints the write rate, a cold read of the usage table, fragments, versions kept and
disk size. At the end it checks that nothing was lost (row count, distinct request ids, cost sum) and writes
benchmarks/results/durability-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.compute as pc

import tinydancer_duck as td
from tinydancer_duck.store import _store as store_module

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def cold_read_ms(engine: td.Engine) -> float:
    best = float("inf")
    for _ in range(3):
        engine.store._snapshots.clear()
        started = time.perf_counter()
        engine.store.read("usage")
        best = min(best, time.perf_counter() - started)
    return best * 1e3


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=10_000)
    parser.add_argument("--known-every", type=int, default=10,
                        help="every k-th event is for a registered agent (also an agents read-modify-write)")
    parser.add_argument("--no-compact", action="store_true")
    parser.add_argument("--store", default=None)
    args = parser.parse_args()
    if args.no_compact:
        store_module.COMPACT_CHECK_EVERY = 10**12
    path = Path(args.store or tempfile.mkdtemp(prefix="td-durability-"))
    engine = td.Engine(path, embedder="hashing")
    engine.register_agent("bot", "llm", ["chat"], cost_per_call=0.001)
    rows = []
    started = last = time.perf_counter()
    print(f"{'writes':>8} {'writes/s':>9} {'read ms':>8} {'fragments':>9} {'versions':>8} {'disk MB':>8}")
    for i in range(1, args.writes + 1):
        agent = "bot" if i % args.known_every == 0 else "retired-bot"
        engine.usage.record(agent, (i % 1000) / 1024, True, 10.0, request_id=f"r{i}")
        if i % args.every == 0 or i == args.writes:
            now = time.perf_counter()
            info = engine.store.info("usage")
            row = {"writes": i, "writes_per_s": args.every / (now - last), "read_ms": cold_read_ms(engine),
                   "fragments": info["fragments"], "versions_kept": info["versions"], "disk_mb": disk_mb(path)}
            rows.append(row)
            print(f"{i:>8} {row['writes_per_s']:>9.0f} {row['read_ms']:>8.1f} {row['fragments']:>9} "
                  f"{row['versions_kept']:>8} {row['disk_mb']:>8.1f}", flush=True)
            last = time.perf_counter()
    usage = engine.store.read("usage")
    expected_cost = sum((i % 1000) / 1024 for i in range(1, args.writes + 1))
    lost = args.writes - usage.num_rows
    assert pc.count_distinct(usage["request_id"]).as_py() == usage.num_rows, "duplicated writes"
    assert lost == 0 and pc.sum(usage["cost"]).as_py() == expected_cost, "lost writes"
    total = time.perf_counter() - started
    print(f"{args.writes} writes in {total:.0f} s, rows lost: {lost}, compaction "
          f"{'off' if args.no_compact else 'on'}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"durability-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps({"writes": args.writes, "compaction": not args.no_compact, "seconds": total,
                               "rows_lost": lost, "checkpoints": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
