"""The outcome router's willingness to pay, calibrated on its training log only.

Cross-fitting: the log's requests are split into k folds (seeded; equal texts share a fold); each fold's expected
quality comes from a model fitted on the other folds, so every prediction is out-of-fold. The cost-quality curve of
those predictions: for each willingness to pay w of a grid, every row takes argmax q̂ - ĉ / w
(:func:`tinydancer_duck._numeric.value_scores`, the router's own scoring; ĉ the router's cost estimate), and the
point is the mean quality and the mean cost (logged where the log has it, else ĉ) of those choices. The quality is
the realized one on the rows where every agent's outcome is observed (a RouterBench-shaped log); on a production log
(one agent's outcome per request) it is estimated over every row by the replay's estimators
(:mod:`tinydancer_duck._offpolicy`, with the out-of-fold q̂ as outcome model): doubly robust when the log gives the
propensities, else the direct method with the observed outcomes. A target reads the knob off that curve:

- ``quality_share`` s: the cheapest w whose quality reaches s x the best single agent's (the agent of best mean
  quality on the same rows);
- ``cost_per_1k`` c: the w of best quality that spends at most c dollars per 1,000 requests;
- ``strongest_share`` p: the w of best quality that sends at most a share p of the requests to that best agent
  (RouteLLM's calibration by call share).

The model routing uses is fitted on every row afterwards; ``optimize_for := 'learned'`` routes with the knob of
:data:`DEFAULT_TARGET`. Nothing here reads the store.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from tinydancer_duck._numeric import value_scores, willingness_grid
from tinydancer_duck._offpolicy import direct_method, doubly_robust, one_hot
from tinydancer_duck.errors import InvalidArgument

TARGETS = ("quality_share", "cost_per_1k", "strongest_share")
#: The knob ``optimize_for := 'learned'`` uses: 95% of the best single agent's quality, as cheaply as that gets.
DEFAULT_TARGET = ("quality_share", 0.95)
GRID_POINTS = 201
#: One ruvector_calibrate row: the knob, its point on the out-of-fold curve, and what that curve rests on.
KNOB_TYPE = pa.struct([("target", pa.string()), ("value", pa.float64()), ("willingness_to_pay", pa.float64()),
                       ("cost_per_1k", pa.float64()), ("quality", pa.float64()), ("quality_share", pa.float64()),
                       ("strongest_share", pa.float64()), ("reached", pa.bool_()), ("rows", pa.int64()),
                       ("folds", pa.int64()), ("model", pa.string()), ("version", pa.int64()),
                       ("strongest", pa.string()), ("cost_estimate", pa.string())])
#: One point of ruvector_calibration_curve.
CALIBRATION_TYPE = pa.struct([("willingness_to_pay", pa.float64()), ("cost_per_1k", pa.float64()),
                              ("quality", pa.float64()), ("quality_share", pa.float64()),
                              ("strongest_share", pa.float64()), ("is_default", pa.bool_())])
#: fit(x, y, rng, weight) -> predict(x) -> float64 (n, A) expected quality: the model being cross-fitted (weight: the
#: rows' sample weights, or None).
Fitter = Callable[[np.ndarray, np.ndarray, np.random.Generator, "np.ndarray | None"], Callable[[np.ndarray], np.ndarray]]


def fold_ids(text_hashes: np.ndarray | None, n: int, folds: int, rng: np.random.Generator) -> np.ndarray:
    """int (n,) fold of each row: a seeded shuffle of the distinct texts (by hash) dealt round-robin (rows without
    texts: each row its own group), so a request asked twice is never predicted by a model that saw it."""
    if text_hashes is None:
        groups, size = np.arange(n), n
    else:
        _, groups = np.unique(text_hashes, return_inverse=True)
        size = int(groups.max()) + 1 if n else 0
    order = rng.permutation(size)
    fold_of_group = np.empty(size, np.int64)
    fold_of_group[order] = np.arange(size) % folds
    return fold_of_group[groups]


def cross_fit(fit: Fitter, x: np.ndarray, y: np.ndarray, folds: np.ndarray, rng: np.random.Generator,
              progress: Callable[[int, int], None] | None = None, weight: np.ndarray | None = None) -> np.ndarray:
    """float64 (n, A) out-of-fold predictions: fold f's rows predicted by a model fitted on the others (with their
    ``weight`` rows, when given)."""
    k = int(folds.max()) + 1
    predicted = np.full(y.shape, np.nan)
    for f in range(k):
        held = folds == f
        predict = fit(x[~held], y[~held], rng, None if weight is None else weight[~held])
        predicted[held] = predict(x[held])
        if progress is not None:
            progress(f + 1, k)
    return predicted


@dataclass(frozen=True)
class Calibration:
    """An out-of-fold cost-quality curve over a grid of willingness to pay, and what it is measured against.

    grid : float64 (P,) w from 0 (cheapest) to inf (best expected quality); cost, quality, strongest_share : the
    mean cost per request, mean realized quality and share of requests sent to the strongest agent at each w.
    """

    grid: np.ndarray
    cost: np.ndarray
    quality: np.ndarray
    strongest_share: np.ndarray
    strongest: str
    strongest_quality: float
    strongest_cost: float
    rows: int
    folds: int
    cost_estimate: str

    def knob(self, target: str, value: float) -> dict[str, Any]:
        """The willingness to pay that meets ``target`` (module docstring) and its point on the curve; when no w
        meets it, the closest (best quality, or cheapest) with ``reached`` false."""
        if target not in TARGETS:
            raise InvalidArgument("target", target, f"must be one of {', '.join(TARGETS)}")
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise InvalidArgument(target, value, "must be a finite number >= 0")
        if target == "quality_share":
            meets = self.quality >= value * self.strongest_quality - 1e-12
            pick = _cheapest(self.cost, meets) if meets.any() else int(np.argmax(self.quality))
        else:
            measure = self.cost * 1000.0 if target == "cost_per_1k" else self.strongest_share
            meets = measure <= value + 1e-12
            pick = _best(self.quality, self.cost, meets) if meets.any() else 0
        return {"target": target, "value": float(value), "willingness_to_pay": float(self.grid[pick]),
                "cost_per_1k": float(self.cost[pick] * 1000.0), "quality": float(self.quality[pick]),
                "quality_share": float(self.quality[pick] / self.strongest_quality) if self.strongest_quality else None,
                "strongest_share": float(self.strongest_share[pick]), "reached": bool(meets.any()),
                "rows": self.rows, "folds": self.folds}

    def default(self) -> dict[str, Any]:
        return self.knob(*DEFAULT_TARGET)

    def points(self) -> list[dict[str, Any]]:
        """The curve as :data:`CALIBRATION_TYPE` rows."""
        default = self.default()["willingness_to_pay"]
        share = self.quality / self.strongest_quality if self.strongest_quality else np.full(len(self.grid), np.nan)
        return [{"willingness_to_pay": float(w), "cost_per_1k": float(c * 1000.0), "quality": float(q),
                 "quality_share": float(r), "strongest_share": float(p), "is_default": bool(w == default)}
                for w, c, q, r, p in zip(self.grid, self.cost, self.quality, share, self.strongest_share)]

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (inf written as null) for the model's metrics."""
        return {"grid": [None if math.isinf(w) else float(w) for w in self.grid], "cost": self.cost.tolist(),
                "quality": self.quality.tolist(), "strongest_share": self.strongest_share.tolist(),
                "strongest": self.strongest, "strongest_quality": self.strongest_quality,
                "strongest_cost": self.strongest_cost, "rows": self.rows, "folds": self.folds,
                "cost_estimate": self.cost_estimate}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        grid = np.array([np.inf if w is None else w for w in data["grid"]], np.float64)
        return cls(grid, np.asarray(data["cost"], np.float64), np.asarray(data["quality"], np.float64),
                   np.asarray(data["strongest_share"], np.float64), data["strongest"],
                   float(data["strongest_quality"]), float(data["strongest_cost"]), int(data["rows"]),
                   int(data["folds"]), data["cost_estimate"])


def _cheapest(cost: np.ndarray, meets: np.ndarray) -> int:
    return int(np.argmin(np.where(meets, cost, np.inf)))


def _best(quality: np.ndarray, cost: np.ndarray, meets: np.ndarray) -> int:
    best = np.max(quality, where=meets, initial=-np.inf)
    return _cheapest(cost, meets & (quality >= best - 1e-12))


def calibrate(predicted: np.ndarray, outcomes: np.ndarray, logged_cost: np.ndarray, estimated: np.ndarray,
              agents: list[str], folds: int, cost_estimate: str, *,
              propensity: np.ndarray | None = None) -> Calibration | None:
    """The out-of-fold curve (module docstring) over the rows where every agent's outcome is observed, else (a
    production log) estimated over every row with an observed outcome; ``propensity`` float (n, A) of the observed
    pairs (NaN: unknown). None when no row has an observed outcome."""
    full = ~np.isnan(outcomes).any(axis=1) & ~np.isnan(predicted).any(axis=1)
    if full.any():
        value = _realized(outcomes[full])
        keep = full
    else:
        keep = (~np.isnan(outcomes)).any(axis=1) & ~np.isnan(predicted).any(axis=1)
        if not keep.any():
            return None
        value = _estimated(predicted[keep], outcomes[keep], None if propensity is None else propensity[keep])
    p, est = predicted[keep], estimated[keep]
    cost = np.where(np.isnan(logged_cost[keep]), est, logged_cost[keep])
    singles = np.array([value(np.full(len(p), a)) for a in range(p.shape[1])])
    strongest = int(np.argmax(singles - 1e-12 * cost.mean(axis=0)))
    grid = willingness_grid(est, GRID_POINTS)
    rows = np.arange(len(p))
    points = np.empty((3, len(grid)))
    for k, w in enumerate(grid):
        pick = np.argmax(value_scores(p, est, w), axis=1)
        points[:, k] = cost[rows, pick].mean(), value(pick), np.mean(pick == strongest)
    return Calibration(grid, points[0], points[1], points[2], agents[strongest], float(singles[strongest]),
                       float(cost[:, strongest].mean()), int(keep.sum()), folds, cost_estimate)


def _realized(q: np.ndarray) -> Callable[[np.ndarray], float]:
    """The mean realized quality of the choices int (n,), every outcome known."""
    rows = np.arange(len(q))
    return lambda pick: float(q[rows, pick].mean())


def _estimated(predicted: np.ndarray, outcomes: np.ndarray,
               propensity: np.ndarray | None) -> Callable[[np.ndarray], float]:
    """The estimated mean quality of the choices int (n,) on a production log: DR over the logged agent when its
    propensity is known, else DM with the observed outcomes."""
    seen = ~np.isnan(outcomes)
    q_tilde = np.where(seen, outcomes, predicted)
    rows = np.arange(len(outcomes))
    logged = np.argmax(seen, axis=1)
    p = None if propensity is None else propensity[rows, logged]
    if p is None or not np.isfinite(p).all():
        return lambda pick: float(direct_method(one_hot(pick, predicted.shape[1]), q_tilde).mean())
    q_hat = q_tilde.copy()
    q_hat[rows, logged] = predicted[rows, logged]
    reward = outcomes[rows, logged]
    return lambda pick: float(doubly_robust(one_hot(pick, predicted.shape[1]), q_hat, logged, reward, p).mean())
