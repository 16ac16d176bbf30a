"""What a replay knows about each (request, agent) pair of a log: the quality and cost a decision is evaluated with,
where each came from, and the variances its intervals add up.

Fitted once per replay, before the log streams (:func:`Evidence.fit`): the log's cell sums (one pass,
:mod:`tinydancer_duck.replay._cells`), the cross-fitted outcome model q̂ (:mod:`tinydancer_duck.replay._outcome_model`)
and the counterfactual cost model (:mod:`tinydancer_duck.replay._costs`). Then per batch:

- quality q̃ (first available, :data:`QUALITY_SOURCES`): ``observed`` (the log's outcome for that request and
  agent), ``category_mean`` (q̂: the agent's shrunk, cross-fitted mean in the request's category, or over the log
  when it has no category; when the active outcome router learned from other requests than this log's, the
  router's prediction corrected by the log's shrunk cell means, :meth:`Evidence._ranked`),
  ``predicted`` (the active outcome router, for an agent the log never holds an outcome of), ``quality_score``
  (the agent's registered prior);
- q̂ at the logged agent stays the model's (the doubly robust correction compares the logged outcome with it);
- cost: :data:`~tinydancer_duck.replay._costs.COST_SOURCES`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tinydancer_duck._logs import LogBatch, LogSpec, resolved_path

if TYPE_CHECKING:
    from tinydancer_duck.registry import AgentSnapshot

from ._cells import QUALITY_SUMS, CellSums, request_tokens, scan_cells
from ._costs import COST_SOURCES, CostModel, fit_costs
from ._outcome_model import QUALITY_SOURCES, OutcomeCells, fit_outcome_cells, shrink_toward

OBSERVED, CATEGORY_MEAN, PREDICTED, QUALITY_SCORE = range(4)


@dataclass(frozen=True)
class Quality:
    """One batch's quality evidence, float64 (n, A) unless noted: q̃ (``quality``) and its source (int8),
    ``q_hat`` (q̃ with the model's value at the logged agent), ``noise`` (outcome variance), ``code`` int (n,) the
    row of each request's cell (its category; C: none), ``tried`` bool: the log holds an outcome of that agent in
    that category."""

    quality: np.ndarray
    source: np.ndarray
    q_hat: np.ndarray
    noise: np.ndarray
    code: np.ndarray
    tried: np.ndarray


@dataclass(frozen=True)
class Evidence:
    """A log's fitted outcome and cost models over the snapshot's A agents (module docstring).

    quality_shared, cost_shared : float64 ((C + 1) A,) the variance of each cell's mean quality and fitted cost,
    indexed by code * A + agent (for the agents the outcome router ranks, that of the cell shrunk toward the router,
    updated with each batch). propensities : the log has a propensity column.
    """

    sums: CellSums
    outcome: OutcomeCells
    cost: CostModel
    quality_shared: np.ndarray
    cost_shared: np.ndarray
    bytes_per_token: float
    propensities: bool

    @classmethod
    def fit(cls, spec: LogSpec, agents: AgentSnapshot, bytes_per_token: float) -> Evidence:
        names = agents.name_list()
        sums = scan_cells(spec, names, bytes_per_token=bytes_per_token)
        outcome = fit_outcome_cells(*(sums.quality[k] for k in QUALITY_SUMS), prior=_prior(agents, spec))
        sources = _sources(agents)
        this = resolved_path(spec.path)
        priced = (agents.cost_per_1k_tokens > 0) | (agents.cost_per_call > 0) | (agents.cost_per_second > 0)
        cost = fit_costs(sums.cost, (agents.cost_per_1k_tokens > 0) & ~(agents.cost_per_second > 0),
                         np.array([s is not None for s in sources], bool),
                         priced & np.array([s != this for s in sources], bool))
        return cls(sums, outcome, cost, outcome.variance.mean(axis=0).ravel(), cost.variance.ravel(),
                   bytes_per_token, "propensity" in spec.fields)

    @property
    def cells(self) -> int:
        """(C + 1) A: the number of cells whose means the figures share."""
        return self.outcome.mean[0].size

    def quality(self, log: LogBatch, observed: np.ndarray, actual: np.ndarray, predicted: np.ndarray,
                expected: np.ndarray, prior: np.ndarray, *, ranked: np.ndarray | None = None) -> Quality:
        """Quality evidence for one batch: ``observed`` (n, A) NaN where unobserved, ``actual`` int (n,) the logged
        agent (-1: none), ``predicted`` bool (A,) the agents the outcome router knows, ``expected`` (n, A) its
        predictions, ``prior`` (A,) the agents' quality_score; ``ranked`` bool (A,): the agents whose q̂ follows the
        outcome router (:meth:`_ranked`)."""
        n = len(observed)
        code = self.sums.codes(log.columns.get("category"), n)
        fold = self.sums.folds[log.index].astype(np.int64)
        mean, _, noise = self.outcome.cells(fold, code)
        row = np.where(code >= 0, code, self.outcome.tried.shape[0] - 1)
        known = self.outcome.tried[-1]
        fallback = np.where(predicted, expected, prior)
        if ranked is not None and ranked.any():
            mean = np.where(ranked, self._ranked(expected, fold, row, ranked), mean)
        model = np.where(known, mean, fallback)
        noise = np.where(known, noise, fallback * (1 - fallback))
        source = np.where(known, CATEGORY_MEAN, np.where(predicted, PREDICTED, QUALITY_SCORE)) * np.ones((n, 1))
        seen = ~np.isnan(observed)
        quality = np.where(seen, observed, model)
        q_hat = quality.copy()
        rows = np.flatnonzero(actual >= 0)
        q_hat[rows, actual[rows]] = model[rows, actual[rows]]
        return Quality(quality, np.where(seen, OBSERVED, source).astype(np.int8), q_hat, noise, row,
                       self.outcome.tried[row])

    def _ranked(self, expected: np.ndarray, fold: np.ndarray, row: np.ndarray, ranked: np.ndarray) -> np.ndarray:
        """float64 (n, A) q̂ from the outcome router's predictions e (when it did not learn from these requests):
        e_i(a) + [shrunk cell mean - ē_ca], the log's cell mean (over the other folds) shrunk toward the router's
        mean prediction ē_ca over the batch's requests of that category (:func:`shrink_toward`), so the router
        sets each request's rank within its cell and, as far as the log bears it out, the cell's level."""
        cells = self.outcome.tried.shape[0]
        deviation = within_cell(expected, row, cells)
        centre = expected - deviation  # ē_ca of each row's cell
        present = np.zeros(cells, bool)
        present[row] = True
        prior = np.full(self.outcome.raw.shape, np.nan)
        first = np.zeros(cells, np.int64)
        first[row[::-1]] = np.arange(len(row))[::-1]
        prior[:, present] = centre[first[present]][None]
        level, variance = shrink_toward(self.outcome.raw, self.outcome.sampling, prior)
        shared = self.quality_shared.reshape(cells, -1)  # the intervals' cell variances follow the router's prior
        shared[present] = np.where(ranked, variance.mean(axis=0)[present], shared[present])
        return np.clip(level[fold, row] + deviation, 0.0, 1.0)

    def costs(self, log: LogBatch, code: np.ndarray, estimate: np.ndarray, logged: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cost, source int8 into COST_SOURCES, noise) float64 (n, A) for one batch; ``code`` as
        :attr:`Quality.code`, ``estimate`` the router's, ``logged`` NaN where the log has no cost."""
        tokens = request_tokens(log.request, self.bytes_per_token)
        row = np.where(code < len(self.sums.categories), code, -1)
        cost, source, noise, _ = self.cost.costs(row, tokens, estimate, logged)
        return cost, source, noise


def within_cell(expected: np.ndarray, row: np.ndarray, cells: int) -> np.ndarray:
    """float64 (n, A) e_i(a) - ē_ca: each request's expected quality (the outcome router's) minus its mean over the
    batch's requests of the same category, so a cell's mean stays the log's while the router ranks the requests
    within it (a policy that picks the requests where an agent is strongest is credited for it)."""
    count = np.bincount(row, minlength=cells).astype(np.float64)
    sums = np.stack([np.bincount(row, weights=expected[:, a], minlength=cells) for a in range(expected.shape[1])],
                    axis=1)
    mean = sums / np.maximum(count, 1.0)[:, None]
    return expected - mean[row]


def _sources(agents: AgentSnapshot) -> list[str | None]:
    """The log each agent was registered from (``agents import`` writes ``imported_from`` in its metadata), or None."""
    if "metadata" not in agents.table.column_names or not agents.size:
        return [None] * agents.size
    out: list[str | None] = []
    for meta in agents.table["metadata"].to_pylist():
        try:
            source = json.loads(meta).get("imported_from") if meta else None
        except (ValueError, AttributeError):
            source = None
        out.append(source if isinstance(source, str) else None)
    return out


def _prior(agents: AgentSnapshot, spec: LogSpec) -> np.ndarray:
    """float (A,) each agent's quality_score where it says something this log does not (registered, or imported
    from another log); NaN where it was learned from this very log or is not given."""
    if "quality_score" not in agents.table.column_names or not agents.size:
        return np.full(agents.size, np.nan)
    given = np.array([np.nan if q is None else q for q in agents.table["quality_score"].to_pylist()], np.float64)
    this = resolved_path(spec.path)
    return np.where([source == this for source in _sources(agents)], np.nan, given)


__all__ = ["COST_SOURCES", "QUALITY_SOURCES", "Evidence", "Quality"]
