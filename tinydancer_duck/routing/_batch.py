"""Batch routing: decisions that depend on the whole batch (DESIGN §5 "batch objectives").

- ``total_cost``: for every request the cheapest candidate that can serve it (``cost``'s rule: the cheapest whose
  probability of serving clears the calibrated level, else the least cost per request served), so the batch costs
  the least the constraints and the evidence allow.
- ``budget := B``: maximize the total expected quality subject to total estimated cost <= B. Lagrangian relaxation:
  each request takes argmax_a q_ia - λ·C_ia over its candidates; total cost falls as λ grows, so λ is found by
  bisection as the smallest value whose choices fit B. The budget the relaxation leaves unspent then buys the
  upgrades (to the λ = λ_low choice) with the best quality gain per extra dollar, while they fit. When even the
  cheapest agent for every request exceeds B, the cheapest requests are served first and the rest get no agent.
  The decision reports 1/λ as the willingness to pay the budget implies (the knob of ruvector_route that makes
  the same choices, before the upgrades).
- any per-request objective (cost, latency, quality, balanced, quality_per_dollar, learned) or a
  willingness_to_pay without a budget: as ruvector_route.

Expected quality q_ia is p_ia (the probability that the agent can serve the request) times its quality: the
agent's quality_score, or a per-request prediction when a Signals.quality is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tinydancer_duck._numeric import value_scores
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.options import BATCH_OBJECTIVE, BUDGET, RouteOptions
from tinydancer_duck.registry import AgentSnapshot
from tinydancer_duck.settings import Settings

from ._explain import format_once
from ._objectives import OBJECTIVES, Terms
from ._options import OptionColumns
from ._router import NO_SIGNALS, Requests, Scored, Signals, route, score_batch

BISECTION_STEPS = 60
#: One row of ruvector_batch_route (besides the request itself).
BATCH_TYPE = pa.struct([("request_index", pa.int64()), ("agent_name", pa.string()), ("estimated_cost", pa.float64()),
                        ("expected_quality", pa.float64()), ("estimated_latency_ms", pa.float64()),
                        ("willingness_to_pay", pa.float64()), ("reasoning", pa.string())])


@dataclass(frozen=True)
class BatchDecisions:
    """agent int (n,) (-1: none), estimated cost and expected quality (NaN when none), the willingness to pay a
    budget implied (1/λ; NaN without a budget) and one reasoning per request."""

    agent: np.ndarray
    cost: np.ndarray
    quality: np.ndarray
    willingness_to_pay: float
    reasoning: pa.Array

    def to_arrow(self, snapshot: AgentSnapshot) -> pa.StructArray:
        chosen = self.agent >= 0
        safe = np.maximum(self.agent, 0)
        names = (snapshot.names.take(pa.array(safe, pa.int64(), mask=~chosen)) if snapshot.size
                 else pa.nulls(len(self.agent), pa.string()))
        latency = snapshot.latency_ms[safe] if snapshot.size else np.zeros(len(self.agent))
        return pa.StructArray.from_arrays([
            pa.array(np.arange(len(self.agent)), pa.int64()),
            names,
            pa.array(self.cost, mask=~chosen),
            pa.array(self.quality, mask=~chosen),
            pa.array(latency, mask=~chosen),
            pa.array(np.full(len(self.agent), self.willingness_to_pay),
                     mask=np.full(len(self.agent), np.isnan(self.willingness_to_pay))),
            self.reasoning,
        ], fields=list(BATCH_TYPE))


def per_request_objective(objective: str | None) -> str:
    """The per-request objective that scores candidates for a batch objective: ``total_cost`` (and NULL) scores
    them as ``balanced``; every other objective is its own."""
    return "balanced" if objective in ("total_cost", None) else objective


def check_batch_objective(optimize_for: object, budget: object,
                          willingness_to_pay: object = None) -> tuple[str, float | None]:
    """Validate the batch arguments once (NULL objective: total_cost); a budget sets its own willingness to pay,
    so both cannot be given."""
    objective = BATCH_OBJECTIVE.evolve(default="total_cost").value(optimize_for)
    limit = BUDGET.value(budget)
    if limit is not None and willingness_to_pay is not None:
        raise InvalidArgument("willingness_to_pay", willingness_to_pay,
                              "cannot be combined with budget: the budget decides the willingness to pay")
    return objective, limit


def batch_route(requests: Requests, snapshot: AgentSnapshot, settings: Settings, *, optimize_for: str,
                budget: float | None, options: OptionColumns | None = None,
                signals: Signals = NO_SIGNALS) -> BatchDecisions:
    """Decide every request of one batch together (arguments validated by :func:`check_batch_objective`)."""
    n = len(requests)
    options = options or OptionColumns.of(RouteOptions(optimize_for=per_request_objective(optimize_for)), n)
    options.refuse_exploring("a batch decided together")
    scored = score_batch(requests, options, snapshot, settings, signals)
    quality = np.asarray(scored.expected, dtype=np.float64)
    if budget is not None:
        return _within_budget(scored, quality, budget, requests.valid, snapshot)
    if optimize_for == "total_cost" and options.willingness_to_pay is None:
        terms = Terms(scored.cost, snapshot.latency_ms, scored.quality, scored.p_serve, scored.candidate, settings,
                      snapshot.calibration.clear_level)
        agent = _argbest(OBJECTIVES["cost"](terms) + 1e-12 * quality, scored.candidate)
        why = "cheapest candidate that can serve it (total_cost)"
    else:
        agent = route(requests, options, snapshot, settings, signals).agent
        why = f"best by {optimize_for}" if options.willingness_to_pay is None else "best expected quality - cost / " \
            "willingness_to_pay"
    return _decisions(agent, scored, quality, np.nan, requests.valid, snapshot, why)


def _within_budget(scored: Scored, quality: np.ndarray, budget: float, valid: np.ndarray,
                   snapshot: AgentSnapshot) -> BatchDecisions:
    candidate, cost = scored.candidate, scored.cost

    def choose(lagrange: float) -> np.ndarray:  # the router's own scoring at willingness to pay 1/λ
        return _argbest(value_scores(quality, cost, np.inf if lagrange == 0 else 1.0 / lagrange), candidate)

    def spend(agent: np.ndarray) -> float:
        return float(_picked(cost, agent).sum())

    best = choose(0.0)
    if spend(best) <= budget:
        return _decisions(best, scored, quality, np.inf, valid, snapshot,
                          "best expected quality; the budget is not binding")
    high = 1.0
    while spend(choose(high)) > budget and high < 1e12:
        high *= 4.0
    cheapest = choose(high)
    if spend(cheapest) > budget:
        agent = _serve_cheapest_first(cheapest, cost, budget)
        return _decisions(agent, scored, quality, 1.0 / high, valid, snapshot, "cheapest candidate; budget exhausted")
    low = 0.0
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2.0
        if spend(choose(middle)) <= budget:
            high = middle
        else:
            low = middle
    agent = _upgrade(choose(high), choose(low), cost, quality, budget)
    return _decisions(agent, scored, quality, 1.0 / high, valid, snapshot,
                      "best expected quality - cost / willingness_to_pay, the budget's")


def _upgrade(feasible: np.ndarray, better: np.ndarray, cost: np.ndarray, quality: np.ndarray,
             budget: float) -> np.ndarray:
    """Spend what the relaxation left on switching requests to ``better``, best quality per dollar first."""
    agent = feasible.copy()
    differs = np.flatnonzero((feasible != better) & (better >= 0))
    if not len(differs):
        return agent
    extra_cost = _picked(cost, better)[differs] - _picked(cost, feasible)[differs]
    gain = _picked(quality, better)[differs] - _picked(quality, feasible)[differs]
    order = np.argsort(-(gain / np.maximum(extra_cost, 1e-15)), kind="stable")
    room = budget - float(_picked(cost, feasible).sum())
    fits = np.cumsum(np.maximum(extra_cost[order], 0.0)) <= room + 1e-12
    switch = differs[order[fits & (gain[order] > 0)]]
    agent[switch] = better[switch]
    return agent


def _serve_cheapest_first(cheapest: np.ndarray, cost: np.ndarray, budget: float) -> np.ndarray:
    price = _picked(cost, cheapest)
    order = np.argsort(price, kind="stable")
    served = order[np.cumsum(price[order]) <= budget]
    agent = np.full_like(cheapest, -1)
    agent[served] = cheapest[served]
    return agent


def _argbest(value: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """int (n,): argmax of value over each row's candidates, -1 for a row without one."""
    if value.shape[1] == 0:
        return np.full(value.shape[0], -1)
    best = np.argmax(np.where(candidate, value, -np.inf), axis=1)
    return np.where(candidate.any(axis=1), best, -1)


def _picked(matrix: np.ndarray, agent: np.ndarray) -> np.ndarray:
    """float (n,): matrix[i, agent[i]], 0 where agent is -1."""
    if matrix.shape[1] == 0:
        return np.zeros(len(agent))
    return np.where(agent >= 0, matrix[np.arange(len(agent)), np.maximum(agent, 0)], 0.0)


def _decisions(agent: np.ndarray, scored: Scored, quality: np.ndarray, willingness_to_pay: float, valid: np.ndarray,
               snapshot: AgentSnapshot, why: str) -> BatchDecisions:
    names = snapshot.name_list()
    has_candidate = scored.candidate.any(axis=1)
    key = np.column_stack([valid, has_candidate, agent])

    def describe(row: np.ndarray) -> str:
        if not row[0]:
            return "no agent: the request is NULL or empty"
        if not row[1]:
            return "no agent: no candidate satisfies the constraints"
        if row[2] < 0:
            return "no agent: the budget ran out before this request"
        return f"{names[row[2]]}: {why}"

    chosen = agent >= 0
    return BatchDecisions(agent, np.where(chosen, _picked(scored.cost, agent), np.nan),
                          np.where(chosen, _picked(quality, agent), np.nan), willingness_to_pay,
                          format_once(key, describe))
