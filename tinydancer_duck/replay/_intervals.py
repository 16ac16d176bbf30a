"""A replay figure's estimate and its interval: running sums over a set of decisions, finished into a value and a
``confidence`` interval (DESIGN §11).

Quality, over the n requests a policy decides (π: float (n, A), one-hot for a deterministic policy), by one of the
estimators of :mod:`tinydancer_duck._offpolicy` over a frame's evidence: q̃ (the outcome the log observed for that
request and agent, else the cross-fitted q̂), the logged agent, its outcome and propensity. DM here is the direct
method with observed outcomes (Σ_a π(a|x_i) q̃(x_i, a): exact wherever the log observed the decision, so on a log
that holds every agent's outcome); DR's correction uses q̂ at the logged agent (never its own outcome).

Intervals, for the requests replayed (the figure the log would show had it held every outcome):

- ``model`` (DM): the decisions the log did not observe contribute their outcome variance σ²(x_i, a) (within their
  cell) and the uncertainty V_c of their cell's mean, shared by every decision resting on it:
  Var = (Σ_i Σ_a π(a|x_i)² σ²_ia + Σ_c m_c² V_c) / n², m_c = Σ_i π(c) the decisions resting on cell c;
- ``influence``: Var = s² / n with s² the sample variance of the estimator's per-row terms (for SNIPS, its
  linearization);
- ``bootstrap``: percentiles of the estimate over 200 Poisson(1)-weighted resamples of the requests (seeded by
  ``random_state``), of the same per-row terms (kept per row, so a figure holds n·5 floats);
- ``blend``: always the model's variance plus the squared bias DM keeps and the variance of the correction taken,
  (1 - λ)² B̂² + λ² Var(DR - DM).

Cost (the mean per decision, logged else estimated, :mod:`tinydancer_duck.replay._costs`) always takes the
``model`` interval of its estimated decisions. Intervals are value ± z·sqrt(Var), z the normal quantile of
(1 + confidence) / 2, except the bootstrap's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from tinydancer_duck._numeric import normalize_random_state
from tinydancer_duck._offpolicy import blend_weight, direct_method, doubly_robust, importance_weights, ips

from ._costs import COST_SOURCES
from ._outcome_model import QUALITY_SOURCES

if TYPE_CHECKING:
    from ._frames import Frame

#: The per-row terms a bootstrap resamples: DM, DR and IPS terms and the weights (SNIPS is Σ wr / Σ w).
_TERMS = ("dm", "dr", "ips", "w")
_REPLICATES = 200


@dataclass
class FigureSums:
    """Running sums of one figure (module docstring) over the decisions added so far.

    cells : the number of cells whose mean's uncertainty is shared (``m_c`` above), for quality and for cost.
    keep_terms : keep the per-row terms (for a bootstrap interval).
    """

    cells: int
    keep_terms: bool = False
    n: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    quality_noise: float = 0.0
    cost_noise: float = 0.0
    positivity: float = 0.0
    kept: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sums = {key: 0.0 for key in ("dm", "dm2", "dr", "dr2", "dm_dr", "ips", "ips2", "w", "w2", "w_ips",
                                          "cost", "cost2")}
        self.quality_shared = np.zeros(self.cells)
        self.cost_shared = np.zeros(self.cells)
        self.quality_sources = np.zeros(len(QUALITY_SOURCES))  # decisions per source of their quality and cost
        self.cost_sources = np.zeros(len(COST_SOURCES))

    def add(self, frame: Frame, pi: np.ndarray) -> None:
        """Add the decisions π float (n, A) of one frame (rows of zeros: not decided, left out)."""
        decided = pi.sum(axis=1) > 0
        if not decided.all():
            frame, pi = frame.rows(decided), pi[decided]
        n, a = pi.shape
        if not n:
            return
        logged, reward, propensity = frame.actual, frame.reward, frame.propensity
        terms = {"dm": direct_method(pi, frame.quality),
                 "dr": doubly_robust(pi, frame.q_hat, logged, reward, propensity),
                 "ips": ips(pi, logged, reward, propensity), "w": importance_weights(pi, logged, propensity),
                 "cost": direct_method(pi, frame.cost)}
        for key in ("dm", "dr", "ips", "w", "cost"):
            self.sums[key] += float(terms[key].sum())
            self.sums[key + "2"] += float(np.dot(terms[key], terms[key]))
        self.sums["w_ips"] += float(np.dot(terms["w"], terms["ips"]))
        self.sums["dm_dr"] += float(np.dot(terms["dm"], terms["dr"]))
        rows, cols = np.nonzero(pi)  # the (request, agent) pairs decided, with their share
        share = pi[rows, cols]
        cells = frame.code[rows] * a + cols
        imputed = share * (frame.quality_source[rows, cols] > 0)
        self.quality_noise += float(np.dot(imputed * share, frame.q_noise[rows, cols]))
        self.quality_shared += np.bincount(cells, weights=imputed, minlength=self.cells)
        estimated = share * (frame.cost_source[rows, cols] > 0)
        self.cost_noise += float(np.dot(estimated * share, frame.cost_noise[rows, cols]))
        self.cost_shared += np.bincount(cells, weights=estimated, minlength=self.cells)
        self.positivity += float(share[~frame.tried[rows, cols]].sum())
        self.quality_sources += np.bincount(frame.quality_source[rows, cols], weights=share,
                                            minlength=len(QUALITY_SOURCES))
        self.cost_sources += np.bincount(frame.cost_source[rows, cols], weights=share, minlength=len(COST_SOURCES))
        self.n += n
        if self.keep_terms:
            self.kept.append(np.stack([terms[k] for k in (*_TERMS, "cost")]))

    def estimate(self, estimator: str) -> float | None:
        """The quality estimate (mean over the decisions) by ``estimator``; None without decisions (or, for SNIPS
        and IPS, without a weighted request)."""
        if not self.n or (estimator in ("ips", "snips") and self.sums["w"] <= 0):
            return None
        if estimator == "snips":
            return self.sums["ips"] / self.sums["w"]
        if estimator == "blend":
            dm, dr = self.sums["dm"] / self.n, self.sums["dr"] / self.n
            return dm + blend_weight(dm, dr, self._correction_variance()) * (dr - dm)
        return self.sums[estimator] / self.n

    def _correction_variance(self) -> float:
        """The variance of DR - DM's mean (of DR's correction beyond the observed outcomes)."""
        n, s = self.n, self.sums
        total, square = s["dr"] - s["dm"], s["dr2"] - 2 * s["dm_dr"] + s["dm2"]
        return max(square - total**2 / n, 0.0) / max(n - 1, 1) / n

    def effective_sample_size(self) -> float:
        """(Σ w)² / Σ w² of the importance weights (0 when no request carries one)."""
        return self.sums["w"] ** 2 / self.sums["w2"] if self.sums["w2"] > 0 else 0.0

    def cost_mean(self) -> float | None:
        return self.sums["cost"] / self.n if self.n else None

    def _influence_variance(self, estimator: str) -> float:
        n, s = self.n, self.sums
        if estimator == "snips":
            value, mean_w = s["ips"] / s["w"], s["w"] / n
            spread = (s["ips2"] - 2 * value * s["w_ips"] + value**2 * s["w2"]) / n / mean_w**2
            return spread / max(n - 1, 1)
        return max(s[estimator + "2"] - s[estimator] ** 2 / n, 0.0) / max(n - 1, 1) / n

    def quality_interval(self, estimator: str, method: str, confidence: float, shared: np.ndarray,
                         random_state: Any = 0) -> tuple[float | None, float | None]:
        """(low, high) of the quality estimate; ``shared`` : float (cells,) V_c of each cell's mean."""
        value = self.estimate(estimator)
        if value is None:
            return None, None
        model = (self.quality_noise + float(np.dot(self.quality_shared**2, shared))) / self.n**2
        if method == "bootstrap" and self.keep_terms and estimator != "blend":
            return self._bootstrap(estimator, confidence, random_state)
        if estimator == "blend":  # the model's variance, the bias DM keeps and the noise of the correction taken
            dm, dr, v = self.sums["dm"] / self.n, self.sums["dr"] / self.n, self._correction_variance()
            weight = blend_weight(dm, dr, v)
            bias2 = max((dr - dm) ** 2 - v, 0.0)
            variance = model + (1 - weight) ** 2 * bias2 + weight**2 * v
        elif method == "model":
            variance = model
        else:
            variance = self._influence_variance(estimator)
        return _normal(value, variance, confidence)

    def cost_interval(self, confidence: float, shared: np.ndarray) -> tuple[float | None, float | None]:
        """(low, high) of the mean cost per decision; ``shared`` : float (cells,) each cost cell's fit variance."""
        value = self.cost_mean()
        if value is None:
            return None, None
        variance = (self.cost_noise + float(np.dot(self.cost_shared**2, shared))) / self.n**2
        return _normal(value, variance, confidence)

    def _bootstrap(self, estimator: str, confidence: float, random_state: Any) -> tuple[float, float]:
        """Percentile interval over Poisson(1) resamples of the kept per-row terms."""
        rng = normalize_random_state(random_state)
        terms = np.concatenate(self.kept, axis=1)
        totals = np.zeros((_REPLICATES, len(terms) + 1))
        for start in range(0, terms.shape[1], 65_536):
            chunk = terms[:, start:start + 65_536]
            counts = rng.poisson(1.0, (_REPLICATES, chunk.shape[1])).astype(np.float64)
            totals += np.hstack([counts @ chunk.T, counts.sum(axis=1, keepdims=True)])
        index = {k: i for i, k in enumerate((*_TERMS, "cost"))}
        if estimator == "snips":
            values = totals[:, index["ips"]] / np.maximum(totals[:, index["w"]], 1e-300)
        else:
            values = totals[:, index[estimator]] / np.maximum(totals[:, -1], 1.0)
        tail = (1 - confidence) / 2 * 100
        low, high = np.percentile(values, [tail, 100 - tail])
        return float(low), float(high)


def _normal(value: float, variance: float, confidence: float) -> tuple[float, float]:
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    half = z * float(np.sqrt(max(variance, 0.0)))
    return value - half, value + half
