"""The router: for n requests and A agents, build (n, A) matrices and decide in numpy (DESIGN §5).

1. candidates: active, circuit not open, not excluded, holding every required capability, avg latency <=
   max_latency_ms, quality >= min_quality, estimated cost <= max_cost, not over its own budget, estimated cost <=
   budget_remaining (:data:`tinydancer_duck.routing._explain.CONSTRAINTS`, in that order);
2. estimated cost: :mod:`tinydancer_duck.registry._costs`;
3. match m in [0, 1]: max(0, cosine(request, capability embedding)); a row where every candidate has m = 0 carries
   no match signal, so its objective alone decides (m = 1) and the reasoning says so;
4. score by objective, normalized within each request's candidate set (:data:`OBJECTIVES`);
5. decision: a matched semantic route whose target agent is a candidate decides; otherwise the best candidate
   (ties go to the alphabetically first). Confidence = softmax of the candidate scores
   at ``Settings.confidence_temperature``, estimated cost and latency, and a reasoning string. No candidate gives
   agent -1 and a reasoning naming the constraint that emptied the set; a NULL request gives -1, never an error.

Other services feed a batch through :class:`Signals` (classifier match, predicted quality, open circuits, agents over
budget, semantic routes); the router itself reads no store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.registry import AgentSnapshot, estimated_cost
from tinydancer_duck.settings import Settings

from ._explain import CONSTRAINTS, ROUTE_DECIDED, ROUTE_TARGET_REMOVED, ROUTE_TARGET_UNKNOWN, explain
from ._options import OBJECTIVE_NAMES, RouteOptions

_TINY = 1e-12

Scorer = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Settings], np.ndarray]


def _ratio_to_min(values: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """min over the row's candidates / value, in (0, 1]; (n, A)."""
    best = np.min(values, axis=1, keepdims=True, initial=np.inf, where=candidate)
    best = np.where(np.isfinite(best), best, 0.0)
    return (best + _TINY) / (values + _TINY)


def _cost(cost, latency, quality, candidate, settings):
    return _ratio_to_min(cost, candidate)


def _latency(cost, latency, quality, candidate, settings):
    return _ratio_to_min(np.broadcast_to(latency, cost.shape), candidate)


def _quality(cost, latency, quality, candidate, settings):
    return np.broadcast_to(quality, cost.shape)


def _balanced(cost, latency, quality, candidate, settings):
    w_cost, w_latency, w_quality = settings.balanced_weights
    return (w_cost * _cost(cost, latency, quality, candidate, settings)
            + w_latency * _latency(cost, latency, quality, candidate, settings) + w_quality * quality)


def _quality_per_dollar(cost, latency, quality, candidate, settings):
    value = quality / (cost + 1e-9)
    best = np.where(candidate, value, 0.0).max(axis=1, keepdims=True, initial=0.0)
    return value / np.where(best > 0, best, 1.0)


#: objective name -> term in [0, 1] of shape (n, A), before multiplying by the match m.
OBJECTIVES: dict[str, Scorer] = {
    "cost": _cost,
    "latency": _latency,
    "quality": _quality,
    "balanced": _balanced,
    "quality_per_dollar": _quality_per_dollar,
}


@dataclass(frozen=True)
class Requests:
    """A batch of n requests: float32 (n, D) L2-normalized embeddings, bool (n,) validity, float64 (n,) tokens_in."""

    embeddings: np.ndarray
    valid: np.ndarray
    tokens_in: np.ndarray

    def __len__(self) -> int:
        return len(self.valid)

    def take(self, rows: np.ndarray) -> Requests:
        return Requests(self.embeddings[rows], self.valid[rows], self.tokens_in[rows])


@dataclass(frozen=True)
class Decisions:
    """Per-request outcome; agent is -1 (NULL) when no agent was chosen. float64 columns are NaN then."""

    agent: np.ndarray
    confidence: np.ndarray
    estimated_cost: np.ndarray
    estimated_latency_ms: np.ndarray
    candidates: np.ndarray
    reasoning: pa.Array

    def to_arrow(self, snapshot: AgentSnapshot) -> pa.StructArray:
        """The STRUCT ruvector_route returns."""
        chosen = self.agent >= 0
        names = snapshot.names.take(pa.array(np.where(chosen, self.agent, 0), pa.int64(), mask=~chosen)) \
            if snapshot.size else pa.nulls(len(self.agent), pa.string())
        mask = ~chosen
        return pa.StructArray.from_arrays(
            [
                names,
                pa.array(self.confidence, pa.float64(), mask=mask),
                pa.array(self.estimated_cost, pa.float64(), mask=mask),
                pa.array(self.estimated_latency_ms, pa.float64(), mask=mask),
                pa.array(self.candidates, pa.int32()),
                self.reasoning,
            ],
            fields=list(ROUTE_TYPE),
        )

    def take(self, rows: np.ndarray | slice) -> Decisions:
        """The decisions of a subset of the requests."""
        picked = np.arange(len(self.agent))[rows]
        return Decisions(self.agent[picked], self.confidence[picked], self.estimated_cost[picked],
                         self.estimated_latency_ms[picked], self.candidates[picked],
                         self.reasoning.take(pa.array(picked, pa.int64())))

    @staticmethod
    def concat(parts: list[Decisions]) -> Decisions:
        """Decisions of consecutive row ranges, in order."""
        if len(parts) == 1:
            return parts[0]
        return Decisions(*(np.concatenate([getattr(p, name) for p in parts]) for name in
                           ("agent", "confidence", "estimated_cost", "estimated_latency_ms", "candidates")),
                         pa.concat_arrays([p.reasoning for p in parts]))

    def row(self, i: int, snapshot: AgentSnapshot) -> dict[str, Any]:
        """Request i's decision as Python values (the STRUCT's fields; None where :meth:`to_arrow` has NULL)."""
        agent = int(self.agent[i])
        chosen = agent >= 0
        number = (lambda values: float(values[i]) if chosen else None)
        return {
            "agent_name": snapshot.name_list()[agent] if chosen else None,
            "confidence": number(self.confidence),
            "estimated_cost": number(self.estimated_cost),
            "estimated_latency_ms": number(self.estimated_latency_ms),
            "candidates": int(self.candidates[i]),
            "reasoning": self.reasoning[i].as_py(),
        }


#: The STRUCT ruvector_route returns (the SQL return type is derived from it).
ROUTE_TYPE = pa.struct([("agent_name", pa.string()), ("confidence", pa.float64()), ("estimated_cost", pa.float64()),
                        ("estimated_latency_ms", pa.float64()), ("candidates", pa.int32()), ("reasoning", pa.string())])
ROUTE_FIELDS = tuple(ROUTE_TYPE.names)


@dataclass(frozen=True)
class Signals:
    """What other services know about a batch; every field is optional.

    match : float32 (n, A) in [0, 1] replacing the cosine match (e.g. a classifier's probability mass).
    quality : float64 (n, A) expected quality per (request, agent) replacing quality_score in the objectives.
    circuit_open, over_budget : bool (A,) agents the health breaker or their own budget take out.
    route, route_target : int (n,) the semantic route matched per request and the agent it names (-1: none);
        ``route_names`` holds the routes' names. A matched route whose target is a candidate decides the request.
    """

    match: np.ndarray | None = None
    quality: np.ndarray | None = None
    circuit_open: np.ndarray | None = None
    over_budget: np.ndarray | None = None
    route: np.ndarray | None = None
    route_target: np.ndarray | None = None
    route_names: tuple[str, ...] = ()

    def take(self, rows: np.ndarray) -> Signals:
        """The signals of a subset of the requests (per-agent fields are shared)."""
        per_row = (lambda value: None if value is None else value[rows])
        return Signals(per_row(self.match), per_row(self.quality) if self.quality is not None
                       and self.quality.ndim == 2 else self.quality, self.circuit_open, self.over_budget,
                       per_row(self.route), per_row(self.route_target), self.route_names)


NO_SIGNALS = Signals()


@dataclass(frozen=True)
class Scored:
    """The (n, A) matrices a decision is made from; score is -inf off the candidate set."""

    cost: np.ndarray
    reasons: np.ndarray
    candidate: np.ndarray
    match: np.ndarray
    no_signal: np.ndarray
    expected_quality: np.ndarray  # (A,) or (n, A), as the objectives saw it
    score: np.ndarray

    @property
    def quality(self) -> np.ndarray:
        """float64 (n, A) expected quality (a read-only broadcast view when it is per agent)."""
        return np.broadcast_to(self.expected_quality, self.score.shape)


def score_batch(requests: Requests, options: RouteOptions, snapshot: AgentSnapshot, settings: Settings,
                signals: Signals = NO_SIGNALS) -> Scored:
    """Candidates, costs, matches and objective scores for every (request, agent) pair."""
    n, n_agents = len(requests), snapshot.size
    cost = estimated_cost(requests.tokens_in, snapshot)
    reasons = removal_codes(options, snapshot, cost, signals)
    candidate = (reasons == 0) & requests.valid[:, None]
    if signals.match is not None:
        match = np.array(signals.match, dtype=np.float32)
    else:
        match = np.maximum(requests.embeddings @ snapshot.capability_embedding.T, 0.0, dtype=np.float32)
    no_signal = ~(np.where(candidate, match, 0.0) > 0).any(axis=1)
    match[no_signal] = 1.0
    quality = snapshot.quality if signals.quality is None else signals.quality

    def scores(code: int, rows: slice | np.ndarray) -> np.ndarray:
        rows_quality = quality if quality.ndim == 1 else quality[rows]
        term = OBJECTIVES[OBJECTIVE_NAMES[code]](cost[rows], snapshot.latency_ms, rows_quality, candidate[rows],
                                                 settings)
        return np.where(candidate[rows], match[rows] * term, -np.inf)

    groups = objective_groups(options.objective)
    if len(groups) == 1:  # one objective for the whole batch: its scores are the matrix
        score = scores(*groups[0])
    else:
        score = np.full((n, n_agents), -np.inf)
        for code, rows in groups:
            score[rows] = scores(code, rows)
    return Scored(cost, reasons, candidate, match, no_signal, quality, score)


def objective_groups(objective: np.ndarray) -> list[tuple[int, slice | np.ndarray]]:
    """(objective code, rows) for each objective in the batch. The usual batch has one (SQL passes a constant):
    its rows are ``slice(None)``, so the (n, A) matrices are used as views instead of copied by a mask."""
    if len(objective) == 0:
        return []
    if (objective == objective[0]).all():
        return [(int(objective[0]), slice(None))]
    return [(int(code), objective == code) for code in np.unique(objective)]


def route(requests: Requests, options: RouteOptions, snapshot: AgentSnapshot, settings: Settings,
          signals: Signals = NO_SIGNALS) -> Decisions:
    """Decide an agent for every request (see the module docstring for the rules)."""
    n, n_agents = len(requests), snapshot.size
    scored = score_batch(requests, options, snapshot, settings, signals)
    candidate, score = scored.candidate, scored.score
    n_candidates = candidate.sum(axis=1)
    has_candidate = n_candidates > 0
    winner = np.where(has_candidate, np.argmax(score, axis=1) if n_agents else 0, -1)
    semantic = semantic_status(signals, candidate, n)
    if signals.route is not None:
        winner = np.where(semantic == ROUTE_DECIDED, signals.route_target, winner)
    rows = np.arange(n)
    safe = np.maximum(winner, 0)
    top = np.where(has_candidate, score[rows, safe], 0.0) if n_agents else np.zeros(n)
    # a non-candidate scores -inf, so its weight is exp(-inf) = 0
    shifted = (score - top[:, None]) / settings.confidence_temperature
    if signals.route is None:  # top is the row's best score: every exponent is <= 0
        weights = np.exp(shifted)
    else:
        with np.errstate(over="ignore"):  # a semantic route's target may score far below the best candidate
            weights = np.exp(shifted)
    confidence = np.where(has_candidate, 1.0 / weights.sum(axis=1).clip(min=1.0), np.nan)
    pick = (lambda values: np.where(has_candidate, values, np.nan))
    return Decisions(
        agent=winner,
        confidence=confidence,
        estimated_cost=pick(scored.cost[rows, safe] if n_agents else np.zeros(n)),
        estimated_latency_ms=pick(snapshot.latency_ms[safe] if n_agents else np.zeros(n)),
        candidates=n_candidates.astype(np.int32),
        reasoning=explain(requests.valid, options.objective, winner, scored.no_signal & has_candidate,
                          scored.reasons, n_candidates, snapshot,
                          semantic=semantic, route=signals.route, route_names=signals.route_names),
    )


def semantic_status(signals: Signals, candidate: np.ndarray, n: int) -> np.ndarray:
    """int8 (n,): what the matched semantic route (if any) did for each request."""
    status = np.zeros(n, np.int8)
    if signals.route is None:
        return status
    matched = signals.route >= 0
    target = signals.route_target
    known = matched & (target >= 0)
    usable = known.copy()
    usable[known] = candidate[np.flatnonzero(known), target[known]]
    status[matched & ~known] = ROUTE_TARGET_UNKNOWN
    status[known & ~usable] = ROUTE_TARGET_REMOVED
    status[usable] = ROUTE_DECIDED
    return status


def removal_codes(options: RouteOptions, snapshot: AgentSnapshot, cost: np.ndarray,
                  signals: Signals = NO_SIGNALS) -> np.ndarray:
    """uint8 (n, A): 0 for a candidate, else 1 + the index in CONSTRAINTS of the first constraint it fails."""
    n, n_agents = cost.shape
    codes = np.zeros((n, n_agents), np.uint8)
    fails = _failures(options, snapshot, cost, signals, n)
    for position in range(len(CONSTRAINTS) - 1, -1, -1):  # write the last first, so the first failure wins
        mask = fails.get(CONSTRAINTS[position])
        if mask is not None:
            np.copyto(codes, np.uint8(position + 1), where=mask)
    return codes


def _failures(options: RouteOptions, snapshot: AgentSnapshot, cost: np.ndarray, signals: Signals,
              n: int) -> dict[str, np.ndarray]:
    """Constraint name -> where it fails, as a mask broadcastable to (n, A); a constraint that cannot fail (not
    given, NULL for every row, no agent inactive) is left out, which spares a one-request call most of the work."""
    fails = {}
    if not snapshot.active.all():
        fails["inactive"] = ~snapshot.active
    if signals.circuit_open is not None:
        fails["circuit_open"] = signals.circuit_open
    if signals.over_budget is not None:
        fails["agent_budget"] = signals.over_budget
    if options.excluded_agents is not None:
        fails["excluded_agents"] = _listed(options.excluded_agents, snapshot.names, n)
    if options.required_capabilities is not None:
        fails["required_capabilities"] = ~_covers(options.required_capabilities, snapshot, n)
    limits = (("max_latency_ms", np.greater, snapshot.latency_ms, options.max_latency_ms),
              ("min_quality", np.less, snapshot.quality, options.min_quality),
              ("max_cost", np.greater, cost, options.max_cost),
              ("budget_remaining", np.greater, cost, options.budget_remaining))
    for name, fails_when, value, limit in limits:
        if not np.isnan(limit).all():  # a NaN limit (not given) never fails
            fails[name] = fails_when(value, limit[:, None])
    return fails


def _listed(lists: pa.ListArray, names: pa.Array, n: int) -> np.ndarray:
    """bool (n, A): agent a's name is in row i's list."""
    out = np.zeros((n, len(names)), bool)
    if len(names) == 0:
        return out
    parents = pc.list_parent_indices(lists).to_numpy()
    position = pc.index_in(pc.list_flatten(lists), value_set=names)
    found = position.is_valid().to_numpy(zero_copy_only=False)
    out[parents[found], position.to_numpy(zero_copy_only=False)[found].astype(np.int64)] = True
    return out


def _covers(required: pa.ListArray, snapshot: AgentSnapshot, n: int) -> np.ndarray:
    """bool (n, A): agent a holds every capability row i requires (a capability nobody has excludes everyone)."""
    needed = required_matrix(required, snapshot, n)
    held = np.zeros((needed.shape[1], snapshot.size), np.float32)
    held[:-1] = snapshot.has_capability
    return (needed @ held) >= needed.sum(axis=1, keepdims=True)


def required_matrix(required: pa.ListArray, snapshot: AgentSnapshot, n: int) -> np.ndarray:
    """float32 (n, K + 1): 1 where row i requires capability k of the vocabulary; column K: one no agent holds."""
    flat = pc.list_flatten(required)
    parents = pc.list_parent_indices(required).to_numpy()
    present = flat.is_valid().to_numpy(zero_copy_only=False)
    n_known = len(snapshot.capability_vocab)
    position = pc.index_in(flat, value_set=snapshot.capability_vocab).fill_null(n_known)
    needed = np.zeros((n, n_known + 1), np.float32)
    needed[parents[present], position.to_numpy(zero_copy_only=False)[present]] = 1.0
    return needed
