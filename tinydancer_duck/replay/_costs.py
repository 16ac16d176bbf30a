"""Counterfactual cost: what serving a logged request with another agent would have cost (DESIGN §11).

Per (request i, agent a), the first that applies (:data:`COST_SOURCES`):

- ``logged``: the log's cost when it served i with a (the logged choice, or a wide per-agent cost column);
- ``per_token_price``: the router's estimate from i's tokens and a's registered price per token
  (:mod:`tinydancer_duck.registry._costs`), for an agent priced per token that was not imported from a log;
- ``fitted_from_log``: for an agent priced per call or per second, or registered from a log (``agents import``), a
  model fitted on the log's own rows for a (it needs :data:`MIN_ROWS` priced rows):

      ĉ_i = c̃_ca · (1 + ρ_ca (t_i - t̄_ca) / t̄_ca)

  with t_i the request's tokens (ceil(bytes / bytes_per_token)), t̄_ca the mean tokens of the cell (category c,
  agent a), ρ_ca >= 0 the cell's elasticity of cost to tokens (shrunk toward the agent's, itself toward the log's
  pooled one, by :data:`PRIOR_TOKENS` units of relative token variance) and c̃_ca the cell's mean cost by empirical Bayes on
  the log scale: log c̃ = log μ + B (log c̄_ca - log μ), B = τ² / (τ² + v_ca / N_ca), where c̄_ca is the cell's
  mean, v_ca its squared coefficient of variation (shrunk toward its category's over every agent with
  :data:`PRIOR_ROWS` rows' weight: a task with long, variable answers is variable for every agent), μ_ca = exp(l_a + g_c) an agent's price level
  times a category's size fitted on every cell (so a category the log rarely sent to a is priced like the other
  agents' costs there say) and τ² the spread of the cells' log means around it;
- ``registered_price``: the router's estimate from the registered prices otherwise, and for a category the log never
  priced for an agent whose price was registered from elsewhere (another log, or by hand).

The fitted model also gives each estimate's noise (c̃² v_ca) and its cell's fit variance (c̃² (B v_ca / N + (1 - B)²
τ²)), which the cost intervals add up; a priced estimate carries none (the price is taken as right). Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COST_SOURCES = ("logged", "per_token_price", "fitted_from_log", "registered_price")
LOGGED, PER_TOKEN, FITTED, REGISTERED = range(4)
#: Priced rows an agent needs in the log before its cost is fitted from them.
MIN_ROWS = 3
#: The weight, in rows, of a category's squared coefficient of variation in each of its cells'.
PRIOR_ROWS = 5.0
#: The pooled elasticity's weight, in units of an agent's relative token variance (Σ (t - t̄)² / t̄²).
PRIOR_TOKENS = 10.0
_FLOOR = 1e-4  # the smallest squared coefficient of variation or log spread


@dataclass(frozen=True)
class CostModel:
    """mean, tokens, elasticity, noise, variance : float64 (C + 1, A) c̃_ca, t̄_ca, ρ_ca, c̃² v_a and the fit's
    variance (row C: a category the log never priced); source : int (C + 1, A) the source of an unlogged cost of
    agent a in category c (index into :data:`COST_SOURCES`)."""

    mean: np.ndarray
    tokens: np.ndarray
    elasticity: np.ndarray
    noise: np.ndarray
    variance: np.ndarray
    source: np.ndarray

    def costs(self, code: np.ndarray, tokens: np.ndarray, estimate: np.ndarray, logged: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(cost, source int8, noise, variance of the cell's fit) float64 (n, A) for rows of category ``code`` (-1:
        unknown) with ``tokens`` (n,), the router's ``estimate`` (n, A) and the ``logged`` costs (n, A, NaN: none)."""
        row = np.where(code >= 0, code, self.mean.shape[0] - 1)
        relative = (tokens[:, None] - self.tokens[row]) / np.maximum(self.tokens[row], 1.0)
        fitted = np.maximum(self.mean[row] * (1.0 + self.elasticity[row] * relative), 0.0)
        source = self.source[row].astype(np.int8)
        use_fit = source == FITTED
        cost = np.where(use_fit, fitted, estimate)
        noise = np.where(use_fit, self.noise[row], 0.0)
        variance = np.where(use_fit, self.variance[row], 0.0)
        known = ~np.isnan(logged)
        source[known] = LOGGED
        return (np.where(known, logged, cost), source, np.where(known, 0.0, noise), np.where(known, 0.0, variance))


def fit_costs(sums: dict[str, np.ndarray], per_token: np.ndarray, imported: np.ndarray,
              external: np.ndarray | None = None) -> CostModel:
    """The cost model (module docstring) from cell sums (C, A) ``rows``, ``tokens``, ``tokens_square``, ``cost``,
    ``tokens_cost``, ``cost_square`` (:data:`~tinydancer_duck.replay._cells.COST_SUMS`); per_token : bool (A,) the
    agent has a price per token (and none per second); imported : bool (A,) registered from a log; external : bool
    (A,) its registered price was not learned from this log (then a category the log never priced for it keeps that
    price rather than the multiplicative prior's guess)."""
    n, t, tt, c, tc, cc = (sums[k] for k in ("rows", "tokens", "tokens_square", "cost", "tokens_cost", "cost_square"))
    seen = n > 0
    inv = np.divide(1.0, n, out=np.zeros(n.shape), where=seen)
    mean_c, mean_t = c * inv, t * inv
    category_tokens = np.divide(t.sum(axis=1), n.sum(axis=1), out=np.zeros(len(n)), where=n.sum(axis=1) > 0)
    tokens = np.where(seen, mean_t, category_tokens[:, None])
    elasticity, agent_elasticity = _elasticity(n, t, tt, c, tc, mean_c, mean_t)
    rows = n.sum(axis=0)
    priced = seen & (mean_c > 0)
    within = np.where(priced, (cc * inv - mean_c**2) / np.where(priced, mean_c, 1.0) ** 2, 0.0)
    by_category = np.divide((n * within).sum(axis=1), n.sum(axis=1), out=np.zeros(len(n)), where=n.sum(axis=1) > 0)
    cv2 = np.maximum((n * within + PRIOR_ROWS * by_category[:, None]) / (n + PRIOR_ROWS), _FLOOR)
    prior, spread2 = _multiplicative_prior(mean_c, n)
    positive = seen & (mean_c > 0) & (prior > 0)
    gap = np.log(np.where(positive, mean_c, 1.0)) - np.log(np.where(prior > 0, prior, 1.0))
    shrink = np.where(positive, spread2 / (spread2 + cv2 * inv), 0.0)
    mean = np.where(prior > 0, prior * np.exp(shrink * gap), mean_c)
    variance = mean**2 * np.where(positive, shrink * cv2 * inv, spread2) + mean**2 * (1 - shrink) ** 2 * spread2
    cv2_agent = np.divide((n * cv2).sum(axis=0), rows, out=np.full(len(rows), _FLOOR), where=rows > 0)
    agent = np.divide(c.sum(axis=0), rows, out=np.zeros(len(rows)), where=rows > 0)
    agent_tokens = np.divide(t.sum(axis=0), rows, out=np.zeros(len(rows)), where=rows > 0)
    external = np.zeros(len(rows), bool) if external is None else external
    fitted = (rows >= MIN_ROWS) & (imported | ~per_token)
    otherwise = np.where(per_token, PER_TOKEN, REGISTERED)
    stack = (lambda cells, unseen: np.vstack([cells, unseen]))  # row C: a category the log never priced
    source = stack(np.where(fitted & (seen | ~external), FITTED, otherwise), np.where(fitted & ~external, FITTED,
                                                                                         otherwise))
    return CostModel(stack(mean, agent), stack(tokens, agent_tokens), stack(elasticity, agent_elasticity),
                     stack(mean**2 * cv2, agent**2 * cv2_agent), stack(variance, agent**2 * spread2), source)


def _elasticity(n: np.ndarray, t: np.ndarray, tt: np.ndarray, c: np.ndarray, tc: np.ndarray, mean_c: np.ndarray,
                mean_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ρ_ca float64 (C, A), ρ_a float64 (A,)), >= 0: the slope of c / c̄_ca on t / t̄_ca within a cell, shrunk
    toward the agent's over its cells, itself shrunk toward the slope pooled over every agent, each by
    :data:`PRIOR_TOKENS` units of relative token variance."""
    scale = np.where((n > 0) & (mean_t > 0) & (mean_c > 0), 1.0, 0.0)
    safe_t, safe_c = np.where(scale > 0, mean_t, 1.0), np.where(scale > 0, mean_c, 1.0)
    sxx = scale * (tt - t * mean_t) / safe_t**2  # Σ (t/t̄ - 1)² per cell
    sxy = scale * (tc - t * mean_c) / (safe_t * safe_c)  # Σ (t/t̄ - 1)(c/c̄ - 1) per cell
    pooled = max(float(sxy.sum() / sxx.sum()), 0.0) if sxx.sum() > 1e-9 else 0.0
    agent = np.maximum((sxy.sum(axis=0) + PRIOR_TOKENS * pooled) / (sxx.sum(axis=0) + PRIOR_TOKENS), 0.0)
    return np.maximum((sxy + PRIOR_TOKENS * agent) / (sxx + PRIOR_TOKENS), 0.0), agent


def _multiplicative_prior(mean: np.ndarray, n: np.ndarray, sweeps: int = 20) -> tuple[np.ndarray, float]:
    """(prior float64 (C, A), spread²) of each cell's mean cost: exp(l_a + g_c), an agent's price level times a
    category's size, fitted to the cells' log means by alternating weighted means (weights n / (n + 5), so the
    agents a logging policy favours do not set a category's size alone); spread² is the weighted mean squared log
    residual (at least a floor)."""
    seen = (n > 0) & (mean > 0)
    log_mean = np.log(np.where(seen, mean, 1.0))
    weight = np.where(seen, n / (n + 5.0), 0.0)
    level, size = np.zeros(mean.shape[1]), np.zeros(mean.shape[0])
    for _ in range(sweeps):
        level = np.divide((weight * (log_mean - size[:, None])).sum(axis=0), weight.sum(axis=0),
                          out=level, where=weight.sum(axis=0) > 0)
        size = np.divide((weight * (log_mean - level[None, :])).sum(axis=1), weight.sum(axis=1),
                         out=size, where=weight.sum(axis=1) > 0)
    fit = size[:, None] + level[None, :]
    spread2 = max(float((weight * (log_mean - fit) ** 2).sum() / max(weight.sum(), 1e-12)), _FLOOR)
    return np.where(weight.sum(axis=0) > 0, np.exp(fit), 0.0), spread2
