"""Snapshots extended by this process's own appends equal snapshots read from scratch.

A live loop records usage after every request; the usage-derived caches (the polars frame, circuit breakers,
budget spend) are then extended by the appended rows instead of re-reading the table (tinydancer_duck/store/_cache.py).
Each test compares the extended value with what a fresh Engine on the same store builds from a full read.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinydancer_duck as td
from tinydancer_duck.budget._budgets import period_bounds
from tinydancer_duck.options import PERIODS
from tinydancer_duck.settings import DEFAULT_SETTINGS
from tinydancer_duck.store._cache import AppendLog
from tinydancer_duck.usage._health import CLOSED, OPEN, BreakerBook

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
AGENTS = [{"name": n, "agent_type": "llm", "capabilities": ["chat"], "cost_per_1k_tokens": 0.001}
          for n in ("a", "b", "c")]


def table(version_rows: int) -> pa.Table:
    return pa.table({"x": pa.array(range(version_rows), pa.int64())})  # 8 bytes a row


def test_append_log_chains_only_its_own_consecutive_versions():
    log = AppendLog(max_bytes=5 * 8)
    log.record(3, table(1))
    log.record(4, table(2))
    log.record(6, table(1))  # version 5 was somebody else's
    assert log.rows_between(2, 4).num_rows == 3
    assert log.rows_between(3, 4).num_rows == 2
    assert log.rows_between(4, 6) is None and log.rows_between(2, 6) is None
    assert log.rows_between(4, 4) is None and log.rows_between(6, 4) is None
    log.record(7, table(3))  # 7 rows kept > 5: version 3 is forgotten
    assert log.rows_between(2, 4) is None and log.rows_between(6, 7).num_rows == 3


def fresh(store) -> td.Engine:
    """A second engine on the store: its caches come from full reads only."""
    return td.Engine(store)


@pytest.fixture
def live(tmp_path):
    engine = td.Engine(tmp_path / "store")
    engine.register_agents(AGENTS)
    return engine


def record(engine: td.Engine, agent: str, seconds: float, ok: bool, cost: float = 0.01) -> None:
    engine.usage.record(agent, cost, ok, 100.0, ts=T0 + timedelta(seconds=seconds))


def test_usage_frame_and_breakers_are_extended_not_reread(live, monkeypatch):
    record(live, "a", 0, True)
    live.health.states(["a"], T0)  # both caches at this version
    live.usage.frame()
    reads = []
    original = live.store._snapshots._read
    monkeypatch.setattr(live.store._snapshots, "_read", lambda name, v: (reads.append(name), original(name, v))[1])
    for second in range(1, 8):
        record(live, "a", second, False)
        live.health.states(["a", "b"], T0 + timedelta(seconds=second))
        live.usage.frame()
    extended = live.store.read("usage")
    assert "usage" not in reads  # every snapshot since, the raw table too, was extended by the appended rows
    assert "agents" in reads  # (the stats upserts are read again: the spy does see reads)
    other = fresh(live.store.path)
    assert extended.num_rows == 8 and extended.equals(other.store.read("usage"))
    assert live.usage.frame().equals(other.usage.frame())
    now = T0 + timedelta(seconds=8)
    assert live.health.table(now).equals(other.health.table(now))
    assert live.health.states(["a", "b"], now).tolist() == [OPEN, CLOSED]


def test_another_writer_forces_a_full_read(live):
    record(live, "a", 0, True)
    assert live.usage.frame().height == 1
    other = fresh(live.store.path)
    other.usage.record(["b", "b"], [0.5, 0.5], [True, True], [10.0, 10.0])
    record(live, "a", 1, True)  # our append is after theirs: the chain from our cached version is broken
    frame = live.usage.frame()
    assert frame.height == 4 and sorted(frame["agent"].to_list()) == ["a", "a", "b", "b"]
    assert frame.equals(fresh(live.store.path).usage.frame())


def test_budget_spend_is_extended_by_records(live):
    now = T0 + timedelta(hours=1)
    live.budgets.set(1.0, None, "day")
    live.budgets.set(0.05, "a", "day")
    assert live.budgets.blocked(["a", "b"], now)[0].tolist() == [False, False]
    for second, agent in enumerate(["a", "b", "a", "c", "a", "a"]):
        record(live, agent, second, True, cost=0.01)
    record(live, "a", -86_400, True, cost=5.0)  # yesterday: outside today's budgets
    blocked, remaining, _ = live.budgets.blocked(["a", "b", "c"], now)
    assert blocked.tolist() == [False, False, False] and remaining == pytest.approx(1.0 - 0.06)
    record(live, "a", 10, True, cost=0.01)  # a's 5th cent today: its budget is spent
    blocked, remaining, _ = live.budgets.blocked(["a", "b", "c"], now)
    assert blocked.tolist() == [True, False, False] and remaining == pytest.approx(1.0 - 0.07)
    mine, theirs = live.budgets.status(now), fresh(live.store.path).budgets.status(now)
    assert mine.drop("spent", "remaining").equals(theirs.drop("spent", "remaining"))
    np.testing.assert_allclose(mine["spent"].to_numpy(), theirs["spent"].to_numpy(), rtol=1e-12)
    spend = live.budgets._spend({p: period_bounds(p, now) for p in PERIODS})
    assert spend[("day", "a")] == pytest.approx(0.05) and spend[("month", "a")] == pytest.approx(5.05)


def test_a_live_loop_routes_around_a_tripped_agent_at_once(tmp_path):
    """record -> route in SQL, one event at a time: the decision after each record is the one a fresh engine makes."""
    con = td.connect(tmp_path / "store")
    engine_agents = [{**a, "capabilities": ["chat"], "quality_score": q} for a, q in zip(AGENTS, (0.9, 0.8, 0.7))]
    td.Engine(tmp_path / "store").register_agents(engine_agents)
    query = "SELECT agent_name FROM ruvector_route('hello there', optimize_for := 'quality')"
    decisions = []
    for _ in range(DEFAULT_SETTINGS.breaker_failures):
        assert con.execute(query).fetchone()[0] == "a"
        con.execute("SELECT ruvector_record_usage('a', 0.001, false, 100.0)").fetchall()
        decisions.append(con.execute(query).fetchone()[0])
        assert decisions[-1] == fresh(tmp_path / "store").route(["hello there"], optimize_for="quality")[
            "agent_name"][0].as_py()
    assert decisions == ["a"] * (DEFAULT_SETTINGS.breaker_failures - 1) + ["b"]  # open after the N-th failure


EVENTS = st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 400), st.booleans()), max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=EVENTS, batches=st.lists(EVENTS, max_size=5))
def test_breaker_book_extended_equals_built(first, batches):
    """Appends in any order (backfills and equal timestamps included) give the book a full build gives."""
    def rows(events):
        return pa.table({"agent": pa.array([e[0] for e in events], pa.string()),
                         "ts": pa.array([T0 + timedelta(seconds=e[1]) for e in events], pa.timestamp("us", "UTC")),
                         "success": pa.array([e[2] for e in events], pa.bool_())})

    s = DEFAULT_SETTINGS
    book = BreakerBook.build(rows(first), s)
    everything = list(first)
    for batch in batches:
        book = book.extended(rows(batch), s)
        everything += batch
    built = BreakerBook.build(rows(everything), s)
    assert book.breakers == built.breakers and book.latest_us == built.latest_us
    assert book.events.keys() == built.events.keys()
    for name, (ts, ok) in built.events.items():
        np.testing.assert_array_equal(book.events[name][0], ts)
        np.testing.assert_array_equal(book.events[name][1], ok)
    for cut in (50, 200, 401):
        now_us = int((T0 + timedelta(seconds=cut)).timestamp() * 1_000_000)
        assert book.until(now_us, s) == built.until(now_us, s)
