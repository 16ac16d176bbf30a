"""The router: for n requests and A agents, build (n, A) matrices and decide in numpy (DESIGN §5).

1. candidates: active, not excluded, holding every required capability, avg latency <= max_latency_ms,
   quality >= min_quality, estimated cost <= max_cost and <= budget_remaining;
2. estimated cost: :mod:`tinydancer_duck.costs`;
3. match m in [0, 1]: max(0, cosine(request, capability embedding)); a row where every candidate has m = 0 carries
   no match signal, so its objective alone decides (m = 1) and the reasoning says so;
4. score by objective, normalized within each request's candidate set (:data:`OBJECTIVES`);
5. decision: the best candidate (ties go to the alphabetically first), confidence = softmax of the candidate scores
   at ``Settings.confidence_temperature``, estimated cost and latency, and a reasoning string. No candidate gives
   agent -1 and a reasoning naming the constraint that emptied the set; a NULL request gives -1, never an error.

Reasoning strings are built once per distinct (objective, winner, removal pattern) in the batch and spread with an
Arrow ``take``, so a million rows cost a handful of string formats, not a million.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .agents import AgentSnapshot
from .costs import estimated_cost
from .options import OBJECTIVE_NAMES, RouteOptions
from .settings import Settings

#: Why an agent is not a candidate, in the order constraints are checked (code = position + 1).
CONSTRAINTS = ("inactive", "excluded_agents", "required_capabilities", "max_latency_ms", "min_quality",
               "max_cost", "budget_remaining")
_TINY = 1e-12
_MAX_NAMED = 5  # removed agents named in a reasoning before "+N more"

Scorer = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Settings], np.ndarray]


def _ratio_to_min(values: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """min over the row's candidates / value, in (0, 1]; (n, A)."""
    best = np.where(candidate, values, np.inf).min(axis=1, keepdims=True, initial=np.inf)
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
            names=list(ROUTE_FIELDS),
        )


ROUTE_FIELDS = ("agent_name", "confidence", "estimated_cost", "estimated_latency_ms", "candidates", "reasoning")


def route(requests: Requests, options: RouteOptions, snapshot: AgentSnapshot, settings: Settings) -> Decisions:
    """Decide an agent for every request (see the module docstring for the rules)."""
    n, n_agents = len(requests), snapshot.size
    cost = estimated_cost(requests.tokens_in, snapshot)
    reasons = removal_codes(options, snapshot, cost)
    candidate = (reasons == 0) & requests.valid[:, None]

    match = np.maximum(requests.embeddings @ snapshot.capability_embedding.T, 0.0, dtype=np.float32)
    no_signal = ~(np.where(candidate, match, 0.0) > 0).any(axis=1)
    match[no_signal] = 1.0

    score = np.full((n, n_agents), -np.inf)
    for code in np.unique(options.objective):
        rows = options.objective == code
        term = OBJECTIVES[OBJECTIVE_NAMES[code]](cost[rows], snapshot.latency_ms, snapshot.quality,
                                                 candidate[rows], settings)
        score[rows] = np.where(candidate[rows], match[rows] * term, -np.inf)

    has_candidate = candidate.any(axis=1)
    winner = np.where(has_candidate, np.argmax(score, axis=1) if n_agents else 0, -1)
    rows = np.arange(n)
    safe = np.maximum(winner, 0)
    top = score[rows, safe] if n_agents else np.zeros(n)
    with np.errstate(invalid="ignore", over="ignore"):
        weights = np.exp((score - top[:, None]) / settings.confidence_temperature)
    confidence = np.where(has_candidate, 1.0 / np.where(candidate, weights, 0.0).sum(axis=1).clip(min=1.0), np.nan)
    pick = (lambda values: np.where(has_candidate, values, np.nan))
    return Decisions(
        agent=winner,
        confidence=confidence,
        estimated_cost=pick(cost[rows, safe] if n_agents else np.zeros(n)),
        estimated_latency_ms=pick(snapshot.latency_ms[safe] if n_agents else np.zeros(n)),
        candidates=candidate.sum(axis=1).astype(np.int32),
        reasoning=explain(requests.valid, options.objective, winner, no_signal & has_candidate, reasons,
                          candidate.sum(axis=1), snapshot),
    )


def removal_codes(options: RouteOptions, snapshot: AgentSnapshot, cost: np.ndarray) -> np.ndarray:
    """uint8 (n, A): 0 for a candidate, else 1 + the index in CONSTRAINTS of the first constraint it fails."""
    n, n_agents = cost.shape
    fails = {
        "inactive": np.broadcast_to(~snapshot.active, (n, n_agents)),
        "excluded_agents": _listed(options.excluded_agents, snapshot.names, n),
        "required_capabilities": ~_covers(options.required_capabilities, snapshot, n),
        "max_latency_ms": snapshot.latency_ms[None, :] > options.max_latency_ms[:, None],
        "min_quality": snapshot.quality[None, :] < options.min_quality[:, None],
        "max_cost": cost > options.max_cost[:, None],
        "budget_remaining": cost > options.budget_remaining[:, None],
    }
    codes = np.zeros((n, n_agents), np.uint8)
    for position in range(len(CONSTRAINTS) - 1, -1, -1):  # write the last first, so the first failure wins
        codes[fails[CONSTRAINTS[position]]] = position + 1
    return codes


def _listed(lists: pa.ListArray | None, names: pa.Array, n: int) -> np.ndarray:
    """bool (n, A): agent a's name is in row i's list."""
    out = np.zeros((n, len(names)), bool)
    if lists is None or len(names) == 0:
        return out
    parents = pc.list_parent_indices(lists).to_numpy()
    position = pc.index_in(pc.list_flatten(lists), value_set=names)
    found = position.is_valid().to_numpy(zero_copy_only=False)
    out[parents[found], position.to_numpy(zero_copy_only=False)[found].astype(np.int64)] = True
    return out


def _covers(required: pa.ListArray | None, snapshot: AgentSnapshot, n: int) -> np.ndarray:
    """bool (n, A): agent a holds every capability row i requires (a capability nobody has excludes everyone)."""
    if required is None:
        return np.ones((n, snapshot.size), bool)
    flat = pc.list_flatten(required)
    parents = pc.list_parent_indices(required).to_numpy()
    present = flat.is_valid().to_numpy(zero_copy_only=False)
    n_known = len(snapshot.capability_vocab)
    position = pc.index_in(flat, value_set=snapshot.capability_vocab).fill_null(n_known)
    needed = np.zeros((n, n_known + 1), np.float32)
    needed[parents[present], position.to_numpy(zero_copy_only=False)[present]] = 1.0
    held = np.zeros((n_known + 1, snapshot.size), np.float32)
    held[:n_known] = snapshot.has_capability
    return (needed @ held) >= needed.sum(axis=1, keepdims=True)


def explain(valid: np.ndarray, objective: np.ndarray, winner: np.ndarray, no_signal: np.ndarray,
            reasons: np.ndarray, n_candidates: np.ndarray, snapshot: AgentSnapshot) -> pa.Array:
    """One reasoning string per request, formatted once per distinct situation."""
    n = len(valid)
    if n == 0:
        return pa.array([], pa.string())
    key = np.ascontiguousarray(
        np.column_stack([valid, objective, winner + 1, no_signal, n_candidates, reasons]), dtype=np.int32)
    names = snapshot.name_list()
    if (key == key[0]).all():  # the usual batch: one situation for every row
        return pa.array([_reason(key[0], names)], pa.string()).take(pa.array(np.zeros(n, np.int64)))
    rows_as_bytes = key.view(np.dtype((np.void, key.itemsize * key.shape[1]))).reshape(n)
    _, first, inverse = np.unique(rows_as_bytes, return_index=True, return_inverse=True)
    texts = [_reason(key[i], names) for i in first]
    return pa.array(texts, pa.string()).take(pa.array(inverse.reshape(-1), pa.int64()))


def _reason(key: np.ndarray, names: list[str]) -> str:
    valid, objective, winner, no_signal, n_candidates = (int(v) for v in key[:5])
    codes = key[5:]
    if not valid:
        return "no agent: the request is NULL or empty"
    if not names:
        return "no agent: no agents are registered"
    removed = [(names[a], CONSTRAINTS[c - 1]) for a, c in enumerate(codes) if c]
    listed = ", ".join(f"{name} ({why})" for name, why in removed[:_MAX_NAMED])
    if len(removed) > _MAX_NAMED:
        listed += f", +{len(removed) - _MAX_NAMED} more"
    if winner == 0:
        emptied = CONSTRAINTS[int(codes.max()) - 1]
        return f"no agent: {emptied} removed the last candidate; removed: {listed}"
    text = (f"{names[winner - 1]} best by {OBJECTIVE_NAMES[objective]} among {n_candidates} "
            f"candidate{'s' if n_candidates != 1 else ''}")
    if no_signal:
        text += " (no capability matched the request; the objective alone decided)"
    if removed:
        text += f"; removed: {listed}"
    return text
