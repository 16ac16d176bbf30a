"""Reliability measurements (issue 16, README "Reliability"), with real processes and real stores.

1. one request through SQL with no budget, a global budget, an agent budget and both (a budgeted route reserves its
   estimated cost in the store's ledger): median and p90 over interleaved rounds;
2. short-lived writers: N processes (default 1,000) each open the store and record one usage event; then the
   tables' fragments, and a fresh connection's first budgeted route + routing stats before and after compacting;
3. P processes (default 8) routing one request at a time under a global and an agent budget, recording each
   request's usage at its estimated cost: what they spent against the budgets;
4. the attacks of issue 25 (``benchmarks/reliability_attacks.py``: crafted and damaged snapshot files, journals
   naming paths, half-done writes after others wrote, damaged usage and manifests, files changed after their check,
   stores without checksums, history without timestamps, duplicate ids, bad inputs, paused lock holders), each in
   a fresh process, on this checkout and, with ``--before CHECKOUT``, on another one: a table attack / before /
   after.

Uses only the public API and the Engine, so the same script measures another checkout (run it with that
checkout's interpreter) for a before/after comparison. Writes JSON to benchmarks/results/.

    python benchmarks/bench_reliability.py [--writers 1000] [--processes 8] [--rounds 10]
    python benchmarks/bench_reliability.py --only attacks --before ../checkout-of-the-base-commit
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parent
QUERY = "SELECT * FROM ruvector_route(request := 'Write a Python function', optimize_for := 'cost')"
FIRST = ("SELECT * FROM ruvector_route(request := 'write a python function', optimize_for := 'cost')",
         "SELECT * FROM ruvector_routing_stats()")


# -- 1. one request ---------------------------------------------------------------------------------------------
def one_request(rounds: int, per_round: int = 30) -> dict:
    import tinydancer_duck as td
    from tinydancer_duck.cli._demo import SEED_AGENTS_SQL

    connections = {}
    with tempfile.TemporaryDirectory() as scratch:
        for kind in ("none", "global", "agent", "both"):
            engine = td.Engine(Path(scratch) / kind)
            con = engine.connect()
            con.execute(SEED_AGENTS_SQL).fetchall()
            if kind in ("global", "both"):
                engine.budgets.set(1e9)
            if kind in ("agent", "both"):
                engine.budgets.set(1e9, agent="claude-3-haiku")
            for _ in range(per_round):
                con.execute(QUERY).fetchall()
            connections[kind] = con
        times: dict[str, list[float]] = {kind: [] for kind in connections}
        for _ in range(rounds):  # interleaved, so machine noise falls on every kind alike
            for kind, con in connections.items():
                for _ in range(per_round):
                    started = time.perf_counter()
                    con.execute(QUERY).fetchall()
                    times[kind].append(time.perf_counter() - started)
    return {kind: {"median_ms": statistics.median(t) * 1e3, "p90_ms": sorted(t)[int(0.9 * len(t))] * 1e3,
                   "calls": len(t)} for kind, t in times.items()}


# -- 2. short-lived writers -------------------------------------------------------------------------------------
def record_one(store: str, i: int) -> None:
    import tinydancer_duck as td

    td.Engine(store, embedder="hashing").usage.record("bot", 0.001, True, 10.0, request_id=f"short-{i}")


def first_route(store: str, out: str) -> None:
    import tinydancer_duck as td

    started = time.perf_counter()
    con = td.connect(store, embedder="hashing")
    connected = time.perf_counter()
    for query in FIRST:
        con.execute(query).fetchall()
    Path(out).write_text(f"{(time.perf_counter() - connected) * 1e3} {(connected - started) * 1e3}")


def _first_route_ms(ctx, store: str, scratch: Path, repeats: int = 5) -> float:
    times = []
    for i in range(repeats):
        out = scratch / f"first-{i}.txt"
        child = ctx.Process(target=first_route, args=(store, str(out)))
        child.start()
        child.join(timeout=300)
        times.append(float(out.read_text().split()[0]))
    return statistics.median(times)


def short_lived(writers: int, parallel: int = 2) -> dict:
    import tinydancer_duck as td

    os.environ.setdefault("PYTHONWARNINGS", "ignore:lancedb fork support:RuntimeWarning")
    ctx = multiprocessing.get_context("forkserver")  # the server imports lancedb but never uses it before forking
    ctx.set_forkserver_preload(["lancedb", "tinydancer_duck.engine", "tinydancer_duck.embed", "polars", "pyarrow"])
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        store = str(scratch / "store")
        engine = td.Engine(store, embedder="hashing")
        engine.register_agent("bot", "llm", ["code"], cost_per_call=0.001)
        engine.budgets.set(1000.0)
        started = time.perf_counter()
        for first in range(0, writers, parallel):
            children = [ctx.Process(target=record_one, args=(store, i))
                        for i in range(first, min(first + parallel, writers))]
            for child in children:
                child.start()
            for child in children:
                child.join(timeout=300)
        seconds = time.perf_counter() - started
        check = td.Engine(store, embedder="hashing")
        fragments = {t: check.store.info(t)["fragments"] for t in ("usage", "agents")}
        rows, total = check.store.read("usage").num_rows, check.get_agent("bot")["total_requests"]
        fragmented = _first_route_ms(ctx, store, scratch)
        check.store.compact()
        compacted = _first_route_ms(ctx, store, scratch)
    return {"writers": writers, "seconds": seconds, "usage_rows": rows, "total_requests": total,
            "fragments": fragments, "first_route_ms": fragmented, "first_route_compacted_ms": compacted,
            "ratio": fragmented / compacted}


# -- 3. processes under one budget ------------------------------------------------------------------------------
def budget_worker(store: str, worker: int, start_at: float, out: str) -> None:
    import random

    import tinydancer_duck as td

    engine = td.Engine(store, embedder="hashing")
    rng = random.Random(worker)
    while time.time() < start_at:
        time.sleep(0.005)
    served = 0
    for i in range(1000):
        decision = engine.route_one(f"write some code {worker} {i}", optimize_for="quality")
        if decision["agent_name"] is None:
            break
        time.sleep(rng.uniform(0.0, 0.02))  # serving the request
        engine.usage.record(decision["agent_name"], decision["estimated_cost"], True, 10.0,
                            request_id=f"w{worker}-{i}")
        served += 1
    Path(out).write_text(str(served))


def overspend(processes: int, budget: float = 2.0, agent_budget: float = 0.5) -> dict:
    import pyarrow.compute as pc

    import tinydancer_duck as td

    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "store")
        engine = td.Engine(store, embedder="hashing")
        engine.register_agent("big", "llm", ["code"], cost_per_call=0.05, quality_score=0.9)
        engine.register_agent("small", "llm", ["code"], cost_per_call=0.03, quality_score=0.6)
        engine.budgets.set(budget)
        engine.budgets.set(agent_budget, agent="big")
        ctx = multiprocessing.get_context("spawn")
        start_at = time.time() + 8.0
        procs = [ctx.Process(target=budget_worker, args=(store, w, start_at, str(Path(tmp) / f"served-{w}")))
                 for w in range(processes)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=600)
        usage = td.Engine(store, embedder="hashing").store.read("usage")
        spend = float(pc.sum(usage["cost"]).as_py() or 0.0)
        big = float(pc.sum(usage.filter(pc.equal(usage["agent"], "big"))["cost"]).as_py() or 0.0)
    return {"processes": processes, "requests": usage.num_rows, "global_budget": budget, "spend": spend,
            "overspend_pct": 100 * (spend - budget) / budget, "agent_budget": agent_budget, "agent_spend": big,
            "agent_overspend_pct": 100 * (big - agent_budget) / agent_budget, "one_request": 0.05}


# -- 4. the attacks of issue 25 --------------------------------------------------------------------------------
def attacks(before: str | None, only: list[str] | None = None) -> list[dict]:
    """attack -> what happened on this checkout (after) and on ``before`` (a checkout folder), each in its own
    process with that checkout first on PYTHONPATH."""
    sys.path.insert(0, str(HERE))
    from reliability_attacks import ATTACKS

    checkouts = {"after": str(HERE.parent), **({"before": before} if before else {})}
    rows = []
    for name in only or ATTACKS:
        row = {"attack": name}
        for label, checkout in checkouts.items():
            env = {**os.environ, "PYTHONPATH": checkout, "PYTHONWARNINGS": "ignore"}
            done = subprocess.run([sys.executable, str(HERE / "reliability_attacks.py"), name], env=env, cwd="/tmp",
                                  capture_output=True, text=True, timeout=900, check=False)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            row[label] = json.loads(lines[-1])["outcome"] if lines else f"exit {done.returncode}: {done.stderr[-200:]}"
        rows.append(row)
        print(f"| {name} | {row.get('before', '')} | {row['after']} |", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=1000, help="short-lived writer processes (default 1000)")
    parser.add_argument("--processes", type=int, default=8, help="processes routing under one budget (default 8)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds of 30 one-request calls")
    parser.add_argument("--only", choices=("one-request", "short-lived", "overspend", "attacks"), default=None)
    parser.add_argument("--before", default=None, help="a checkout of the earlier code, for the attacks' 'before'")
    parser.add_argument("--attack", action="append", default=None, help="run only this attack (repeatable)")
    args = parser.parse_args()
    import tinydancer_duck as td

    results: dict = {"package": str(Path(td.__file__).parent), "load_before": os.getloadavg()[0]}
    if args.only in (None, "one-request"):
        results["one_request"] = one_request(args.rounds)
        for kind, r in results["one_request"].items():
            print(f"one request, {kind:6s} budget: median {r['median_ms']:.3f} ms, p90 {r['p90_ms']:.3f} ms")
    if args.only in (None, "short-lived"):
        r = results["short_lived"] = short_lived(args.writers)
        print(f"{r['writers']} short-lived writers in {r['seconds']:.0f} s: {r['usage_rows']} rows, "
              f"total_requests {r['total_requests']}, fragments {r['fragments']}; first budgeted route + stats "
              f"{r['first_route_ms']:.1f} ms, {r['first_route_compacted_ms']:.1f} ms compacted ({r['ratio']:.2f}x)")
    if args.only in (None, "overspend"):
        r = results["overspend"] = overspend(args.processes)
        print(f"{r['processes']} processes, {r['requests']} requests: spent ${r['spend']:.2f} of ${r['global_budget']}"
              f" ({r['overspend_pct']:+.1f}%), ${r['agent_spend']:.2f} of the agent's ${r['agent_budget']} "
              f"({r['agent_overspend_pct']:+.1f}%; one request is $0.05)")
    if args.only == "attacks" or (args.only is None and args.before):
        print("| attack | before | after |\n|---|---|---|")
        results["attacks"] = attacks(args.before, args.attack)
    results["load_after"] = os.getloadavg()[0]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"reliability-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
