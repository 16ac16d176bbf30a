"""Calibrated similarity: what unrelated requests reach, so a similarity counts as evidence only above it.

A cosine similarity means nothing by itself: the static table puts a request at 0.2-0.5 of unrelated requests, a
one-word capability at 0.1-0.3 of any sentence, the hashing embedder both near 0. So each embedder is measured once
per process on a shipped background of 850 generic requests from many domains (``tinydancer_duck/datasets/background_requests.json``,
``tinydancer_duck/datasets/build_background.py``), each with a group (a CLINC150 domain, Banking77, RouterBench, an out-of-scope
query), and a similarity counts only above what unrelated text reaches:

- **routes** (:meth:`Background.text_null`): a route scores a request by its best vector among k (its description
  and examples). Its null is the best similarity of a background text to k background texts of *other* groups; a
  route without a fitted ``min_similarity`` matches at or above that null's :data:`ROUTE_LEVEL` quantile for its k,
  or at or above its :data:`ROUTE_LEAD_LEVEL` quantile when it leads every other route by :data:`ROUTE_LEAD`
  spreads, and its confidence is discounted by how often the null reaches its score. It depends on the embedder and
  k alone, so adding examples to one route never moves another's threshold.
- **agents** (:class:`EvidenceCalibration`): an agent's similarity to a request is centered on what the background
  reaches against that agent (a hub phrase like 'customer support' sits high against everything) and scaled by the
  background's spread, so the probability of serving fitted on the static embedder reads the same for another one.

The route levels, lead and margin were chosen on training data only (CLINC150 train and oos_train,
``benchmarks/eval_calibration.py``), and the agents' calibration fitted on it (``build_evidence.py``), never on the
evaluation sets the README reports.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

#: A route without a fitted threshold matches a request at or above this quantile of what unrelated text reaches
#: against a route of its size; or, leading every other route by :data:`ROUTE_LEAD` spreads, at or above the
#: :data:`ROUTE_LEAD_LEVEL` quantile. Chosen together on CLINC150 train (benchmarks/eval_calibration.py): the most
#: in-scope accuracy with at least 80% of out-of-scope requests rejected, among the rules that route the seed
#: plan's 'How do I reset my password?' to customer_support.
ROUTE_LEVEL = 0.95
ROUTE_LEAD_LEVEL = 0.8
ROUTE_LEAD = 1.0
#: A route decides a request only when it leads the best route to another target by this much similarity (chosen on
#: CLINC150 train, benchmarks/eval_calibration.py: the smallest margin at which 80% of the matched routes' decisions
#: are right; at the default operating point they are without one, so 0 -- it was 0.03 under the threshold-only
#: rule); closer than that, the routes disagree and the agents' evidence and the objective decide.
ROUTE_MARGIN = 0.0
#: Draws of the route null per k (a text and k texts of other groups).
DRAWS = 20_000

_backgrounds: dict[str, Background] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class NullScores:
    """Scores unrelated text reaches, sorted (float32)."""

    scores: np.ndarray

    def threshold(self, level: float) -> float:
        """The score background text reaches with probability 1 - ``level`` (-inf without a background)."""
        return float(np.quantile(self.scores, level)) if len(self.scores) else float("-inf")

    def tail(self, score: np.ndarray) -> np.ndarray:
        """float64, P(null score >= s) for each s: how often unrelated text scores at least that."""
        if not len(self.scores):
            return np.zeros(np.shape(score))
        above = len(self.scores) - np.searchsorted(self.scores, np.asarray(score, np.float32), side="left")
        return above / len(self.scores)


@dataclass
class Background:
    """The background requests under one embedder: unit vectors, their similarities to each other (-inf within a
    group) and the route nulls drawn so far, per number of vectors k."""

    vectors: np.ndarray
    similarity: np.ndarray
    _nulls: dict[int, NullScores] = field(default_factory=dict)

    @property
    def spread(self) -> float:
        """The standard deviation of unrelated texts' similarities (pairs of different groups): the embedder's unit
        of similarity, which turns a similarity lead into a number another embedder reads the same way."""
        finite = self.similarity[np.isfinite(self.similarity)]
        return float(finite.std()) if len(finite) else 1.0

    def text_null(self, k: int) -> NullScores:
        """The best similarity of a background text to k texts of other groups, over :data:`DRAWS` seeded draws."""
        k = max(int(k), 1)
        cached = self._nulls.get(k)
        if cached is None:
            rng = np.random.default_rng(k)
            n = len(self.vectors)
            if not n:
                return NullScores(np.zeros(0, np.float32))
            rows = rng.integers(0, n, DRAWS)
            best = self.similarity[rows[:, None], rng.integers(0, n, (DRAWS, k))].max(axis=1)
            cached = self._nulls[k] = NullScores(np.sort(best[np.isfinite(best)]).astype(np.float32))
        return cached


def background(embedder: object) -> Background:
    """The shipped background requests under ``embedder``, embedded and compared once per process."""
    identity = embedder.identity  # type: ignore[attr-defined]
    with _lock:
        cached = _backgrounds.get(identity)
        if cached is None:
            rows = json.loads(resources.files("tinydancer_duck.datasets").joinpath("background_requests.json")
                              .read_text(encoding="utf-8"))
            x = np.asarray(embedder.embed([row[0] for row in rows]), np.float32)  # type: ignore[attr-defined]
            keep = np.abs(x).max(axis=1) > 0
            x, groups = np.ascontiguousarray(x[keep]), np.array([row[1] for row in rows])[keep]
            similarity = np.where(groups[:, None] == groups[None, :], -np.inf, x @ x.T).astype(np.float32)
            cached = _backgrounds[identity] = Background(x, similarity)
    return cached


@dataclass(frozen=True)
class EvidenceCalibration:
    """How an agent's similarity to a request becomes the probability that it can serve the request (DESIGN §5
    step 3), fitted by ``tinydancer_duck/datasets/build_evidence.py`` on labeled training requests only.

    The fit is a conditional logit over the registered agents and "no specialist": agent a's utility is
    ``phrase_weight * c + margin_weight * (c - c of the best other agent) + example_weight * e + example_bias +
    example_margin_weight * (e - e of the best other agent)`` (the last three only for an agent with examples),
    where c is the soft maximum (temperature ``phrase_temperature``) of the request's cosine to its capability phrases
    and description and e its best cosine to its examples, each centered on what the background requests reach
    against that agent and divided by the embedder's spread; "no specialist" has utility ``none_logit``.

    clear_level : the probability of serving an agent must reach for ``cost`` and ``latency`` to pick it (chosen
        on training requests: the level at which the most cost decisions go to the agent that owns the request).
    read_level, full_read_level : shares of a request's tokens the embedder reads as whole known words; below the
        first the request is no evidence at all (priors only), from the second on it is full evidence, linearly
        between (a word known only as pieces, 'las ##ag ##na', weakens the evidence of the whole request).
    spread : the spread of the embedder the weights were fitted with; similarities are divided by the spread of the
        embedder in use (:attr:`Background.spread`), so weights fitted on one embedder read in the same units on
        another.
    """

    phrase_temperature: float
    phrase_weight: float
    example_weight: float
    example_bias: float
    margin_weight: float
    example_margin_weight: float
    none_logit: float
    clear_level: float
    read_level: float
    full_read_level: float
    spread: float


_CALIBRATION_FILE = "evidence_calibration.json"


def evidence_calibration(identity: str = "") -> EvidenceCalibration:
    """The shipped calibration of the embedder named ``identity``, else the default embedder's (its weights act on
    similarities in units of the embedder's own spread, so they carry over)."""
    shipped = _shipped_calibrations()
    return EvidenceCalibration(**(shipped["embedders"].get(identity) or shipped["embedders"][shipped["default"]]))


_calibrations: list[dict] = []


def _shipped_calibrations() -> dict:
    """The calibration file shipped in tinydancer_duck/data, read once per process."""
    if not _calibrations:
        text = resources.files("tinydancer_duck").joinpath("data", _CALIBRATION_FILE).read_text(encoding="utf-8")
        _calibrations.append(json.loads(text))
    return _calibrations[0]
