"""The replay's outcome model q̂: each agent's mean outcome per category, shrunk by empirical Bayes and cross-fitted.

From a log's cell sums (:mod:`tinydancer_duck.replay._cells`; weights 1/propensity for logged choices), for each
fold f the sums of the other folds give, per (category c, agent a), a weighted mean m_ca over n_ca effective
outcomes (Kish: (Σw)² / Σw²). Sparse cells borrow from their neighbours in two normal-normal steps, each prior's
spread τ² estimated by the method of moments (and at least :data:`TAU2_FLOOR`):

1. agents: m̃_a = m̄ + B_a (m_a - m̄), B_a = τ_A² / (τ_A² + σ_a² / n_a), with m̄ the mean of the agents' means and
   σ_a² the agent's within-category outcome variance;
2. cells: prior_ca = m̃_a + δ_c (δ_c the category's precision-weighted mean deviation from the agents' means),
   q̂_ca = prior_ca + B_ca (m_ca - prior_ca), B_ca = τ_C² / (τ_C² + σ_a² / n_ca).

The posterior variance of a cell's mean, V_ca = B_ca σ_a² / n_ca + (1 - B_ca)² Var(prior_ca), and the outcome
variance within a cell (σ_ca², shrunk toward σ_a²) are what the intervals of figures resting on q̂ add up
(:mod:`tinydancer_duck.replay._intervals`). A selection of agents by noisy means (a policy picking the agent that
looked best on few requests) is what the shrinkage guards against: the posterior mean is not fooled by the pick.

Pure numpy: no I/O. Shapes: K folds, C categories, A agents; row C of every (K, C + 1, A) array is the agent-level
prior, for requests whose category the log never saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The smallest spread a prior may have (sd 0.01 on the [0, 1] scale): no cell is ever shrunk all the way.
TAU2_FLOOR = 1e-4
_NOISE_PRIOR = 5.0  # effective outcomes of the agent's pooled variance a cell's own variance is shrunk toward


@dataclass(frozen=True)
class OutcomeCells:
    """q̂ per fold and cell. mean, variance (of the cell mean), noise (outcome variance within the cell) : float64
    (K, C + 1, A); tried : bool (C + 1, A), the log holds an outcome of agent a in category c (row C: anywhere)."""

    mean: np.ndarray
    variance: np.ndarray
    noise: np.ndarray
    tried: np.ndarray

    def cells(self, fold: np.ndarray, code: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q̂, variance of the cell mean, noise) float64 (n, A) for rows of ``fold`` and category ``code`` (-1: the
        agent-level prior)."""
        row = np.where(code >= 0, code, self.mean.shape[1] - 1)
        return self.mean[fold, row], self.variance[fold, row], self.noise[fold, row]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def _moment_tau2(raw: np.ndarray, prior: np.ndarray, sampling: np.ndarray, weight: np.ndarray,
                 axis: tuple[int, ...]) -> np.ndarray:
    """Method-of-moments spread of ``raw`` around ``prior``: the weighted mean of (raw - prior)² - sampling
    variance, at least TAU2_FLOOR (weights 0 drop a value)."""
    excess = np.where(weight > 0, (raw - prior) ** 2 - sampling, 0.0)
    return np.maximum(_ratio((weight * excess).sum(axis=axis, keepdims=True),
                             weight.sum(axis=axis, keepdims=True)), TAU2_FLOOR)


def fit_outcome_cells(weight: np.ndarray, weighted: np.ndarray, weighted_square: np.ndarray,
                      weight_square: np.ndarray) -> OutcomeCells:
    """Cross-fitted q̂ (module docstring) from per-fold cell sums float64 (K, C, A): Σw, Σw·r, Σw·r², Σw²."""
    train = [total[None] - fold for total, fold in ((s.sum(axis=0), s) for s in
                                                   (weight, weighted, weighted_square, weight_square))]
    w, s, s2, w2 = train
    n = _ratio(w * w, w2)  # effective outcomes per cell
    raw = _ratio(s, w)
    within = np.maximum(_ratio(s2, w) - raw**2, 0.0)
    w_a = w.sum(axis=1, keepdims=True)
    noise_a = np.maximum(_ratio((w * within).sum(axis=1, keepdims=True), w_a), TAU2_FLOOR)
    n_a = _ratio(w_a**2, w2.sum(axis=1, keepdims=True))
    mean_a = _ratio(s.sum(axis=1, keepdims=True), w_a)
    tried_a = n_a > 0
    grand = _ratio((mean_a * tried_a).sum(axis=2, keepdims=True), tried_a.sum(axis=2, keepdims=True))
    sampling_a = _ratio(noise_a, n_a)
    tau_a = _moment_tau2(mean_a, grand, sampling_a, tried_a.astype(float), (1, 2))
    shrink_a = np.where(tried_a, tau_a / (tau_a + sampling_a + (~tried_a)), 0.0)
    agent = grand + shrink_a * (mean_a - grand)
    agent_var = np.where(tried_a, _ratio(shrink_a * noise_a, n_a), tau_a)
    delta = _ratio((n * (raw - agent) * (n > 0)).sum(axis=2, keepdims=True), n.sum(axis=2, keepdims=True))
    prior = agent + delta
    sampling = _ratio(noise_a, n)
    tau_c = _moment_tau2(raw, prior, sampling, n, (1, 2))
    shrink = np.where(n > 0, tau_c / (tau_c + np.where(n > 0, sampling, 1.0)), 0.0)
    mean = np.clip(prior + shrink * (raw - prior), 0.0, 1.0)
    variance = np.where(n > 0, shrink * sampling, tau_c) + (1 - shrink) ** 2 * agent_var
    noise = (n * within + _NOISE_PRIOR * noise_a) / (n + _NOISE_PRIOR)
    tried = weight.sum(axis=0) > 0
    return OutcomeCells(np.concatenate([mean, agent], axis=1), np.concatenate([variance, agent_var], axis=1),
                        np.concatenate([noise, np.broadcast_to(noise_a, agent.shape)], axis=1),
                        np.concatenate([tried, tried.any(axis=0, keepdims=True)]))
