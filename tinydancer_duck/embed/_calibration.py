"""Calibrated similarity: what unrelated requests reach, so a similarity counts as evidence only above it.

A cosine similarity means nothing by itself: the static table puts unrelated sentences at 0.4-0.6 of each other and a
one-word capability at 0.1-0.4 of any sentence; the hashing embedder puts both near 0. So every set of vectors that
requests are matched against (an agent's capabilities, description and examples; a route's description and
examples) is first scored on a shipped background of generic requests from many domains
(``datasets/background_requests.json``, see ``datasets/build_background.py``). Those scores, pooled, are the null
distribution for that set and that embedder:

- an agent's match counts only at or above the null's :data:`MATCH_LEVEL` quantile; below it the request matches no
  capability and the objective decides;
- a semantic route without a fitted ``min_similarity`` decides only at or above the :data:`ROUTE_LEVEL` quantile,
  and its confidence is discounted by how often background text scores as high (:meth:`NullScores.tail`).

Scoring the background is one (N, D) @ (D, M) product per snapshot (N = 850), cheap next to building the snapshot.
The levels and the margin were chosen on training data only (CLINC150 train and oos_train,
``benchmarks/eval_calibration.py``), never on the evaluation sets the README reports.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import numpy as np

#: An agent's capability, description or example matches a request at this quantile of the background's scores
#: (chosen on CLINC150 train: the highest level that keeps the right agent's share within 2 points of no threshold;
#: below it a match is noise the objective should not hear).
MATCH_LEVEL = 0.8
#: A route without a fitted threshold must score at this quantile of the background's scores (chosen on CLINC150
#: train: the lowest level that rejects at least 80% of out-of-scope queries).
ROUTE_LEVEL = 0.98
#: A route decides a request only when it leads the best route to another target by this much similarity (chosen on
#: CLINC150 train: the smallest margin at which 80% of the routes' decisions are right); closer than that, the
#: routes disagree and the agents' match and the objective decide.
ROUTE_MARGIN = 0.03

_background: dict[str, np.ndarray] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class NullScores:
    """The background's pooled scores against one set of vectors, sorted (float32 (N * k,))."""

    scores: np.ndarray

    def threshold(self, level: float) -> float:
        """The score background text reaches with probability 1 - ``level`` (-inf without a background)."""
        return float(np.quantile(self.scores, level)) if len(self.scores) else float("-inf")

    def tail(self, score: np.ndarray) -> np.ndarray:
        """float64, P(background score >= s) for each s: how often unrelated text scores at least that."""
        if not len(self.scores):
            return np.zeros(np.shape(score))
        above = len(self.scores) - np.searchsorted(self.scores, np.asarray(score, np.float32), side="left")
        return above / len(self.scores)


def background(embedder: object) -> np.ndarray:
    """float32 (N, D) unit rows: the shipped background requests under ``embedder``, embedded once per process."""
    identity = embedder.identity  # type: ignore[attr-defined]
    with _lock:
        cached = _background.get(identity)
        if cached is None:
            rows = json.loads(resources.files("tinydancer_duck.datasets").joinpath("background_requests.json")
                              .read_text(encoding="utf-8"))
            x = np.asarray(embedder.embed([row[0] for row in rows]), np.float32)  # type: ignore[attr-defined]
            cached = _background[identity] = np.ascontiguousarray(x[np.abs(x).max(axis=1) > 0])
    return cached


def null_scores(background_vectors: np.ndarray, score: Callable[[np.ndarray], np.ndarray]) -> NullScores:
    """The background scored by ``score`` (rows -> (rows, k) scores), pooled and sorted."""
    if not len(background_vectors):
        return NullScores(np.zeros(0, np.float32))
    scores = np.asarray(score(background_vectors), np.float32).ravel()
    return NullScores(np.sort(scores[np.isfinite(scores)]))
