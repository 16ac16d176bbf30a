"""Step 4 of the router: each objective's score over expected quality E[q] = p * q (DESIGN §5), normalized within
each request's candidates; higher is better, and only candidates' scores are read.

- ``cost`` (``latency``): the cheapest (fastest) candidate whose p clears the calibrated level; when none clears, the
  least cost (latency) per request served, C / p, so a weak match never buys a price many times the others';
- ``quality``: the best E[q];
- ``balanced``: p * (w_c Cmin/C + w_l Lmin/L) + w_q E[q]: price and speed count only as far as an agent can serve
  the request, so a cheap, fast agent with p = 0 scores 0, not 0.6 of the best;
- ``quality_per_dollar``: E[q] / C, over the row's best.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tinydancer_duck.settings import Settings

_TINY = 1e-12


@dataclass(frozen=True)
class Terms:
    """What an objective scores from, for the requests of one objective: float64 (n, A) cost, (A,) latency, (n, A)
    or (A,) quality q, float (n, A) p = P(serve), bool (n, A) candidates, the settings and the calibrated level p
    must clear for ``cost`` and ``latency``."""

    cost: np.ndarray
    latency: np.ndarray
    quality: np.ndarray
    p_serve: np.ndarray
    candidate: np.ndarray
    settings: Settings
    clear_level: float

    @property
    def expected(self) -> np.ndarray:
        """E[q] = p * q."""
        return self.p_serve * self.quality


Scorer = Callable[[Terms], np.ndarray]


def _ratio_to_min(values: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """min over the row's candidates / value, in (0, 1]; (n, A)."""
    best = np.where(candidate, values, np.inf).min(axis=1, keepdims=True, initial=np.inf)
    best = np.where(np.isfinite(best), best, 0.0)
    return (best + _TINY) / (values + _TINY)


def _cheapest_clearing(values: np.ndarray, terms: Terms) -> np.ndarray:
    """The candidates whose p clears the level score min/value among themselves, in (0, 1]; the others score below
    every clearing one, by value per request served (value / p, in [-1, 0)): with none clearing, the least cost
    (or latency) per request served wins, so a weak match never buys a price many times the others' on the
    strength of being the most likely of weak matches."""
    clearing = terms.candidate & (terms.p_serve >= terms.clear_level)
    per_served = np.where(terms.p_serve > 0, values / np.maximum(terms.p_serve, 1e-30), np.inf)  # never / 0
    return np.where(clearing, _ratio_to_min(values, clearing), _ratio_to_min(per_served, terms.candidate) - 1.0)


def _cost(terms: Terms) -> np.ndarray:
    return _cheapest_clearing(terms.cost, terms)


def _latency(terms: Terms) -> np.ndarray:
    return _cheapest_clearing(np.broadcast_to(terms.latency, terms.cost.shape), terms)


def _quality(terms: Terms) -> np.ndarray:
    return terms.expected


def _balanced(terms: Terms) -> np.ndarray:
    w_cost, w_latency, w_quality = terms.settings.balanced_weights
    speed = np.broadcast_to(terms.latency, terms.cost.shape)
    return (terms.p_serve * (w_cost * _ratio_to_min(terms.cost, terms.candidate)
                             + w_latency * _ratio_to_min(speed, terms.candidate)) + w_quality * terms.expected)


def _quality_per_dollar(terms: Terms) -> np.ndarray:
    value = terms.expected / (terms.cost + 1e-9)
    best = np.where(terms.candidate, value, 0.0).max(axis=1, keepdims=True, initial=0.0)
    return value / np.where(best > 0, best, 1.0)


#: objective name -> score of shape (n, A) (higher is better; only candidates' scores are read).
OBJECTIVES: dict[str, Scorer] = {
    "cost": _cost,
    "latency": _latency,
    "quality": _quality,
    "balanced": _balanced,
    "quality_per_dollar": _quality_per_dollar,
}
