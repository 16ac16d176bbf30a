"""Circuit breakers from recorded usage: open after N failures in a window, half-open after the cool-down, closed
after M successful probes; explicit timestamps, so nothing sleeps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
from conftest import rows
from hypothesis import given, settings
from hypothesis import strategies as st

import tinydancer_duck as td
from tinydancer_duck.usage._health import CLOSED, HALF_OPEN, OPEN, run_breaker

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
NAMES = ["claude-3-haiku", "code-specialist", "gpt-4"]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def record(con, agent: str, events: list[tuple[float, bool]]) -> None:
    values = ", ".join(f"(TIMESTAMPTZ '{at(s).isoformat()}', {str(ok).lower()})" for s, ok in events)
    con.execute(f"SELECT ruvector_record_usage('{agent}', 0.001, ok, 100, ts := t) FROM (VALUES {values}) v(t, ok)"
                ).fetchall()


def health(con, seconds: float) -> dict:
    return {r["agent"]: r for r in rows(con, f"SELECT * FROM ruvector_agent_health(now := "
                                             f"TIMESTAMPTZ '{at(seconds).isoformat()}')")}


def test_circuit_opens_after_n_failures_and_closes_after_recovery(seed_con, engine):
    record(seed_con, "gpt-4", [(0, True), (1, False), (2, False), (3, False), (4, False)])
    assert health(seed_con, 5)["gpt-4"]["state"] == "closed" and health(seed_con, 5)["gpt-4"]["recent_failures"] == 4
    record(seed_con, "gpt-4", [(5, False)])  # the 5th failure within 60 s
    now = health(seed_con, 6)
    assert now["gpt-4"]["state"] == "open" and now["gpt-4"]["opened_at"] == at(5)
    assert now["gpt-4"]["retry_at"] == at(35) and now["gpt-4"]["recent_failures"] == 5
    assert now["claude-3-haiku"]["state"] == "closed" and now["claude-3-haiku"]["recent_requests"] == 0
    assert engine.health.states(NAMES, at(6)).tolist() == [CLOSED, CLOSED, OPEN]
    record(seed_con, "gpt-4", [(20, False), (25, True)])  # in flight while open: ignored
    assert engine.health.states(NAMES, at(34)).tolist() == [CLOSED, CLOSED, OPEN]
    assert engine.health.states(NAMES, at(35)).tolist() == [CLOSED, CLOSED, HALF_OPEN]  # cool-down over
    record(seed_con, "gpt-4", [(40, True)])  # first probe succeeds
    assert health(seed_con, 41)["gpt-4"]["state"] == "half_open"
    assert health(seed_con, 41)["gpt-4"]["probe_successes"] == 1
    record(seed_con, "gpt-4", [(41, True)])  # M = 2 successes close it
    closed = health(seed_con, 42)["gpt-4"]
    assert closed["state"] == "closed" and closed["opened_at"] is None
    assert engine.health.states(["gpt-4", "nobody"], at(42)).tolist() == [CLOSED, CLOSED]
    # failures from before it closed do not count toward the next trip
    record(seed_con, "gpt-4", [(50, False), (51, False), (52, False), (53, False)])
    assert health(seed_con, 54)["gpt-4"]["state"] == "closed"
    record(seed_con, "gpt-4", [(54, False)])
    assert health(seed_con, 55)["gpt-4"]["state"] == "open"


def test_a_failed_probe_opens_the_circuit_again(seed_con, engine):
    record(seed_con, "code-specialist", [(s, False) for s in range(5)])
    record(seed_con, "code-specialist", [(40, True), (41, False)])
    again = health(seed_con, 42)["code-specialist"]
    assert again["state"] == "open" and again["opened_at"] == at(41) and again["retry_at"] == at(71)
    assert engine.health.states(["code-specialist"], at(71)).tolist() == [HALF_OPEN]


def test_failures_spread_wider_than_the_window_never_open(seed_con, engine):
    record(seed_con, "claude-3-haiku", [(20.0 * i, False) for i in range(12)])  # at most 3 in any 60 s
    state = health(seed_con, 230)["claude-3-haiku"]
    assert state["state"] == "closed" and state["recent_failures"] == 3
    assert state["last_failure_at"] == at(220)


def test_state_survives_a_restart_and_is_shared(seed_con, store):
    record(seed_con, "gpt-4", [(s, False) for s in range(5)])
    assert td.Engine(store).health.states(NAMES, at(10)).tolist() == [CLOSED, CLOSED, OPEN]


def test_replay_at_an_earlier_now_sees_only_earlier_events(seed_con, engine):
    record(seed_con, "gpt-4", [(s, False) for s in range(5)] + [(40, True), (41, True)])
    assert engine.health.states(["gpt-4"], at(42)).tolist() == [CLOSED]
    assert engine.health.states(["gpt-4"], at(10)).tolist() == [OPEN]
    assert engine.health.states(["gpt-4"], at(40.5)).tolist() == [HALF_OPEN]
    assert engine.health.states(["gpt-4"], at(2)).tolist() == [CLOSED]


def test_thresholds_come_from_settings(tmp_path):
    engine = td.Engine(tmp_path / "s", settings=td.Settings(breaker_failures=2, breaker_window_s=10,
                                                            breaker_cooldown_s=5, breaker_recovery_successes=1))
    engine.register_agent("a", "api", ["x"])
    engine.usage.record(["a", "a"], 0.0, [False, False], 10.0, ts=[at(0), at(9)])
    assert engine.health.states(["a"], at(9)).tolist() == [OPEN]
    assert engine.health.states(["a"], at(14)).tolist() == [HALF_OPEN]
    engine.usage.record("a", 0.0, True, 10.0, ts=at(15))
    assert engine.health.states(["a"], at(15)).tolist() == [CLOSED]


def reference(ts, ok, n, w, c, m):
    """The machine event by event, as the module docstring states it."""
    state, fails, opened, probes = CLOSED, [], None, 0
    for t, good in zip(ts, ok):
        if state == OPEN:
            if t < opened + c:
                continue
            state, probes = HALF_OPEN, 0
        if state == HALF_OPEN:
            if good:
                probes += 1
                if probes >= m:
                    state, fails = CLOSED, []
            else:
                state, opened = OPEN, t
            continue
        if not good:
            fails = [f for f in fails if f > t - w] + [t]
            if len(fails) >= n:
                state, opened, fails = OPEN, t, []
    return state, None if state == CLOSED else opened, probes if state == HALF_OPEN else 0


@settings(max_examples=150, deadline=None)
@given(gaps=st.lists(st.integers(0, 20), min_size=0, max_size=80), seed=st.integers(0, 2**32 - 1),
       n=st.integers(1, 4), w=st.integers(1, 30), c=st.integers(0, 30), m=st.integers(1, 3))
def test_vectorized_machine_equals_the_event_by_event_reference(gaps, seed, n, w, c, m):
    ts = np.cumsum(np.asarray(gaps, dtype=np.int64))
    ok = np.random.default_rng(seed).random(len(ts)) < 0.6
    got = run_breaker(ts, ok, failures=n, window_us=w, cooldown_us=c, recovery=m)
    assert (got.state, got.opened_at, got.probes) == reference(ts.tolist(), ok.tolist(), n, w, c, m)
