"""Train a FastGRNN cell with a linear head in numpy: losses, Adam, mini-batches, early stopping.

Model: h_T = FastGRNN(x) (see :mod:`tinydancer_duck.learn._fastgrnn`), logits = h_T W_o^T + b_o, W_o: (C, H), b_o: (C,).
Losses (``LOSSES``), both means over rows:
- "multiclass": softmax cross-entropy with integer targets y in [0, C): -log softmax(logits)[y], computed as
  log-sum-exp after subtracting the row max; dlogits = (softmax - onehot) / n.
- "multilabel": sigmoid binary cross-entropy with a 0/1 target matrix (n, C), summed over labels:
  max(l, 0) - l y + log1p(exp(-|l|)); dlogits = (sigmoid(l) - y) / n.
Adam (:class:`tinydancer_duck._numeric.Adam`: beta1 0.9, beta2 0.999, eps 1e-8) with decoupled weight decay on the
weight matrices (not biases, zeta, nu).
Early stopping watches the validation loss and restores the best epoch's weights. One ``random_state`` seeds the
init, the validation split and the shuffles, so a seed gives bit-identical weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinydancer_duck._numeric import (
    Adam,
    bce_with_logits,
    log_softmax,
    normalize_random_state,
    sigmoid,
    softmax,
    validation_split,
)
from tinydancer_duck._validate import check_int
from tinydancer_duck.errors import InvalidArgument, ModelError
from tinydancer_duck.options import FastGRNNConfig

from ._fastgrnn import FastGRNNParams, _check_dims, forward, init_params
from ._fastgrnn_grad import backward, forward_cache

__all__ = ["LOSSES", "TrainResult", "loss_and_grads", "predict_logits", "predict_proba", "train"]


def softmax_xent(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient; logits (n, C) float, y (n,) int in [0, C)."""
    n = logits.shape[0]
    log_p = log_softmax(logits)
    rows = np.arange(n)
    loss = -float(np.mean(log_p[rows, y]))
    grad = np.exp(log_p)  # softmax, from the log already at hand
    grad[rows, y] -= 1.0
    return loss, grad / n


def sigmoid_bce(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean over rows of the summed sigmoid binary cross-entropy and its gradient; y (n, C) of 0/1."""
    return bce_with_logits(logits, y, denominator=logits.shape[0])


LOSSES: dict[str, Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]] = {
    "multiclass": softmax_xent,
    "multilabel": sigmoid_bce,
}


def _accuracy_multiclass(logits: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == y))


def _accuracy_multilabel(logits: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((logits > 0.0) == (y > 0.5)))  # per-label accuracy


_ACCURACY = {"multiclass": _accuracy_multiclass, "multilabel": _accuracy_multilabel}


@dataclass
class TrainResult:
    """A trained FastGRNN + linear head and how training went.

    params : the cell; head_weight : (C, H); head_bias : (C,); task : "multiclass" | "multilabel".
    history : per-epoch lists "train_loss", "val_loss", "val_accuracy" (val lists empty without a validation set;
        val_accuracy is top-1 for "multiclass", per-label for "multilabel").
    epochs_run : epochs actually run; best_epoch : 1-based epoch whose weights were kept; seconds : wall time.
    """

    params: FastGRNNParams
    head_weight: np.ndarray
    head_bias: np.ndarray
    task: str
    n_classes: int
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs_run: int = 0
    best_epoch: int = 0
    seconds: float = 0.0


def loss_and_grads(x: np.ndarray, y: np.ndarray, params: FastGRNNParams, head_weight: np.ndarray,
                   head_bias: np.ndarray, task: str) -> tuple[float, dict[str, np.ndarray]]:
    """Loss of one batch and its gradient for every cell array plus "head_weight" and "head_bias".

    x : (n, d) or (n, T, d); y : (n,) int for "multiclass", (n, C) 0/1 for "multilabel".
    """
    h, caches = forward_cache(x, params)
    logits = h @ head_weight.T + head_bias
    loss, d_logits = LOSSES[task](logits, y)
    grads, _ = backward(d_logits @ head_weight, caches, params)
    grads["head_weight"] = d_logits.T @ h
    grads["head_bias"] = d_logits.sum(axis=0)
    return loss, grads


def predict_logits(x: Any, model: TrainResult) -> np.ndarray:
    """Logits (n, C) float32 for x of shape (n, d) or (n, T, d)."""
    h = forward(x, model.params)
    logits = h @ model.head_weight.T
    logits += model.head_bias
    return logits


def predict_proba(x: Any, model: TrainResult) -> np.ndarray:
    """Probabilities (n, C): softmax over classes ("multiclass") or per-label sigmoid ("multilabel")."""
    out = predict_logits(x, model)
    return sigmoid(out, out=out) if model.task == "multilabel" else softmax(out, out=out)


def _check_x(name: str, x: Any) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu" or arr.ndim not in (2, 3) or arr.shape[0] < 1 or arr.shape[-1] < 1:
        raise InvalidArgument(name, getattr(arr, "shape", x), "expected a numeric array of shape (n, d) or (n, T, d)")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise InvalidArgument(name, "NaN/inf", "every value must be finite")
    return arr


def _check_y(name: str, y: Any, n: int, task: str, n_classes: int) -> np.ndarray:
    arr = np.asarray(y)
    if task == "multiclass":
        if arr.shape != (n,) or arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and
                                                               not np.array_equal(arr, np.round(arr))):
            raise InvalidArgument(name, arr.shape, f"expected {n} integer class labels")
        if n and (arr.min() < 0 or arr.max() >= n_classes):
            raise InvalidArgument(name, (arr.min(), arr.max()), f"labels must lie in [0, n_classes={n_classes})")
        return arr.astype(np.intp)
    if arr.shape != (n, n_classes) or not np.isin(arr, (0, 1)).all():
        raise InvalidArgument(name, arr.shape, f"expected a 0/1 matrix of shape ({n}, {n_classes})")
    return arr.astype(np.float32)


def _split(theta: Mapping[str, np.ndarray], mode: str) -> tuple[FastGRNNParams, np.ndarray, np.ndarray]:
    cell = {k: v for k, v in theta.items() if not k.startswith("head_")}
    return FastGRNNParams(mode, cell), theta["head_weight"].copy(), theta["head_bias"].copy()


def _eval(x: np.ndarray, y: np.ndarray, theta: Mapping[str, np.ndarray], mode: str, task: str,
          n_classes: int) -> tuple[float, float]:
    params, w, b = _split(theta, mode)
    logits = predict_logits(x, TrainResult(params, w, b, task, n_classes)).astype(np.float64)
    return LOSSES[task](logits, y)[0], _ACCURACY[task](logits, y)


def _check_task(task: str, n_classes: Any) -> None:
    """The task and its class count (the config's options are checked by :class:`FastGRNNConfig`)."""
    if task not in LOSSES:
        raise InvalidArgument("task", task, f"must be one of {sorted(LOSSES)}")
    check_int("n_classes", n_classes, minimum=2 if task == "multiclass" else 1)


def _epoch(x: np.ndarray, y: np.ndarray, theta: dict[str, np.ndarray], adam: Adam, rng: np.random.Generator,
           batch_size: int, mode: str, task: str, epoch: int) -> float:
    """One pass over the rows in a seeded shuffled order, one Adam step per mini-batch; the summed loss."""
    order = rng.permutation(x.shape[0])
    total = 0.0
    for s in range(0, x.shape[0], batch_size):
        idx = order[s:s + batch_size]
        params, w, b = _split(theta, mode)
        loss, grads = loss_and_grads(x[idx], y[idx], params, w, b, task)
        if not np.isfinite(loss):
            raise ModelError(f"training diverged at epoch {epoch}: loss {loss}; lower learning_rate "
                             f"(now {adam.learning_rate})")
        adam.step(grads)
        total += loss * len(idx)
    return total


def _held_out(x: np.ndarray, y: np.ndarray, x_val: Any, y_val: Any, fraction: float, rng: np.random.Generator,
              task: str, n_classes: int) -> tuple[np.ndarray, np.ndarray, Any, Any]:
    """(x_tr, y_tr, x_val, y_val): the validation rows given, else a seeded ``fraction`` of the rows (None, None
    when there are none)."""
    if (x_val is None) != (y_val is None):
        raise InvalidArgument("x_val", "one of x_val, y_val", "pass both x_val and y_val, or neither")
    if x_val is not None:
        x_val = _check_x("x_val", x_val)
        if x_val.shape[1:] != x.shape[1:]:
            raise InvalidArgument("x_val", x_val.shape, f"rows must have the shape of x's rows {x.shape[1:]}")
        return x, y, x_val, _check_y("y_val", y_val, x_val.shape[0], task, n_classes)
    # Unsorted: the epoch shuffles index into x_tr, so its row order fixes the batches and the seeded weights.
    tr, val = validation_split(len(x), fraction, rng, sort=False)
    return (x[tr], y[tr], x[val], y[val]) if len(val) else (x, y, None, None)


def train(x: Any, y: Any, config: FastGRNNConfig | None = None, *, n_classes: int, task: str = "multiclass",
          x_val: Any = None, y_val: Any = None, progress: Callable[[int, int, dict[str, float]], None] | None = None,
          **values: Any) -> TrainResult:
    """Train FastGRNN + linear head on x (n, d) or (n, T, d) float, y as described in the module docstring.

    config, values : :class:`~tinydancer_duck.options.FastGRNNConfig` (hidden_dim, mode, rank, epochs, batch_size,
        learning_rate, weight_decay, validation_fraction, patience, random_state), or its fields by name applied
        over it; ``random_state`` may also be a numpy Generator (a caller threading one stream through).
    Validation: explicit (x_val, y_val), else a seeded ``validation_fraction`` of the rows. Training stops after
    ``patience`` epochs without a lower validation loss and keeps the best epoch's weights. With no validation set
    (fraction 0, no x_val) every epoch runs and the lowest-training-loss epoch is kept. ``progress(epoch, epochs,
    metrics)`` is called after each epoch.
    Raises InvalidArgument for bad arguments, ModelError if the weights stop being finite.
    """
    started = time.perf_counter()
    seed = values.pop("random_state", None)
    config = FastGRNNConfig.of(config, **values)
    _check_task(task, n_classes)
    x = _check_x("x", x)
    n = x.shape[0]
    y = _check_y("y", y, n, task, n_classes)
    hidden_dim, mode, epochs = config.hidden_dim, config.mode, config.epochs
    _check_dims(x.shape[-1], hidden_dim, mode, config.rank)
    rng = normalize_random_state(config.random_state if seed is None else seed)
    x_tr, y_tr, x_val, y_val = _held_out(x, y, x_val, y_val, config.validation_fraction, rng, task, n_classes)

    cell = init_params(x.shape[-1], hidden_dim, mode=mode, rank=config.rank, random_state=rng)
    theta = {k: np.array(v) for k, v in cell.arrays.items()}
    theta["head_weight"] = (rng.standard_normal((n_classes, hidden_dim)) / np.sqrt(hidden_dim)).astype(np.float32)
    theta["head_bias"] = np.zeros(n_classes, dtype=np.float32)
    adam = Adam(theta, learning_rate=config.learning_rate, weight_decay=config.weight_decay)

    history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_accuracy": []}
    best = {k: p.copy() for k, p in theta.items()}
    best_loss, best_epoch, waited, epoch = np.inf, 0, 0, 0
    n_tr = x_tr.shape[0]
    for epoch in range(1, epochs + 1):
        metrics = {"train_loss": _epoch(x_tr, y_tr, theta, adam, rng, config.batch_size, mode, task, epoch) / n_tr}
        history["train_loss"].append(metrics["train_loss"])
        if x_val is not None:
            metrics["val_loss"], metrics["val_accuracy"] = _eval(x_val, y_val, theta, mode, task, n_classes)
            history["val_loss"].append(metrics["val_loss"])
            history["val_accuracy"].append(metrics["val_accuracy"])
        watched = metrics.get("val_loss", metrics["train_loss"])
        if watched < best_loss:
            best_loss, best_epoch, waited = watched, epoch, 0
            best = {k: p.copy() for k, p in theta.items()}
        else:
            waited += 1
        if progress is not None:
            progress(epoch, epochs, dict(metrics))
        if x_val is not None and waited >= config.patience:
            break

    if not all(np.isfinite(p).all() for p in best.values()):
        raise ModelError("training produced non-finite weights; lower learning_rate or check the inputs")
    params, w, b = _split(best, mode)
    return TrainResult(params, w, b, task, n_classes, history, epoch, best_epoch, time.perf_counter() - started)
