"""The replay's outcome model q̂: each agent's mean outcome per category, shrunk by empirical Bayes and cross-fitted.

From a log's cell sums (:mod:`tinydancer_duck.replay._cells`; weights 1/propensity for logged choices), for each
fold f the sums of the other folds give, per (category c, agent a), a weighted mean m_ca over n_ca effective
outcomes (Kish: (Σw)² / Σw²). Sparse cells borrow from their neighbours in two normal-normal steps, each prior's
spread τ² estimated by the method of moments (and at least :data:`TAU2_FLOOR`):

0. an additive model m_ca ≈ α_a + δ_c over the tried cells (:func:`_additive`): the agent's level over the log's
   mix of categories and each category's difficulty, neither read off only what a logging policy favoured;
1. agents: α̃_a = c_a + B_a (α_a - c_a), B_a = τ_A² / (τ_A² + σ_a² / n_a), σ_a² the agent's within-category outcome
   variance (shrunk toward the pooled one), c_a the mean of the agents' levels, or the agent's registered
   quality_score when it was not learned from this log (``prior``);
2. cells: prior_ca = α̃_a + δ_c, q̂_ca = prior_ca + B_ca (m_ca - prior_ca), B_ca = τ_C² / (τ_C² + σ_a² / n_ca).

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

#: Where a decision's quality comes from: the log observed it, the outcome model's cell (category_mean), the outcome
#: router's prediction, the agent's registered quality_score.
QUALITY_SOURCES = ("observed", "category_mean", "predicted", "quality_score")
#: The smallest spread a prior may have (sd 0.01 on the [0, 1] scale): no cell is ever shrunk all the way.
TAU2_FLOOR = 1e-4
_NOISE_PRIOR = 5.0  # effective outcomes of the agent's pooled variance a cell's own variance is shrunk toward


@dataclass(frozen=True)
class OutcomeCells:
    """q̂ per fold and cell. mean, variance (of the cell mean), noise (outcome variance within the cell) : float64
    (K, C + 1, A); tried : bool (C + 1, A), the log holds an outcome of agent a in category c (row C: anywhere);
    raw, sampling : float64 (K, C + 1, A) each cell's unshrunk mean over the other folds and its sampling variance
    (inf where the cell holds no outcome), for another prior (:func:`shrink_toward`)."""

    mean: np.ndarray
    variance: np.ndarray
    noise: np.ndarray
    tried: np.ndarray
    raw: np.ndarray
    sampling: np.ndarray

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
                      weight_square: np.ndarray, prior: np.ndarray | None = None) -> OutcomeCells:
    """Cross-fitted q̂ (module docstring) from per-fold cell sums float64 (K, C, A): Σw, Σw·r, Σw·r², Σw².

    prior : float (A,) an agent's mean known from elsewhere (its quality_score when not learned from this log; NaN:
    none): such an agent's mean is shrunk toward it instead of toward the other agents'.
    """
    w, s, s2, w2 = (total[None] - fold for total, fold in ((x.sum(axis=0), x) for x in
                                                          (weight, weighted, weighted_square, weight_square)))
    n = _ratio(w * w, w2)  # effective outcomes per cell
    raw = _ratio(s, w)
    within = np.maximum(_ratio(s2, w) - raw**2, 0.0)
    level, delta = _additive(raw, n, w.sum(axis=2, keepdims=True))
    agent, agent_var, noise_a = _agent_means(level, w, w2, within, prior)
    cell_prior = agent + delta
    sampling = _ratio(noise_a, n)
    tau_c = _moment_tau2(raw, cell_prior, sampling, n, (1, 2))
    shrink = np.where(n > 0, tau_c / (tau_c + np.where(n > 0, sampling, 1.0)), 0.0)
    mean = np.clip(cell_prior + shrink * (raw - cell_prior), 0.0, 1.0)
    variance = np.where(n > 0, shrink * sampling, tau_c) + (1 - shrink) ** 2 * agent_var
    noise = (n * within + _NOISE_PRIOR * noise_a) / (n + _NOISE_PRIOR)
    tried = weight.sum(axis=0) > 0
    level_raw = _ratio(s.sum(axis=1, keepdims=True), w.sum(axis=1, keepdims=True))
    n_level = _ratio(w.sum(axis=1, keepdims=True) ** 2, w2.sum(axis=1, keepdims=True))
    return OutcomeCells(np.concatenate([mean, agent], axis=1), np.concatenate([variance, agent_var], axis=1),
                        np.concatenate([noise, np.broadcast_to(noise_a, agent.shape)], axis=1),
                        np.concatenate([tried, tried.any(axis=0, keepdims=True)]),
                        np.concatenate([raw, level_raw], axis=1),
                        np.concatenate([np.where(n > 0, sampling, np.inf),
                                        np.where(n_level > 0, _ratio(noise_a, n_level), np.inf)], axis=1))


def shrink_toward(raw: np.ndarray, sampling: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) float64 of cell means ``raw`` with sampling variances ``sampling`` (inf: no outcome) shrunk
    toward another ``prior`` (same shape, NaN: none, the raw mean is kept), the prior's spread τ² estimated by the
    method of moments over the cells that have both: mean = prior + B (raw - prior), B = τ² / (τ² + sampling),
    variance = B · sampling + (1 - B)² τ²."""
    both = np.isfinite(sampling) & ~np.isnan(prior)
    gap = np.where(both, (raw - np.nan_to_num(prior)) ** 2 - np.where(both, sampling, 0.0), 0.0)
    precision = np.where(both, 1.0 / np.maximum(np.where(both, sampling, 1.0), 1e-12), 0.0)
    tau = max(float((precision * gap).sum() / precision.sum()) if precision.sum() else TAU2_FLOOR, TAU2_FLOOR)
    shrink = np.where(np.isfinite(sampling), tau / (tau + np.where(np.isfinite(sampling), sampling, 0.0)), 0.0)
    mean = np.where(np.isnan(prior), raw, np.nan_to_num(prior) + shrink * (raw - np.nan_to_num(prior)))
    variance = np.where(np.isfinite(sampling), shrink * np.where(np.isfinite(sampling), sampling, 0.0), 0.0) \
        + (1 - shrink) ** 2 * tau
    return np.clip(mean, 0.0, 1.0), variance


def _additive(raw: np.ndarray, n: np.ndarray, size: np.ndarray, sweeps: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """(α float64 (K, 1, A), δ float64 (K, C, 1)): raw_ca ≈ α_a + δ_c fitted to the tried cells by alternating
    weighted means, weights n_ca / (n_ca + 5) (an agent with a few outcomes in a category counts about as much as
    one with many), so a category's difficulty is not read off only the agents a logging policy favours there, nor
    an agent's level off only its favoured categories. δ averages 0 over the log's categories weighted by their
    ``size`` (K, C, 1), so α_a is the agent's mean over the log's mix of categories."""
    vote = n / (n + _NOISE_PRIOR)
    level = np.zeros((raw.shape[0], 1, raw.shape[2]))
    delta = np.zeros((*raw.shape[:2], 1))
    for _ in range(sweeps):
        level = _ratio((vote * (raw - delta)).sum(axis=1, keepdims=True), vote.sum(axis=1, keepdims=True))
        delta = _ratio((vote * (raw - level)).sum(axis=2, keepdims=True), vote.sum(axis=2, keepdims=True))
    centre = _ratio((size * delta).sum(axis=1, keepdims=True), size.sum(axis=1, keepdims=True))
    return level + centre, delta - centre


def _agent_means(level: np.ndarray, w: np.ndarray, w2: np.ndarray, within: np.ndarray, prior: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shrunk mean, its variance, within-category outcome variance) per fold and agent, float64 (K, 1, A): step 1
    of the module docstring applied to the agents' levels. An agent's within variance is shrunk toward the pooled
    one (so 20 right answers out of 20 do not claim a variance of 0)."""
    w_a = w.sum(axis=1, keepdims=True)
    pooled = _ratio((w * within).sum(axis=(1, 2), keepdims=True), w.sum(axis=(1, 2), keepdims=True))
    n_a = _ratio(w_a**2, w2.sum(axis=1, keepdims=True))
    noise_a = np.maximum((n_a * _ratio((w * within).sum(axis=1, keepdims=True), w_a) + _NOISE_PRIOR * pooled)
                         / (n_a + _NOISE_PRIOR), TAU2_FLOOR)
    tried = n_a > 0
    grand = _ratio((level * tried).sum(axis=2, keepdims=True), tried.sum(axis=2, keepdims=True))
    known = np.zeros(level.shape, bool) if prior is None else np.broadcast_to(~np.isnan(prior), level.shape)
    center = grand if prior is None else np.where(known, np.nan_to_num(prior), grand)
    sampling = _ratio(noise_a, n_a)
    tau = np.where(known, _moment_tau2(level, center, sampling, (tried & known).astype(float), (1, 2)),
                   _moment_tau2(level, center, sampling, (tried & ~known).astype(float), (1, 2)))
    shrink = np.where(tried, tau / (tau + np.where(tried, sampling, 1.0)), 0.0)
    return center + shrink * (level - center), np.where(tried, shrink * sampling, tau), noise_a
