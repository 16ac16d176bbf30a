"""Concurrent writers: several processes on one store register agents, create routes and record usage at once.

Nothing may be lost or duplicated: agent and route counts, usage rows and their cost sum, and the shared agent's
total_requests (a read-modify-write of the agents table, serialized by Store.locked) must all add up.
"""

from __future__ import annotations

import time

import pyarrow.compute as pc
import pytest
from _workers import SHARED_AGENT, cost_of, remover, short_lived_context, updater, writer

import tinydancer_duck as td
from tinydancer_duck.store import TABLES, _retry

WRITERS = 3
REMOVALS, UPDATERS = 120, 2
AGENTS, ROUTES, USAGE = 6, 4, 15


def test_concurrent_writers_lose_and_duplicate_nothing(tmp_path):
    path = str(tmp_path / "store")
    engine = td.Engine(path, embedder="hashing")
    engine.register_agent(SHARED_AGENT, "llm", ["chat"], cost_per_call=0.01)
    ctx = short_lived_context()  # FACTS.md: fork after using lancedb can hang; this server never used it
    start_at = time.time() + 2.0
    procs = [ctx.Process(target=writer, args=(path, w, AGENTS, ROUTES, USAGE, start_at)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    assert [p.exitcode for p in procs] == [0] * WRITERS

    check = td.Engine(path, embedder="hashing")
    agents = check.store.read("agents")
    names = agents["name"].to_pylist()
    assert len(names) == len(set(names)) == 1 + WRITERS * AGENTS
    routes = check.store.read("routes")["name"].to_pylist()
    assert len(routes) == len(set(routes)) == WRITERS * ROUTES
    usage = check.store.read("usage")
    ids = usage["request_id"].to_pylist()
    assert len(ids) == len(set(ids)) == WRITERS * USAGE
    assert pc.sum(usage["cost"]).as_py() == sum(cost_of(w, i) for w in range(WRITERS) for i in range(USAGE))
    shared = check.get_agent(SHARED_AGENT)
    assert shared["total_requests"] == WRITERS * USAGE  # no lost read-modify-write of the agent's stats
    for w in range(WRITERS):
        meta = check.get_agent(f"w{w}-agent-{AGENTS - 1}")["metadata"]
        assert f'"writer": {w}' in meta
    retried = sum(int((tmp_path / f"retries-{w}.txt").read_text()) for w in range(WRITERS))
    print(f"\nconcurrency: {WRITERS} writers, {WRITERS * (AGENTS + ROUTES + USAGE)} records, "
          f"{retried} conflicts retried by Store (beyond LanceDB's own retries), 0 lost")
    for name in TABLES:  # every table still reads whole
        assert check.store.info(name)["rows"] == check.store.read(name).num_rows


def test_commit_conflicts_are_retried_with_backoff(tmp_path, monkeypatch):
    """A write that fails with a commit conflict is retried (with a growing pause); other failures are not."""
    calls, pauses = [], []
    monkeypatch.setattr(_retry.time, "sleep", pauses.append)

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("Retryable commit conflict for version 7: This Append transaction was preempted")
        return "ok"

    assert _retry.retry("append", flaky) == "ok"
    assert len(calls) == 3 and len(pauses) == 2 and pauses[1] > pauses[0] * 0.6

    def broken():
        raise RuntimeError("disk full")

    with pytest.raises(td.StoreError, match="append: disk full"):
        _retry.retry("append", broken)

    def always_conflicting():
        raise RuntimeError("commit conflict")

    with pytest.raises(td.StoreError, match="conflict"):
        _retry.retry("append", always_conflicting)


def test_removed_agents_never_come_back_while_others_update_them(tmp_path):
    """Before: remove_agent took no lock, so an update computed from an older read wrote the agent back (17 of 120
    removed agents came back). Now every read-modify-write of agents and every removal hold the agents lock and
    check that the agent exists under it."""
    path = str(tmp_path / "store")
    engine = td.Engine(path, embedder="hashing")
    names = [f"agent-{i:03d}" for i in range(REMOVALS)]
    engine.register_agents([{"name": n, "agent_type": "llm", "capabilities": ["chat"]} for n in names])
    ctx = short_lived_context()
    start_at, stop = time.time() + 2.0, tmp_path / "stop"
    announced = str(tmp_path / "removed.next")
    updaters = [ctx.Process(target=updater, args=(path, announced, w, start_at, str(stop), str(tmp_path / f"u{w}")))
                for w in range(UPDATERS)]
    remove = ctx.Process(target=remover, args=(path, names, start_at, str(tmp_path / "removed")))
    for p in (*updaters, remove):
        p.start()
    remove.join(timeout=300)
    stop.touch()
    for p in updaters:
        p.join(timeout=60)
    assert [p.exitcode for p in (*updaters, remove)] == [0] * (UPDATERS + 1)
    reports = [(tmp_path / f"u{w}").read_text().split("\n", 1) for w in range(UPDATERS)]
    counts = [tuple(map(int, first.split())) for first, *_ in reports]
    writes, errors = sum(c[0] for c in counts), sum(c[1] for c in counts)
    left = td.Engine(path, embedder="hashing").list_agents()["name"].to_pylist()
    print(f"\nremove vs update: {REMOVALS} removals, {writes} concurrent stat updates aimed at the agent being "
          f"removed, {len(left)} resurrected, {errors} failed")
    assert int((tmp_path / "removed").read_text()) == REMOVALS
    assert left == [] and errors == 0, reports  # 0 resurrections; no update failed with anything but NotFound
