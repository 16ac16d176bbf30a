"""Exploration and propensities: an epsilon-greedy draw per request, reproducible, with the true probability of the
choice reported (issue 24 item 1)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import tinydancer_duck as td
from tinydancer_duck.routing._explore import explored, policy_probabilities, uniforms

REQUESTS = [f"Please help me with request number {i} about {topic}" for i in range(400)
            for topic in ("python code", "a joke")][:600]


def test_the_draws_are_uniform_and_depend_only_on_the_row_and_seed():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 16)).astype(np.float32)
    coin, pick = uniforms(x, seed=7)
    assert 0 <= coin.min() and coin.max() < 1
    assert np.histogram(coin, bins=10, range=(0, 1))[0] == pytest.approx(np.full(10, 2000), rel=0.08)
    assert abs(np.corrcoef(coin, pick)[0, 1]) < 0.03
    again, _ = uniforms(x[::-1].copy(), seed=7)
    np.testing.assert_array_equal(again[::-1], coin)  # a row's draw does not depend on its batch or position
    other, _ = uniforms(x, seed=8)
    assert np.mean(other == coin) < 0.001


def test_epsilon_greedy_propensities_are_the_true_probabilities():
    rng = np.random.default_rng(1)
    n, a = 30_000, 5
    candidate = rng.random((n, a)) < 0.7
    candidate[:, 0] = True
    winner = np.zeros(n, np.int64)
    rate = np.full(n, 0.3)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    chosen, propensity, explores = explored(winner, candidate, rate, x, seed=0)
    assert explores.mean() == pytest.approx(0.3, abs=0.01)
    assert candidate[np.arange(n), chosen].all()
    count = candidate.sum(axis=1)
    expected = np.where(chosen == winner, 0.7 + 0.3 / count, 0.3 / count)
    np.testing.assert_allclose(propensity, expected)
    probabilities = policy_probabilities(winner, candidate, rate)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_allclose(probabilities[np.arange(n), chosen], propensity)
    # the empirical frequency of each (row kind, agent) matches the probability: rows with all 5 candidates
    full = count == 5
    frequency = np.bincount(chosen[full], minlength=a) / full.sum()
    np.testing.assert_allclose(frequency, [0.7 + 0.06, 0.06, 0.06, 0.06, 0.06], atol=0.01)


def test_routing_reports_propensity_and_explores_reproducibly(engine):
    engine.register_agent("cheap", "llm", ["general"], cost_per_call=0.001, quality_score=0.7)
    engine.register_agent("mid", "llm", ["general"], cost_per_call=0.01, quality_score=0.8)
    engine.register_agent("dear", "llm", ["general"], cost_per_call=0.1, quality_score=0.9)
    plain = engine.route(REQUESTS, optimize_for="cost")
    assert set(plain["propensity"].to_pylist()) == {1.0}
    routed = engine.route(REQUESTS, optimize_for="cost", explore=0.2, explore_seed=11)
    agents = np.array(routed["agent_name"].to_pylist())
    propensity = np.array(routed["propensity"].to_pylist())
    greedy = np.array(plain["agent_name"].to_pylist())
    moved = agents != greedy
    assert 0.08 < moved.mean() < 0.2  # explore 0.2, and a third of the draws land on the greedy choice anyway
    np.testing.assert_allclose(propensity[~moved], 0.8 + 0.2 / 3)
    np.testing.assert_allclose(propensity[moved], 0.2 / 3)
    reasons = routed["reasoning"].to_pylist()
    assert all(r.startswith("explored: ") for r, m in zip(reasons, moved) if m)
    # the same requests in other batches, on the distributed path, draw the same way
    snapshot = engine.snapshot()
    halves = [td.route_batch(snapshot, pa.table({"request": part}), optimize_for="cost", explore=0.2,
                             explore_seed=11) for part in (REQUESTS[:217], REQUESTS[217:])]
    assert [a for h in halves for a in h["agent_name"].to_pylist()] == agents.tolist()
    reseeded = engine.route(REQUESTS, optimize_for="cost", explore=0.2, explore_seed=12)["agent_name"].to_pylist()
    assert reseeded != agents.tolist()


def test_everything_explores_at_one_and_nothing_at_zero(engine):
    engine.register_agent("a", "llm", ["general"], cost_per_call=0.001)
    engine.register_agent("b", "llm", ["general"], cost_per_call=0.01)
    both = engine.route(REQUESTS[:200], optimize_for="cost", explore=1.0)
    assert set(both["propensity"].to_pylist()) == {0.5}
    assert 60 < both["agent_name"].to_pylist().count("b") < 140
    none = engine.route(REQUESTS[:50], optimize_for="cost", explore=0.0)
    assert set(none["agent_name"].to_pylist()) == {"a"} and set(none["propensity"].to_pylist()) == {1.0}
    nobody = engine.route(["x"], optimize_for="cost", explore=0.5, max_cost=0.0)
    assert nobody["agent_name"][0].as_py() is None and nobody["propensity"][0].as_py() is None
