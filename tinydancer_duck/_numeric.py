"""Numeric pieces every trainer shares: sigmoid, softmax, binary cross-entropy, Adam, validation split, seeding.

Ground module: numpy and :mod:`tinydancer_duck.errors` only, so any room (and any kernel) may import it without
pulling in Arrow, DuckDB or LanceDB. One copy of each rule means the FastGRNN trainer and the outcome router cannot
drift apart, and a seed means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from tinydancer_duck.errors import InvalidArgument

__all__ = ["Adam", "bce_with_logits", "log_softmax", "normalize_random_state", "sigmoid", "softmax",
           "validation_split"]


def sigmoid(x: ArrayLike, out: np.ndarray | None = None) -> Any:
    """1 / (1 + exp(-x)), evaluated as (1 + tanh(x / 2)) / 2: the same function, but exp never overflows.

    x : a number or a float array of any shape; out : optional float array of x's shape to write into (it may be x
    itself, then nothing is allocated). Returns a numpy float for a number, else an array of x's float dtype.
    """
    if out is None:
        if np.ndim(x) == 0:
            return 0.5 * (1.0 + np.tanh(0.5 * x))
        out = np.multiply(x, 0.5)
    else:
        np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def _floating(logits: ArrayLike) -> np.ndarray:
    arr = np.asarray(logits)
    return arr if arr.dtype.kind == "f" else arr.astype(np.float64)


def softmax(logits: ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
    """Softmax over the last axis: logits (n, C) float -> probabilities (n, C), each row summing to 1.

    The row max is subtracted first, so exp never overflows however large the logits. ``out`` (same shape, float;
    may be ``logits`` itself) is written in place instead of allocating.
    """
    logits = _floating(logits)
    top = logits.max(axis=-1, keepdims=True)
    out = np.subtract(logits, top, out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def log_softmax(logits: ArrayLike) -> np.ndarray:
    """log softmax over the last axis, (n, C) float -> (n, C) of the same dtype, computed as shifted - log-sum-exp.

    Cross-entropy needs the log directly: log(softmax) would turn tiny probabilities into -inf.
    """
    logits = _floating(logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def bce_with_logits(logits: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None, *,
                    denominator: float | None = None) -> tuple[float, np.ndarray]:
    """Binary cross-entropy of sigmoid(logits) against targets y, and its gradient with respect to the logits.

    logits, y : float arrays of one shape (y in [0, 1]); mask : optional bool array of that shape, False where the
    target is unknown (y may hold anything there, NaN included; those entries add no loss and no gradient).
    Returns (loss, dlogits): loss = sum of max(l, 0) - l y + log1p(exp(-|l|)) over the kept entries, divided by
    ``denominator`` (default: the number of kept entries, at least 1); dlogits = (sigmoid(l) - y) / denominator on
    kept entries, 0 elsewhere, in the logits' dtype. The max/log1p form never overflows for large |l|.
    """
    term = np.maximum(logits, 0.0) - logits * y + np.log1p(np.exp(-np.abs(logits)))
    grad = sigmoid(logits)
    grad -= y
    if mask is None:
        total = term.sum()
        count = term.size
    else:
        mask = np.asarray(mask, dtype=bool)
        total = term[mask].sum()
        count = int(mask.sum())
        grad = np.where(mask, grad, 0.0)
    scale = max(count, 1) if denominator is None else denominator
    grad /= scale
    return float(total / scale), grad


class Adam:
    """Adam (Kingma & Ba) with decoupled weight decay (Loshchilov & Hutter), updating named arrays in place.

    params : name -> float array (any shape, 0-d included); :meth:`step` changes these very arrays, so keep the
        dict, not copies. learning_rate > 0; weight_decay >= 0 shrinks the 2-d arrays (weight matrices) only:
        biases and scalars such as FastGRNN's zeta and nu are not pulled to 0.
    One step t = 1, 2, ...: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= lr wd p (2-d p, before the step);
    p -= lr_t m / (sqrt(v) + eps) with lr_t = lr sqrt(1 - b2^t) / (1 - b1^t) (bias correction folded into the rate).
    """

    BETA1, BETA2, EPS = 0.9, 0.999, 1e-8

    def __init__(self, params: MutableMapping[str, np.ndarray], *, learning_rate: float,
                 weight_decay: float = 0.0) -> None:
        self.params = params
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.t = 0

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """Apply one update from ``grads`` (name -> gradient of the parameter's shape, for every parameter)."""
        b1, b2, eps, lr, wd = self.BETA1, self.BETA2, self.EPS, self.learning_rate, self.weight_decay
        self.t += 1
        lr_t = lr * np.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        for k, p in self.params.items():
            g, m, v = grads[k], self.m[k], self.v[k]
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            if wd and p.ndim == 2:
                p -= (lr * wd) * p
            p -= (lr_t * m / (np.sqrt(v) + eps)).astype(p.dtype, copy=False)


def validation_split(n: int, fraction: float, rng: np.random.Generator, *, min_rows: int = 2,
                     sort: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Hold out a seeded ``fraction`` of n rows for early stopping: (train_idx, val_idx), intp index arrays.

    With fraction > 0 and n >= min_rows (>= 2), val holds round(fraction n) rows, at least 1 and at most n - 1, and
    ``rng`` is drawn from once (one permutation of n); otherwise val is empty, train is arange(n) and ``rng`` is not
    touched. Indices are sorted, so the rows keep their input order; ``sort=False`` keeps the permutation's order
    (the FastGRNN trainer's batches, and so its seeded weights, depend on it).
    """
    if min_rows < 2:
        raise InvalidArgument("min_rows", min_rows, "must be >= 2, so a split leaves a training row")
    if not (fraction > 0 and n >= min_rows):
        return np.arange(n), np.empty(0, dtype=np.intp)
    order = rng.permutation(n)
    n_val = min(n - 1, max(1, round(fraction * n)))
    train, val = order[n_val:], order[:n_val]
    return (np.sort(train), np.sort(val)) if sort else (train, val)


def normalize_random_state(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """One Generator from an int seed, a Generator (used as is, so callers can thread one stream through init,
    splits and shuffles) or None (seed 0, so results stay reproducible)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng(0)
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise InvalidArgument("random_state", random_state, "must be an integer >= 0 or a numpy Generator")
    return np.random.default_rng(int(random_state))


#: A vanishing weight that breaks exact ties between agents without reordering anything else.
_TIE = 1e-12


def value_scores(quality: np.ndarray, cost: np.ndarray, willingness_to_pay: np.ndarray | float) -> np.ndarray:
    """float64 (n, A) expected quality - cost / w for a willingness to pay w (dollars per unit of expected quality;
    broadcast over rows). w = 0 is the cheapest agent, w = inf the best expected quality; a vanishing term breaks
    ties toward the better quality (w = 0) or the cheaper agent (otherwise). The router, the cost-quality curve and
    the outcome router's calibration all score with this, so a willingness to pay picks the same agent everywhere."""
    w = np.asarray(willingness_to_pay, np.float64)
    if w.ndim == 1:
        w = w[:, None]
    finite = np.isfinite(w) & (w > 0)
    price = np.divide(1.0, w, out=np.zeros(w.shape), where=finite)
    value = quality - (price + _TIE) * cost
    return np.where(w == 0, -cost + _TIE * quality, value)


def willingness_grid(costs: np.ndarray, points: int) -> np.ndarray:
    """0, ``points - 2`` log-spaced values of willingness to pay around the typical (median positive) cost, from
    1e-3 to 1e4 times it, and inf: a quality difference of 0.1 is then worth between 1e-4 and 1e3 times the typical
    request's cost, which spans every trade-off between the cheapest and the best agent of a real fleet."""
    positive = costs[costs > 0]
    scale = float(np.median(positive)) if len(positive) else 1.0
    return np.concatenate([[0.0], scale * np.geomspace(1e-3, 1e4, max(points - 2, 1)), [np.inf]])
