"""Counterfactual cost: what serving a logged request with another agent would have cost (DESIGN §11).

Per (request i, agent a), the first that applies (:data:`COST_SOURCES`):

- ``logged``: the log's cost when it served i with a (the logged choice, or a wide per-agent cost column);
- ``per_token_price``: the router's estimate from i's tokens and a's registered price per token
  (:mod:`tinydancer_duck.registry._costs`), for an agent priced per token that was not imported from a log;
- ``fitted_from_log``: for an agent priced per call or per second, or registered from a log (``agents import``), a
  model fitted on the log's own rows for a: cost = c̄_ca + β_a (t_i - t̄_ca), with t_i the request's tokens
  (ceil(bytes / bytes_per_token)), β_a >= 0 the agent's within-category slope, t̄_ca the cell's mean tokens and
  c̄_ca its mean cost shrunk toward a prior with :data:`PRIOR_ROWS` rows' weight: c̄_ca = (Σc + k μ_ca) / (N_ca + k),
  μ_ca = exp(l_a + g_c) an agent's price level times a category's size, fitted on every cell (so a category the
  log rarely sent to a is priced like the other agents' costs there say, e.g. a task with long answers); needs
  :data:`MIN_ROWS` priced rows;
- ``registered_price``: the router's estimate from the registered prices otherwise.

The fitted model also gives each estimate's noise (the agent's residual variance s_a²) and the variance of its cell's
fit (s_a² / (N_ca + k) plus the prior's share of the prior's spread), which the cost intervals add up; a priced estimate carries none (the price is taken as
right). Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COST_SOURCES = ("logged", "per_token_price", "fitted_from_log", "registered_price")
LOGGED, PER_TOKEN, FITTED, REGISTERED = range(4)
#: Priced rows an agent needs in the log before its cost is fitted from them.
MIN_ROWS = 10
#: The agent-wide intercept's weight, in rows, in a category's intercept.
PRIOR_ROWS = 3.0


@dataclass(frozen=True)
class CostModel:
    """intercept, noise, variance : float64 (C + 1, A) (row C: a category the log never priced); slope : float64
    (A,); source : int (A,) the source of an agent's unlogged costs (index into :data:`COST_SOURCES`)."""

    intercept: np.ndarray
    slope: np.ndarray
    noise: np.ndarray
    variance: np.ndarray
    source: np.ndarray

    def costs(self, code: np.ndarray, tokens: np.ndarray, estimate: np.ndarray, logged: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(cost, source int8, noise, variance of the cell's fit) float64 (n, A) for rows of category ``code`` (-1:
        unknown) with ``tokens`` (n,), the router's ``estimate`` (n, A) and the ``logged`` costs (n, A, NaN: none)."""
        row = np.where(code >= 0, code, self.intercept.shape[0] - 1)
        fitted = np.maximum(self.intercept[row] + np.multiply.outer(tokens, self.slope), 0.0)
        use_fit = self.source == FITTED
        cost = np.where(use_fit, fitted, estimate)
        source = np.broadcast_to(self.source.astype(np.int8), cost.shape).copy()
        noise = np.where(use_fit, self.noise[row], 0.0)
        variance = np.where(use_fit, self.variance[row], 0.0)
        known = ~np.isnan(logged)
        source[known] = LOGGED
        return (np.where(known, logged, cost), source, np.where(known, 0.0, noise), np.where(known, 0.0, variance))


def fit_costs(sums: dict[str, np.ndarray], per_token: np.ndarray, imported: np.ndarray) -> CostModel:
    """The cost model (module docstring) from cell sums (C, A) ``rows``, ``tokens``, ``tokens_square``, ``cost``,
    ``tokens_cost``, ``cost_square`` (:data:`~tinydancer_duck.replay._cells.COST_SUMS`); per_token : bool (A,) the
    agent has a price per token (and none per second); imported : bool (A,) registered from a log."""
    n, t, tt, c, tc, cc = (sums[k] for k in ("rows", "tokens", "tokens_square", "cost", "tokens_cost", "cost_square"))
    inv = np.divide(1.0, n, out=np.zeros(n.shape), where=n > 0)
    sxx = (tt - t * t * inv).sum(axis=0)
    sxy = (tc - t * c * inv).sum(axis=0)
    slope = np.maximum(np.divide(sxy, sxx, out=np.zeros(sxx.shape), where=sxx > 1e-9), 0.0)
    rows = n.sum(axis=0)
    category_tokens = np.divide(t.sum(axis=1), n.sum(axis=1), out=np.zeros(len(n)), where=n.sum(axis=1) > 0)
    prior, spread = _multiplicative_prior(c * inv, n)
    mean = (c + PRIOR_ROWS * prior) / (n + PRIOR_ROWS)  # each cell's mean cost, shrunk toward its prior
    intercept = mean - slope * np.where(n > 0, t * inv, category_tokens[:, None])
    own = (c - slope * t) * inv  # each cell's own intercept, for its residuals
    # residual sum of squares around each cell's own line: Σ (c - α - β t)² expanded in the sums
    sse = cc - 2 * own * c - 2 * slope * tc + n * own**2 + 2 * own * slope * t + slope**2 * tt
    noise = np.divide(np.maximum(sse, 0.0).sum(axis=0), np.maximum(rows - (n > 0).sum(axis=0) - 1, 1.0))
    variance = noise / (n + PRIOR_ROWS) + (PRIOR_ROWS / (n + PRIOR_ROWS) * prior * spread) ** 2
    agent = np.divide((c - slope * t).sum(axis=0), rows, out=np.zeros(rows.shape), where=rows > 0)
    unseen = noise / np.maximum(rows, 1.0) + (agent * spread) ** 2  # a category the log never saw
    fitted = (rows >= MIN_ROWS) & (imported | ~per_token)
    source = np.where(fitted, FITTED, np.where(per_token, PER_TOKEN, REGISTERED))
    return CostModel(np.vstack([intercept, agent]), slope, np.broadcast_to(noise, (len(n) + 1, len(rows))),
                     np.vstack([variance, unseen]), source)


def _multiplicative_prior(mean: np.ndarray, n: np.ndarray, sweeps: int = 20) -> tuple[np.ndarray, float]:
    """(prior float64 (C, A), relative spread) of each cell's mean cost: exp(l_a + g_c), an agent's price level
    times a category's size, fitted to the cells' log means by n-weighted alternating least squares; the spread is
    the n-weighted standard deviation of the log means around it."""
    seen = (n > 0) & (mean > 0)
    log_mean = np.log(np.where(seen, mean, 1.0))
    weight = np.where(seen, n, 0.0)
    level, size = np.zeros(mean.shape[1]), np.zeros(mean.shape[0])
    for _ in range(sweeps):
        level = np.divide((weight * (log_mean - size[:, None])).sum(axis=0), weight.sum(axis=0),
                          out=level, where=weight.sum(axis=0) > 0)
        size = np.divide((weight * (log_mean - level[None, :])).sum(axis=1), weight.sum(axis=1),
                         out=size, where=weight.sum(axis=1) > 0)
    fit = size[:, None] + level[None, :]
    spread = float(np.sqrt((weight * (log_mean - fit) ** 2).sum() / max(weight.sum(), 1.0)))
    return np.where(weight.sum(axis=0) > 0, np.exp(fit), 0.0), spread
