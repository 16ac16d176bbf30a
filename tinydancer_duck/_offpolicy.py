"""Off-policy estimators: the mean outcome a target policy π would have had over a log that holds, per request, the
outcome of the one agent the logging policy π0 chose (DESIGN §11).

Ground module (numpy and :mod:`tinydancer_duck.errors` only): the replay's figures and the outcome router's
calibration on a production log call the same kernels, so they cannot disagree.

Notation, n requests and A agents:

- ``pi`` float (n, A): π(a | x_i), each row summing to 1 (a deterministic choice is one-hot; a row of zeros is a
  request the policy does not serve and adds 0);
- ``q_hat`` float (n, A): the outcome model q̂(x_i, a), cross-fitted (no row predicted by a model trained on it);
- ``logged`` int (n,): a_i, the agent π0 chose (-1: none); ``reward`` float (n,): r_i, its outcome;
- ``propensity`` float (n,): p_i = π0(a_i | x_i) in (0, 1] (NaN: not known, the row then carries no weight);
- w_i = π(a_i | x_i) / p_i, the importance weight (0 without a logged agent or propensity).

Estimators (each returns per-row terms t (n,) whose mean is the estimate, and whose standard deviation / sqrt(n) is
its influence-function standard error):

- direct method    DM    = 1/n Σ_i Σ_a π(a|x_i) q̂(x_i, a)
- inverse propensity IPS = 1/n Σ_i w_i r_i
- self-normalized  SNIPS = Σ_i w_i r_i / Σ_i w_i; terms SNIPS + w_i (r_i - SNIPS) / w̄ (w̄ = 1/n Σ w_i), its
  linearization (the delta method)
- doubly robust    DR    = DM + 1/n Σ_i w_i (r_i - q̂(x_i, a_i)): unbiased when either the propensities or q̂ are
  right;
- blend            DM + λ (DR - DM), λ = B̂² / (B̂² + v) with v the variance of DR - DM and B̂² = max((DR - DM)² - v, 0)
  the estimated squared bias of DM: the weight of DR's correction that minimizes the estimated mean squared error
  (MAGIC, Thomas & Brunskill 2016, over these two estimators): DM where DR's correction is noise, DR where it
  finds DM's bias (:func:`blend_weight`).

The replay's figures stream these terms' sums (:mod:`tinydancer_duck.replay._intervals`), with the effective
sample size (Σ w)² / Σ w² of the weights: how many requests the correction rests on.
"""

from __future__ import annotations

import numpy as np

from tinydancer_duck.options import ESTIMATORS  # declared once, beside the replay's other options

__all__ = ["ESTIMATORS", "blend_weight", "direct_method", "doubly_robust", "importance_weights", "ips", "one_hot",
           "snips"]


def one_hot(choice: np.ndarray, n_agents: int) -> np.ndarray:
    """float64 (n, A) π of a deterministic policy from its choices int (n,) (-1: no decision, a row of zeros)."""
    choice = np.asarray(choice)
    pi = np.zeros((len(choice), n_agents))
    served = np.flatnonzero(choice >= 0)
    pi[served, choice[served]] = 1.0
    return pi


def _logged_column(matrix: np.ndarray, logged: np.ndarray) -> np.ndarray:
    """matrix[i, a_i] float (n,), 0 where no agent was logged."""
    rows = np.arange(len(logged))
    return np.where(logged >= 0, matrix[rows, np.maximum(logged, 0)], 0.0)


def importance_weights(pi: np.ndarray, logged: np.ndarray, propensity: np.ndarray) -> np.ndarray:
    """float64 (n,) w_i = π(a_i | x_i) / p_i; 0 where no agent was logged or its propensity is unknown (NaN)."""
    p = np.asarray(propensity, np.float64)
    known = (logged >= 0) & np.isfinite(p) & (p > 0)
    share = _logged_column(pi, logged)
    return np.divide(share, p, out=np.zeros(len(p)), where=known)


def direct_method(pi: np.ndarray, q_hat: np.ndarray) -> np.ndarray:
    """float64 (n,) DM terms Σ_a π(a|x_i) q̂(x_i, a); an agent π never picks adds nothing (not even a NaN q̂)."""
    return np.where(pi > 0, pi * np.nan_to_num(q_hat), 0.0).sum(axis=1)


def ips(pi: np.ndarray, logged: np.ndarray, reward: np.ndarray, propensity: np.ndarray) -> np.ndarray:
    """float64 (n,) IPS terms w_i r_i."""
    w = importance_weights(pi, logged, propensity)
    return np.where(w > 0, w * np.nan_to_num(reward), 0.0)


def snips(pi: np.ndarray, logged: np.ndarray, reward: np.ndarray, propensity: np.ndarray) -> np.ndarray:
    """float64 (n,) SNIPS terms (module docstring): their mean is Σ w r / Σ w, NaN when every weight is 0."""
    w = importance_weights(pi, logged, propensity)
    wr = np.where(w > 0, w * np.nan_to_num(reward), 0.0)
    mean_w = w.mean() if len(w) else 0.0
    if mean_w <= 0:
        return np.full(len(w), np.nan)
    value = wr.sum() / w.sum()
    return value + (wr - w * value) / mean_w


def doubly_robust(pi: np.ndarray, q_hat: np.ndarray, logged: np.ndarray, reward: np.ndarray,
                  propensity: np.ndarray) -> np.ndarray:
    """float64 (n,) DR terms Σ_a π(a|x_i) q̂(x_i, a) + w_i (r_i - q̂(x_i, a_i))."""
    w = importance_weights(pi, logged, propensity)
    residual = np.nan_to_num(reward) - _logged_column(np.nan_to_num(q_hat), logged)
    return direct_method(pi, q_hat) + np.where(w > 0, w * residual, 0.0)


def blend_weight(dm: float, dr: float, variance: float) -> float:
    """λ in [0, 1], the share of DR's correction the blend keeps: B̂² / (B̂² + v), B̂² = max((dr - dm)² - v, 0), v the
    variance of the correction dr - dm (0 when the correction is within its own noise)."""
    bias2 = max((dr - dm) ** 2 - variance, 0.0)
    return bias2 / (bias2 + variance) if bias2 > 0 else 0.0
