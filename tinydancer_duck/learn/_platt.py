"""Platt scaling per agent: q̂ = sigmoid(α_a l + β_a) fitted on out-of-fold logits l, so every agent's probability is on
one scale (what routing compares across agents). One of the pieces of :mod:`tinydancer_duck.learn._outcome_models`.
"""

from __future__ import annotations

import numpy as np

from tinydancer_duck._numeric import sigmoid

Weights = dict[str, np.ndarray]


def platt_loss(a: np.ndarray, b: np.ndarray, logits: np.ndarray, y: np.ndarray, mask: np.ndarray,
                ridge: float) -> np.ndarray:
    z = a * logits + b
    term = np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return (mask * term).sum(axis=0) + ridge * ((a - 1) ** 2 + b**2) / 2


def fit_platt(logits: np.ndarray, y: np.ndarray, *, steps: int = 50, ridge: float = 1e-2,
               weight: np.ndarray | None = None) -> Weights:
    """Per agent (α, β) of sigmoid(α l + β) minimizing the masked (and ``weight``-ed) log loss +
    ridge·((α - 1)² + β²)/2 (so a separable or tiny agent stays near the identity): Newton's method for all agents
    at once, each step halved per agent until the loss does not rise (plain Newton overshoots from overconfident
    logits)."""
    seen = ~np.isnan(y)
    mask = np.where(seen, 1.0 if weight is None else weight, 0.0)
    l, t = np.where(seen, logits, 0.0), np.where(seen, y, 0.0)
    a, b = np.ones(y.shape[1]), np.zeros(y.shape[1])
    loss = platt_loss(a, b, l, t, mask, ridge)
    for _ in range(steps):
        p = sigmoid(a * l + b)
        r, h = mask * (p - t), mask * p * (1 - p)
        g_a, g_b = (r * l).sum(axis=0) + ridge * (a - 1), r.sum(axis=0) + ridge * b
        h_aa, h_ab, h_bb = (h * l * l).sum(axis=0) + ridge, (h * l).sum(axis=0), h.sum(axis=0) + ridge
        det = h_aa * h_bb - h_ab * h_ab
        d_a, d_b = (h_bb * g_a - h_ab * g_b) / det, (h_aa * g_b - h_ab * g_a) / det
        step = np.ones_like(a)
        for _ in range(30):
            new = platt_loss(a - step * d_a, b - step * d_b, l, t, mask, ridge)
            worse = new > loss
            if not worse.any():
                break
            step = np.where(worse, step / 2, step)
        step = np.where(new > loss, 0.0, step)  # still rising after 30 halvings: this agent stays put
        a, b, loss = a - step * d_a, b - step * d_b, np.where(step > 0, new, loss)
        if np.max(np.abs(step * d_a) + np.abs(step * d_b)) < 1e-9:
            break
    return {"platt_a": a, "platt_b": b}
