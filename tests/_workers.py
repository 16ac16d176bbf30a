"""Functions run in child processes (multiprocessing spawn context) by the concurrency, crash and durability tests.

They live in their own module so a spawned child imports only this and tinydancer_duck, not pytest's test modules.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

SHARED_AGENT = "shared-agent"


def cost_of(writer: int, i: int) -> float:
    """A distinct, exactly representable cost per (writer, event): sums can be compared with ==."""
    return (writer * 1000 + i) / 1024


def writer(store: str, writer: int, n_agents: int, n_routes: int, n_usage: int, start_at: float) -> None:
    """Register agents, create routes and record usage on ``store`` while other writers do the same."""
    import tinydancer_duck as td

    engine = td.Engine(store, embedder="hashing")
    while time.time() < start_at:  # start all writers together
        time.sleep(0.005)
    for i in range(max(n_agents, n_routes, n_usage)):
        if i < n_agents:
            engine.register_agent(f"w{writer}-agent-{i}", "llm", ["code", f"skill-{writer}"],
                                  cost_per_1k_tokens=0.001 * (i + 1), metadata={"writer": writer, "i": i})
        if i < n_routes:
            engine.routes.create_route(f"w{writer}-route-{i}", f"questions about topic {writer} {i}",
                                       f"w{writer}-agent-0", priority=i)
        if i < n_usage:
            engine.usage.record(SHARED_AGENT, cost_of(writer, i), True, 100.0 + i,
                                request_id=f"w{writer}-req-{i}", category="chat", tokens_in=i, tokens_out=1)
    from tinydancer_duck.store import _retry

    Path(store).parent.joinpath(f"retries-{writer}.txt").write_text(str(_retry.conflicts_retried))


def ingest_once(store: str, log: str, batch_rows: int, ready: str) -> None:
    """Ingest ``log`` once (the test kills it at a random moment), touching ``ready`` when the ingest starts."""
    import tinydancer_duck as td

    engine = td.Engine(store, embedder="hashing")
    Path(ready).touch()
    started = time.perf_counter()
    engine.usage.ingest(log, batch_rows=batch_rows, ts="now")
    Path(ready).with_suffix(".done").write_text(str(time.perf_counter() - started))


def save_models_forever(store: str, ready: str) -> None:
    """Save classifier versions again and again (until killed)."""
    import numpy as np

    import tinydancer_duck as td
    from tinydancer_duck.learn._classify import fit
    from tinydancer_duck.options import FastGRNNConfig

    engine = td.Engine(store, embedder="hashing")
    rng = np.random.default_rng(os.getpid())
    x = rng.normal(size=(40, engine.dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    model, _ = fit(x, ["a", "b"] * 20, FastGRNNConfig(hidden_dim=8, epochs=1), identity=engine.embedder.identity)
    Path(ready).touch()
    while True:
        engine.classifier.save(model, "crashy")


def read_forever(store: str, table: str, expected: int, seconds: float, out: str) -> None:
    """Read ``table`` repeatedly for ``seconds`` from a fresh store handle; write 'reads errors minrows' to out."""
    import tinydancer_duck as td

    engine = td.Engine(store, embedder="hashing")
    reads = errors = 0
    smallest = None
    stop = time.time() + seconds
    last_error = ""
    while time.time() < stop:
        try:
            rows = engine.store.read(table).num_rows
            smallest = rows if smallest is None else min(smallest, rows)
            reads += 1
        except Exception as exc:  # noqa: BLE001 - counted and reported to the test
            errors += 1
            last_error = repr(exc)[:300]
    Path(out).write_text(f"{reads} {errors} {smallest if smallest is not None else -1} {expected}\n{last_error}")


def budget_worker(store: str, worker: int, start_at: float, out: str) -> None:
    """Route one request at a time under the store's budgets and record its usage at the estimated cost, until no
    agent is left; 'serving' each request takes a few ms, so other processes decide meanwhile."""
    import random

    import tinydancer_duck as td

    engine = td.Engine(store, embedder="hashing")
    rng = random.Random(worker)
    while time.time() < start_at:  # start all workers together
        time.sleep(0.005)
    served = 0
    for i in range(500):
        decision = engine.route_one(f"write some code {worker} {i}", optimize_for="quality")
        if decision["agent_name"] is None:
            break
        time.sleep(rng.uniform(0.0, 0.02))
        engine.usage.record(decision["agent_name"], decision["estimated_cost"], True, 10.0,
                            request_id=f"w{worker}-{i}")
        served += 1
    Path(out).write_text(str(served))


def remover(store: str, names: list[str], start_at: float, out: str) -> None:
    """Remove each agent of ``names`` in turn while updaters write their stats; the name about to be removed is
    announced in ``out + '.next'`` a moment before, so the updaters aim at it (the race to provoke)."""
    import random

    import tinydancer_duck as td

    engine = td.Engine(store, embedder="hashing")
    rng = random.Random(0)
    while time.time() < start_at:
        time.sleep(0.005)
    removed = 0
    for name in names:
        Path(out + ".next").write_text(name)
        time.sleep(rng.uniform(0.0, 0.03))
        removed += engine.remove_agent(name)
    Path(out).write_text(str(removed))


def updater(store: str, announced: str, worker: int, start_at: float, stop: str, out: str) -> None:
    """Update the stats of the agent about to be removed (update_agent_metrics and record_usage, alternately) until
    ``stop`` exists; an agent already removed is skipped (NotFound) or recorded as unknown."""
    import random

    import tinydancer_duck as td

    engine = td.Engine(store, embedder="hashing")
    rng = random.Random(worker)
    while time.time() < start_at:
        time.sleep(0.005)
    writes = errors = 0
    messages: list[str] = []
    while not Path(stop).exists():
        try:
            name = Path(announced).read_text()
        except FileNotFoundError:
            continue
        if not name:  # read while the remover rewrites it
            continue
        try:
            if writes % 2:
                engine.update_agent_metrics(name, rng.uniform(1, 100), True)
            else:
                engine.usage.record(name, 0.001, True, rng.uniform(1, 100))
        except td.NotFound:
            pass
        except Exception as exc:  # noqa: BLE001 - counted and shown: the test expects none
            errors += 1
            messages.append(f"{type(exc).__name__}: {exc}"[:500])
        writes += 1
    Path(out).write_text(f"{writes} {errors}\n" + "\n".join(messages[:3]))


def record_then_die(store: str, point: str) -> None:
    """Record one usage event, killing this process (os._exit, no cleanup) at ``point`` of the two-commit write:
    'before_usage' (intent saved), 'between' (usage committed), 'after_agents' (both committed, intent not removed)."""
    import tinydancer_duck as td
    from tinydancer_duck.store import _journal

    engine = td.Engine(store, embedder="hashing")
    apply, remove = _journal._apply, _journal.shutil.rmtree
    steps = []

    def dying_apply(target, step):
        if (point, len(steps)) in (("before_usage", 0), ("between", 1)):
            os._exit(9)
        steps.append(step.table)
        return apply(target, step)

    def dying_remove(path, **kwargs):
        if point == "after_agents" and len(steps) == 2:
            os._exit(9)
        return remove(path, **kwargs)

    _journal._apply, _journal.shutil.rmtree = dying_apply, dying_remove
    engine.usage.record("bot", 0.5, True, 42.0, request_id="the-event")
    os._exit(0)  # not reached when the point was hit


def record_forever(store: str, ready: str) -> None:
    """Record usage events one by one until killed, touching ``ready`` after the first."""
    import tinydancer_duck as td

    engine = td.Engine(store, embedder="hashing")
    i = 0
    while True:
        engine.usage.record("bot", 0.001, i % 5 != 0, float(i % 40), request_id=f"{os.getpid()}-{i}")
        if i == 0:
            Path(ready).touch()
        i += 1


def record_one(store: str, i: int) -> None:
    """A short-lived process: open the store, record one usage event, exit."""
    import tinydancer_duck as td

    td.Engine(store, embedder="hashing").usage.record("bot", 0.001, True, 10.0, request_id=f"short-{i}")


FIRST_ROUTE = ("SELECT * FROM ruvector_route(request := 'write a python function', optimize_for := 'cost')",
               "SELECT * FROM ruvector_routing_stats()")


def first_route(store: str, out: str) -> None:
    """A fresh process's first connection: ms of its first budgeted route and routing stats, and of connect()."""
    import tinydancer_duck as td

    started = time.perf_counter()
    con = td.connect(store, embedder="hashing")
    connected = time.perf_counter()
    for query in FIRST_ROUTE:
        con.execute(query).fetchall()
    done = time.perf_counter()
    Path(out).write_text(f"{(done - connected) * 1e3} {(connected - started) * 1e3}")


def short_lived_context():
    """A forkserver whose server has imported (never used) lancedb and tinydancer_duck: each child is a fresh
    process with its own connection, started in ~70 ms instead of the ~2.5 s a spawned interpreter takes to import
    them. The server never opens a store, so the fork-after-use hazard (FACTS.md) does not arise."""
    import multiprocessing

    # lancedb warns at every fork that its fork support is experimental; the server never used it before forking
    os.environ.setdefault("PYTHONWARNINGS", "ignore:lancedb fork support:RuntimeWarning")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["lancedb", "tinydancer_duck.engine", "tinydancer_duck.embed", "polars", "pyarrow",
                                "numpy"])
    return ctx


def route_to_limited(store: str, route: str, requests: int, start_at: float, out: str) -> None:
    """Route ``requests`` requests that match ``route``; write how many the route decided, and the UTC minutes
    the calls spanned."""
    import tinydancer_duck as td

    engine = td.Engine(store, embedder="hashing")
    while time.time() < start_at:
        time.sleep(0.005)
    first = time.time() // 60
    matched = sum(f"semantic route {route!r}" in engine.route_one("write some code for me")["reasoning"]
                  for _ in range(requests))
    Path(out).write_text(f"{matched} {int(first)} {int(time.time() // 60)}")
