"""Budgets hold under concurrency: a route decided under a budget reserves its estimated cost in the store's ledger
until its usage is recorded, and a call's requests are charged in row order, so neither one call nor several
processes can spend a budget many times over. Rate limits of semantic routes count across calls the same way."""

from __future__ import annotations

import math
import time

import pyarrow.compute as pc
import pytest
from _workers import budget_worker, route_to_limited, short_lived_context

import tinydancer_duck as td

PROCESSES = 4


def _engine(path) -> td.Engine:
    engine = td.Engine(path, embedder="hashing")
    engine.register_agent("big", "llm", ["code"], cost_per_call=0.05, quality_score=0.9)
    engine.register_agent("small", "llm", ["code"], cost_per_call=0.03, quality_score=0.6)
    return engine


def test_one_call_cannot_spend_a_global_budget_many_times(tmp_path):
    engine = _engine(tmp_path / "s")
    engine.budgets.set(0.5)
    decided = engine.route([f"write code {i}" for i in range(40)], optimize_for="quality")
    cost = pc.sum(decided["estimated_cost"]).as_py()
    assert cost <= 0.5 + 1e-9 and decided["agent_name"].null_count > 0  # was: every row passed alone
    assert decided["agent_name"].to_pylist()[:10] == ["big"] * 10  # rows in order, the best while it fits
    again = engine.route(["write code"], optimize_for="quality")  # the reservations hold across calls
    assert again["agent_name"][0].as_py() is None and "budget" in again["reasoning"][0].as_py()


def test_an_agent_budget_stops_an_agent_once_spent_in_one_call(tmp_path):
    engine = _engine(tmp_path / "s")
    engine.budgets.set(0.12, agent="big")
    agents = engine.route([f"write code {i}" for i in range(6)], optimize_for="quality")["agent_name"].to_pylist()
    assert agents == ["big", "big", "big", "small", "small", "small"]  # 3 x 0.05: over by at most one request


def test_recording_usage_settles_a_reservation_instead_of_counting_twice(tmp_path):
    engine = _engine(tmp_path / "s")
    engine.budgets.set(0.1)
    first = engine.route_one("write code", optimize_for="quality")
    assert first["agent_name"] == "big"  # reserves 0.05
    engine.usage.record("big", first["estimated_cost"], True, 10.0)  # settles it: 0.05 spent, nothing reserved
    assert engine.budgets.status().to_dicts()[0]["spent"] == pytest.approx(0.05)
    assert engine.route_one("write code", optimize_for="quality")["agent_name"] == "big"  # 0.05 left, not 0
    assert engine.route_one("write code", optimize_for="quality")["agent_name"] is None  # reserved: 0 left


def test_without_budgets_nothing_is_reserved(tmp_path):
    engine = _engine(tmp_path / "s")
    engine.route(["write code"] * 3)
    assert not engine.store.ledger.exists()


def test_a_rate_limit_counts_requests_across_calls(tmp_path):
    engine = _engine(tmp_path / "s")
    for attempt in range(3):  # calls that straddle a minute boundary count in two minutes: try again, anew
        name = f"coding-{attempt}"
        engine.routes.create_route(name, "write some code for me", "small", conditions={"rate_limit_per_min": 2})
        minute = time.time() // 60
        results = [engine.route_one("write some code for me") for _ in range(5)]
        engine.routes.delete([name])
        if time.time() // 60 == minute:
            break
    by_route = [f"semantic route {name!r}" in r["reasoning"] for r in results]
    assert by_route == [True, True, False, False, False], [r["reasoning"] for r in results]


def test_processes_routing_under_one_budget_overspend_by_at_most_one_request(tmp_path):
    path = str(tmp_path / "s")
    engine = _engine(path)
    budget, agent_budget = 1.0, 0.4
    engine.budgets.set(budget)
    engine.budgets.set(agent_budget, agent="big")
    ctx = short_lived_context()
    start_at = time.time() + 2.0
    procs = [ctx.Process(target=budget_worker, args=(path, w, start_at, str(tmp_path / f"served-{w}")))
             for w in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    served = [int((tmp_path / f"served-{w}").read_text()) for w in range(PROCESSES)]
    usage = td.Engine(path, embedder="hashing").store.read("usage")
    spend = pc.sum(usage["cost"]).as_py()
    big = pc.sum(usage.filter(pc.equal(usage["agent"], "big"))["cost"]).as_py() or 0.0
    print(f"\n{PROCESSES} processes served {served} requests: spend ${spend:.2f} of a ${budget:.2f} global budget, "
          f"${big:.2f} on big of its ${agent_budget:.2f}")
    assert min(served) > 0 and sum(served) == usage.num_rows
    assert spend <= budget + 1e-9  # the global budget caps each request's estimated cost at what is left
    assert big <= agent_budget + 0.05 + 1e-9  # an agent budget stops its agent once spent: one request over at most
    assert spend >= budget - 0.05 - 1e-9 and not math.isclose(big, 0.0)  # and the budgets were used, not wasted


def test_a_rate_limit_holds_across_processes(tmp_path):
    path = str(tmp_path / "s")
    engine = _engine(path)
    engine.routes.create_route("coding", "write some code for me", "small", conditions={"rate_limit_per_min": 4})
    ctx = short_lived_context()
    start_at = time.time() + 2.0
    outs = [tmp_path / f"matched-{w}" for w in range(3)]
    procs = [ctx.Process(target=route_to_limited, args=(path, "coding", 5, start_at, str(out))) for out in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * 3
    results = [tuple(map(int, out.read_text().split())) for out in outs]
    minutes = {m for _, first, last in results for m in (first, last)}
    matched = sum(r[0] for r in results)
    assert matched <= 4 * len(minutes) and matched >= 4  # 15 requests, 4 per minute whoever sends them
