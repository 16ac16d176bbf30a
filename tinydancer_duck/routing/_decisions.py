"""Routing decisions and the STRUCT ruvector_route returns: the choice, its fallbacks and, when asked, the scores.

- ``fallbacks``: the next candidates in score order (name, score, estimated cost), at most ``num_fallbacks``; every
  one satisfies every constraint, so a caller whose first choice fails or times out has somewhere to go.
- ``scores``: the per-candidate breakdown in the reasoning's words (similarity, what it matched on, the probability
  of serving p_serve, cost and latency against the best candidate, quality, expected quality p_serve * quality, the
  final score), best first; NULL unless ``explain````
  (over a million-row log it would cost more than the decision: the one-request table form always explains).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from tinydancer_duck.options import NUM_FALLBACKS

if TYPE_CHECKING:
    from tinydancer_duck.registry import AgentSnapshot

    from ._router import Scored

FALLBACK_TYPE = pa.struct([("agent_name", pa.string()), ("score", pa.float64()), ("estimated_cost", pa.float64())])
SCORE_TYPE = pa.struct([
    ("agent_name", pa.string()), ("similarity", pa.float64()), ("matched_on", pa.string()),
    ("p_serve", pa.float64()), ("cost_vs_cheapest", pa.float64()), ("latency_vs_fastest", pa.float64()),
    ("quality", pa.float64()), ("expected_quality", pa.float64()), ("score", pa.float64()),
])
#: The STRUCT ruvector_route returns (the SQL return type is derived from it).
ROUTE_TYPE = pa.struct([("agent_name", pa.string()), ("confidence", pa.float64()), ("propensity", pa.float64()),
                        ("estimated_cost", pa.float64()),
                        ("estimated_latency_ms", pa.float64()), ("candidates", pa.int32()), ("reasoning", pa.string()),
                        ("fallbacks", pa.list_(FALLBACK_TYPE)), ("scores", pa.list_(SCORE_TYPE))])
ROUTE_FIELDS = tuple(ROUTE_TYPE.names)
#: Fallbacks listed per decision unless the caller asks for another number (options.NUM_FALLBACKS declares it).
DEFAULT_FALLBACKS = NUM_FALLBACKS.default


@dataclass(frozen=True)
class Decisions:
    """Per-request outcome; agent is -1 (NULL) when no agent was chosen. float64 columns are NaN then.

    propensity : the probability the policy picks the agent it picked (1.0 unless it explores).
    scored : the (n, A) matrices the decision was made from (for fallbacks and the breakdown, including which
    capability, description or example the evidence came from).
    """

    agent: np.ndarray
    confidence: np.ndarray
    propensity: np.ndarray
    estimated_cost: np.ndarray
    estimated_latency_ms: np.ndarray
    candidates: np.ndarray
    reasoning: pa.Array
    scored: Scored

    def take(self, rows: np.ndarray | slice) -> Decisions:
        """The decisions of a subset of the requests."""
        picked = np.arange(len(self.agent))[rows]
        return replace(self, agent=self.agent[picked], confidence=self.confidence[picked],
                       propensity=self.propensity[picked],
                       estimated_cost=self.estimated_cost[picked], estimated_latency_ms=self.estimated_latency_ms[picked],
                       candidates=self.candidates[picked], reasoning=self.reasoning.take(pa.array(picked, pa.int64())),
                       scored=self.scored.take(picked))

    @staticmethod
    def concat(parts: list[Decisions]) -> Decisions:
        """Decisions of consecutive row ranges, in order."""
        if len(parts) == 1:
            return parts[0]
        joined = {name: np.concatenate([getattr(p, name) for p in parts]) for name in
                  ("agent", "confidence", "propensity", "estimated_cost", "estimated_latency_ms", "candidates")}
        return replace(parts[0], reasoning=pa.concat_arrays([p.reasoning for p in parts]),
                       scored=type(parts[0].scored).concat([p.scored for p in parts]), **joined)

    def without_agent_from(self, start: int, why: str) -> Decisions:
        """The decisions with every row from ``start`` on left without an agent (and no fallbacks) for ``why``."""
        agent = self.agent.copy()
        agent[start:] = -1
        nan = np.full(len(agent) - start, np.nan)
        candidate = self.scored.candidate.copy()
        candidate[start:] = False
        reasoning = pa.concat_arrays([self.reasoning.slice(0, start),
                                      pa.array([why] * (len(agent) - start), pa.string())])
        return replace(self, agent=agent, confidence=np.r_[self.confidence[:start], nan],
                       propensity=np.r_[self.propensity[:start], nan],
                       estimated_cost=np.r_[self.estimated_cost[:start], nan],
                       estimated_latency_ms=np.r_[self.estimated_latency_ms[:start], nan], reasoning=reasoning,
                       scored=replace(self.scored, candidate=candidate))

    def ranked(self, k: int) -> np.ndarray:
        """int (n, k): the best candidates after the chosen agent, by score (-1 where fewer remain)."""
        score = np.where(self.scored.candidate, self.scored.score, -np.inf)
        n, a = score.shape
        if a == 0 or k == 0:
            return np.full((n, k), -1)
        rows = np.arange(n)
        chosen = self.agent >= 0
        score[rows[chosen], self.agent[chosen]] = -np.inf
        order = np.argsort(-score, axis=1, kind="stable")[:, :k]
        picked = np.take_along_axis(score, order, axis=1)
        out = np.where(np.isfinite(picked), order, -1)
        if out.shape[1] == k:
            return out
        return np.concatenate([out, np.full((n, k - out.shape[1]), -1)], axis=1)

    def to_arrow(self, snapshot: AgentSnapshot, *, num_fallbacks: int = DEFAULT_FALLBACKS,
                 explain: bool = False) -> pa.StructArray:
        """The STRUCT ruvector_route returns."""
        chosen = self.agent >= 0
        n = len(self.agent)
        names = snapshot.names.take(pa.array(np.where(chosen, self.agent, 0), pa.int64(), mask=~chosen)) \
            if snapshot.size else pa.nulls(n, pa.string())
        mask = ~chosen
        return pa.StructArray.from_arrays(
            [
                names,
                pa.array(self.confidence, pa.float64(), mask=mask),
                pa.array(self.propensity, pa.float64(), mask=mask),
                pa.array(self.estimated_cost, pa.float64(), mask=mask),
                pa.array(self.estimated_latency_ms, pa.float64(), mask=mask),
                pa.array(self.candidates, pa.int32()),
                self.reasoning,
                self._fallbacks(snapshot, num_fallbacks),
                self._scores(snapshot) if explain else pa.nulls(n, pa.list_(SCORE_TYPE)),
            ],
            fields=list(ROUTE_TYPE),
        )

    def row(self, i: int, snapshot: AgentSnapshot, *, num_fallbacks: int = DEFAULT_FALLBACKS,
            explain: bool = False) -> dict[str, Any]:
        """Request i's decision as Python values (the STRUCT's fields; None where :meth:`to_arrow` has NULL)."""
        agent = int(self.agent[i])
        chosen = agent >= 0
        number = (lambda values: float(values[i]) if chosen else None)
        names = snapshot.name_list()
        score, cost = self.scored.score[i].tolist(), self.scored.cost[i].tolist()
        best_first = self._candidates_of(i, score)
        fallbacks = [{"agent_name": names[a], "score": score[a], "estimated_cost": cost[a]}
                     for a in best_first if a != agent and math.isfinite(score[a])][:num_fallbacks]
        return {
            "agent_name": names[agent] if chosen else None,
            "confidence": number(self.confidence),
            "propensity": number(self.propensity),
            "estimated_cost": number(self.estimated_cost),
            "estimated_latency_ms": number(self.estimated_latency_ms),
            "candidates": int(self.candidates[i]),
            "reasoning": self.reasoning[i].as_py(),
            "fallbacks": fallbacks,
            "scores": self._scores_of(i, snapshot, best_first, score, cost) if explain else None,
        }

    def _candidates_of(self, i: int, score: list[float]) -> list[int]:
        """Request i's candidates, best score first (ties: the lower index first; NaN last, as a stable argsort), in
        Python: the one-request path's :meth:`ranked` and :meth:`_scores` order without numpy calls on one-row
        arrays."""
        candidate = self.scored.candidate[i].tolist()
        return sorted((a for a, ok in enumerate(candidate) if ok), key=lambda a: (math.isnan(score[a]), -score[a]))

    def _scores_of(self, i: int, snapshot: AgentSnapshot, agents: list[int], score: list[float],
                   cost: list[float]) -> list[dict[str, Any]]:
        """Request i's row of :meth:`_scores` as Python values, without Arrow (the one-request table form).

        agents : its candidates, best first (:meth:`_candidates_of`); score, cost : its rows as Python lists."""
        if not agents:
            return []
        scored = self.scored
        latency = snapshot.latency_ms.tolist()
        cheapest, fastest = min(cost[a] for a in agents), min(latency[a] for a in agents)
        names, labels = snapshot.name_list(), snapshot.labels
        similarity, p_serve = scored.similarity[i].tolist(), scored.p_serve[i].tolist()
        quality = (scored.agent_quality if scored.agent_quality.ndim == 1 else scored.agent_quality[i]).tolist()
        matched = scored.matched[i].tolist()
        return [{"agent_name": names[a], "similarity": _finite(similarity[a]),
                 "matched_on": labels[matched[a]] if matched[a] >= 0 and len(labels) else None,
                 "p_serve": p_serve[a], "cost_vs_cheapest": ratio_of(cost[a], cheapest),
                 "latency_vs_fastest": ratio_of(latency[a], fastest), "quality": quality[a],
                 "expected_quality": p_serve[a] * quality[a], "score": score[a]}
                for a in agents]

    def _fallbacks(self, snapshot: AgentSnapshot, k: int) -> pa.Array:
        ranked = self.ranked(k)
        rows, slots = np.nonzero(ranked >= 0)
        agents = ranked[rows, slots]
        offsets = np.concatenate([[0], np.cumsum((ranked >= 0).sum(axis=1))]).astype(np.int32)
        values = pa.StructArray.from_arrays([
            snapshot.names.take(pa.array(agents, pa.int64())) if len(agents) else pa.array([], pa.string()),
            pa.array(self.scored.score[rows, agents], pa.float64()),
            pa.array(self.scored.cost[rows, agents], pa.float64()),
        ], fields=list(FALLBACK_TYPE))
        return pa.ListArray.from_arrays(pa.array(offsets), values)

    def _scores(self, snapshot: AgentSnapshot, rows: np.ndarray | None = None) -> pa.Array:
        """Each request's candidates, best first, with the terms of their scores (SCORE_TYPE)."""
        scored = self.scored
        keep = slice(None) if rows is None else rows
        candidate, score = scored.candidate[keep], scored.score[keep]
        order = np.argsort(-np.where(candidate, score, -np.inf), axis=1, kind="stable")
        counts = candidate.sum(axis=1)
        flat_rows = np.repeat(np.arange(len(counts)), counts)
        flat_agents = np.concatenate([order[r, :c] for r, c in enumerate(counts)]) if len(counts) \
            else np.zeros(0, np.int64)
        cost = scored.cost[keep][flat_rows, flat_agents]
        cheapest = np.repeat(np.min(np.where(candidate, scored.cost[keep], np.inf), axis=1, initial=np.inf), counts)
        latency = snapshot.latency_ms[flat_agents]
        fastest = np.repeat(np.min(np.where(candidate, snapshot.latency_ms, np.inf), axis=1, initial=np.inf), counts)
        similarity = np.asarray(scored.similarity[keep][flat_rows, flat_agents], np.float64)
        labels = pa.array(snapshot.labels, pa.string())
        best_rows = scored.matched[keep][flat_rows, flat_agents].astype(np.int64)
        p_serve = np.asarray(scored.p_serve[keep][flat_rows, flat_agents], np.float64)
        quality = np.asarray(scored.quality[keep][flat_rows, flat_agents], np.float64)
        values = pa.StructArray.from_arrays([
            snapshot.names.take(pa.array(flat_agents, pa.int64())) if len(flat_agents) else pa.array([], pa.string()),
            pa.array(similarity, pa.float64(), mask=~np.isfinite(similarity)),
            labels.take(pa.array(best_rows, pa.int64(), mask=best_rows < 0)) if len(labels)
            else pa.nulls(len(flat_agents), pa.string()),
            pa.array(p_serve, pa.float64()),
            pa.array(ratio_to_best(cost, cheapest)), pa.array(ratio_to_best(latency, fastest)),
            pa.array(quality), pa.array(p_serve * quality),
            pa.array(score[flat_rows, flat_agents], pa.float64()),
        ], fields=list(SCORE_TYPE))
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), values)


def _finite(value: float) -> float | None:
    """A similarity, or None where the agent has nothing to match on (-inf)."""
    return value if math.isfinite(value) else None


def ratio_of(value: float, best: float) -> float:
    """:func:`ratio_to_best` of one pair, in Python (the same IEEE division)."""
    if best > 0:
        return value / best
    return float("inf") if value > 0 else 1.0


def ratio_to_best(value: np.ndarray, best: np.ndarray) -> np.ndarray:
    """value / best, 1 where both are 0 (a free agent among free agents)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # overflow: inf times the best, as it is
        return np.where(best > 0, value / np.where(best > 0, best, 1.0), np.where(value > 0, np.inf, 1.0))
