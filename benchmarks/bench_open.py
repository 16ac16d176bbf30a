"""Opening an Engine and routing one request, on this checkout and another, alternately in one run.

Each round runs one child process per checkout (that checkout first on PYTHONPATH) on a store that checkout made
(the default static embedder, the packaged agents, one semantic route with examples, 200 usage events, a budget):
the child opens an Engine once to warm up (imports, the embedder), then times ``Engine(store)`` ``--opens`` times
and ``Engine.route_one`` ``--requests`` times; medians per round, then the median over rounds.

    python benchmarks/bench_open.py --before ../checkout-of-the-base-commit [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(store: str, opens: int, requests: int, make: bool) -> None:
    """Runs in the child: make the store (``make``) or time opens and single requests on it."""
    import tinydancer_duck as td

    if make:
        engine = td.Engine(store)
        agents = json.loads((Path(td.__file__).parent / "datasets" / "agents.json").read_text())
        engine.register_agents(agents)
        engine.routes.create_route("weather", "questions about the weather forecast", agents[0]["name"])
        engine.routes.add_examples(["weather"] * 3, ["will it rain", "is it sunny", "the forecast for today"])
        for i in range(20):
            engine.usage.record([agents[0]["name"]] * 10, [0.001] * 10, [True] * 10, [100.0] * 10,
                                request_id=[f"r{i}-{k}" for k in range(10)])
        return
    engine = td.Engine(store)
    engine.route_one("warm up")
    times = []
    for _ in range(opens):
        started = time.perf_counter()
        td.Engine(store)
        times.append(time.perf_counter() - started)
    one = []
    for i in range(requests):
        started = time.perf_counter()
        engine.route_one(f"Write a Python function to sort a list {i}", optimize_for="cost")
        one.append(time.perf_counter() - started)
    print(json.dumps({"open_ms": statistics.median(times) * 1e3, "route_one_ms": statistics.median(one) * 1e3}))


def run(checkout: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": checkout, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, __file__, "--child", *args], env=env, capture_output=True, text=True,
                          check=True, cwd="/tmp")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a checkout of the earlier code")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--opens", type=int, default=20)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--child", nargs=4, metavar=("STORE", "OPENS", "REQUESTS", "MAKE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        store, opens, requests, make = args.child
        child(store, int(opens), int(requests), make == "1")
        return
    checkouts = {"before": args.before, "after": str(HERE.parent)}
    with tempfile.TemporaryDirectory() as scratch:
        stores = {label: str(Path(scratch) / label) for label in checkouts}
        for label, checkout in checkouts.items():
            run(checkout, stores[label], "0", "0", "1")
        rounds: dict[str, list[dict]] = {label: [] for label in checkouts}
        for _ in range(args.rounds):  # alternated, so machine noise falls on both alike
            for label, checkout in checkouts.items():
                rounds[label].append(run(checkout, stores[label], str(args.opens), str(args.requests), "0"))
    print(f"load {os.getloadavg()[0]:.1f}")
    for label, results in rounds.items():
        opens = [r["open_ms"] for r in results]
        one = [r["route_one_ms"] for r in results]
        print(f"{label:6s} Engine() open {statistics.median(opens):.2f} ms (rounds {min(opens):.2f}-{max(opens):.2f}), "
              f"route_one {statistics.median(one):.3f} ms (rounds {min(one):.3f}-{max(one):.3f})")


if __name__ == "__main__":
    main()
