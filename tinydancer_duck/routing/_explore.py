"""Exploration: with probability ``explore`` a request's agent is drawn uniformly from its candidates, and every
decision reports its propensity, the probability this policy picks the agent it picked (1.0 for a deterministic
decision). A log of decisions with their propensities can then be replayed honestly under another policy (inverse
propensity weighting, DESIGN §11).

The draw is reproducible per request: two uniforms from a hash of the request's embedding bits and
``explore_seed`` (splitmix64), so the same request with the same seed draws the same way whatever batch it is in,
and a new seed (say, the day) draws afresh. epsilon-greedy: pi(a | x) = (1 - eps) [a = the objective's choice] +
eps / k over the k candidates.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """One splitmix64 step on uint64 values (wrapping arithmetic): a bijection that scrambles every bit."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _column_weights(d: int) -> np.ndarray:
    return _splitmix64(np.arange(d, dtype=np.uint64)) | np.uint64(1)  # odd: multiplying keeps every bit


def uniforms(x: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two float64 (n,) uniforms in [0, 1) per row of x float32 (n, D), a function of the row's bits and seed."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    with np.errstate(over="ignore"):
        key = np.bitwise_xor.reduce(bits * _column_weights(x.shape[1]), axis=1) if x.shape[1] else \
            np.zeros(len(x), np.uint64)
    first = _splitmix64(key ^ _splitmix64(np.full(len(x), seed, np.uint64) & _MASK64))
    second = _splitmix64(first)
    scale = 1.0 / float(1 << 53)
    return (first >> np.uint64(11)).astype(np.float64) * scale, (second >> np.uint64(11)).astype(np.float64) * scale


def explored(winner: np.ndarray, candidate: np.ndarray, rate: np.ndarray, x: np.ndarray, seed: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(agent int (n,), propensity float64 (n,), explored bool (n,)): each row with candidates explores with
    probability ``rate`` (float64 (n,), 0 where not asked), drawing uniformly among its candidates.

    winner : the objective's choice (-1: none); candidate : bool (n, A); x : the requests' embeddings (the draw's
    key). The propensity is of the agent returned; NaN where there is no candidate.
    """
    has = winner >= 0
    count = candidate.sum(axis=1)
    coin, pick = uniforms(x, seed)
    explores = has & (coin < rate)
    chosen = winner.copy()
    rows = np.flatnonzero(explores)
    if len(rows):
        slot = np.minimum((pick[rows] * count[rows]).astype(np.int64), count[rows] - 1)
        ranks = np.cumsum(candidate[rows], axis=1) - 1  # the j-th candidate of a row has rank j
        chosen[rows] = np.argmax((ranks == slot[:, None]) & candidate[rows], axis=1)
    share = rate / np.maximum(count, 1)
    propensity = np.where(chosen == winner, 1.0 - rate + share, share)
    return chosen, np.where(has, propensity, np.nan), explores


def policy_probabilities(winner: np.ndarray, candidate: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """float64 (n, A): the probability this policy picks each agent (a replay's target policy); rows without a
    candidate are all zero."""
    count = np.maximum(candidate.sum(axis=1), 1)
    probabilities = np.where(candidate, (rate / count)[:, None], 0.0)
    rows = np.flatnonzero(winner >= 0)
    probabilities[rows, winner[rows]] += 1.0 - rate[rows]
    return probabilities


def exploration_notes(reasoning: pa.Array, explores: np.ndarray, chosen: np.ndarray, propensity: np.ndarray,
                      rate: np.ndarray, count: np.ndarray, names: list[str]) -> pa.Array:
    """The reasoning of the rows that explored, prefixed with what happened: "explored: haiku drawn among 3
    candidates (explore 0.1, propensity 0.0333); the objective's choice was: ..." (only those rows pay)."""
    rows = np.flatnonzero(explores)
    texts = reasoning.to_pylist()
    for i in rows.tolist():
        texts[i] = (f"explored: {names[chosen[i]]} drawn among {int(count[i])} candidates (explore {rate[i]:g}, "
                    f"propensity {propensity[i]:.4g}); the objective's choice was: {texts[i]}")
    return pa.array(texts, pa.string())
