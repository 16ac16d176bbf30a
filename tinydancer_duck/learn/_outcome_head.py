"""The outcome router's head kernel: a linear head or a one-hidden-layer network over request embeddings.

h = tanh(x W1 + b1) when ``hidden_dim`` H > 0, logits = h W2 + b2 (x W2 + b2 with H = 0): one output per agent,
trained with the mean over observed (request, agent) pairs of the binary cross-entropy (unobserved pairs of a long
log are masked out), Adam, decoupled weight decay on the weight matrices, full-batch epochs, early stopping on a
seeded validation split. Output biases start at logit(mean outcome per agent), so an untrained model predicts each
agent's average. One of the kinds of :mod:`tinydancer_duck.learn._outcome_models`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tinydancer_duck._numeric import Adam, bce_with_logits, normalize_random_state, validation_split
from tinydancer_duck.errors import ModelError

Progress = Callable[[int, int, dict[str, float]], None]


def head_logits(w: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    h = np.tanh(x @ w["w1"] + w["b1"]) if "w1" in w else x
    return h @ w["w2"] + w["b2"]


def fit_head(x: np.ndarray, y: np.ndarray, *, hidden_dim: int = 0, epochs: int = 300, learning_rate: float = 0.01,
        weight_decay: float = 1e-3, validation_fraction: float = 0.2, patience: int = 30,
        random_state: int | np.random.Generator | None = 0, progress: Progress | None = None
        ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Train on x float32 (n, D), y float64 (n, A) in [0, 1] with NaN where unobserved (module docstring). Takes
    many parameters because each is a head hyperparameter with the kind's default (OutcomeModelConfig passes the
    ones a caller gave).

    Returns (weights, report) with the validation rows' indices under report["validation_rows"].
    """
    rng = normalize_random_state(random_state)
    n, d = x.shape
    tr, val = validation_split(n, validation_fraction, rng, min_rows=5)
    mask = ~np.isnan(y)
    target = np.where(mask, y, 0.0).astype(np.float32)
    seen = mask[tr].sum(axis=0)
    mean = np.where(seen > 0, np.where(mask[tr], y[tr], 0.0).sum(axis=0) / np.maximum(seen, 1), 0.5)
    mean = np.clip(mean, 0.02, 0.98)
    a = y.shape[1]
    w: dict[str, np.ndarray] = {}
    width = d
    if hidden_dim:
        w["w1"] = (rng.standard_normal((d, hidden_dim)) / np.sqrt(d)).astype(np.float32)
        w["b1"] = np.zeros(hidden_dim, np.float32)
        width = hidden_dim
    w["w2"] = np.zeros((width, a), np.float32)
    w["b2"] = np.log(mean / (1 - mean)).astype(np.float32)
    adam = Adam(w, learning_rate=learning_rate, weight_decay=weight_decay)
    xs = (x * np.float32(np.sqrt(d))).astype(np.float32)  # unit rows -> unit-variance features

    def loss_of(rows: np.ndarray) -> float:
        return bce_with_logits(head_logits(w, xs[rows]), target[rows], mask[rows])[0]

    best, best_loss, best_epoch, waited, started = {k: p.copy() for k, p in w.items()}, np.inf, 0, 0, time.perf_counter()
    x_tr, t_tr, m_tr = xs[tr], target[tr], mask[tr]
    epoch = 0
    for epoch in range(1, epochs + 1):
        h = np.tanh(x_tr @ w["w1"] + w["b1"]) if hidden_dim else x_tr
        logits = h @ w["w2"] + w["b2"]
        d_logits = bce_with_logits(logits, t_tr, m_tr)[1]
        grads = {"w2": h.T @ d_logits, "b2": d_logits.sum(axis=0)}
        if hidden_dim:
            d_h = (d_logits @ w["w2"].T) * (1 - h * h)
            grads["w1"], grads["b1"] = x_tr.T @ d_h, d_h.sum(axis=0)
        adam.step(grads)
        current = loss_of(val) if len(val) else loss_of(tr)
        if not np.isfinite(current):
            raise ModelError(f"outcome training diverged at epoch {epoch} (loss {current}); lower learning_rate")
        if current < best_loss - 1e-6:
            best, best_loss, best_epoch, waited = {k: p.copy() for k, p in w.items()}, current, epoch, 0
        else:
            waited += 1
        if progress is not None:
            progress(epoch, epochs, {"val_loss": current})
        if waited >= patience:
            break
    scale = np.float32(np.sqrt(d))  # fold the input scale into the first matrix
    best["w1" if hidden_dim else "w2"] = best["w1" if hidden_dim else "w2"] * scale
    return best, {"validation_rows": val, "train_rows": tr, "epochs_run": epoch, "best_epoch": best_epoch,
                  "seconds": time.perf_counter() - started, "validation_loss": best_loss}
