"""How a replay turns its running sums into figures: the estimator, the interval and what the reader is told.

The estimator, confidence and interval method are a :class:`~tinydancer_duck.options.Estimate` (declared once,
validated before the log is read); None picks :data:`DEFAULT_ESTIMATOR` and that estimator's
:data:`DEFAULT_INTERVAL`. A figure's fields: ``<figure>`` its estimate, ``<figure>_low`` and ``<figure>_high`` its
interval; the summary also names the estimator (``quality_estimator``), whether propensities were logged
(``propensities``), the effective sample size of the importance weights and the decisions that went to an agent the
log never tried for such requests (``untried_decisions``: their quality is the outcome model's guess).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.options import Estimate

from ._evidence import Evidence
from ._intervals import FigureSums

#: The estimator when none is asked for, with or without propensities, chosen on benchmarks/eval_replay.py: over 6
#: logging policies, 2 protocols and 7 target policies its error was the lowest (mean 0.012-0.044 against DR's
#: 0.027-0.129), its intervals covered 81-100% of the cells at about half DR's width (README "Replaying a
#: production log"). The propensities still weigh its outcome model.
DEFAULT_ESTIMATOR = "dm"
#: The interval of each estimator, chosen on benchmarks/eval_replay.py (coverage, then width).
DEFAULT_INTERVAL = {"dm": "model", "dr": "influence", "ips": "influence", "snips": "influence", "blend": "model"}
_NEEDS_WEIGHTS = ("ips", "snips", "dr", "blend")


@dataclass(frozen=True)
class Evaluation:
    """A validated estimator, confidence and interval method for one replay (module docstring)."""

    estimator: str
    confidence: float
    interval: str
    propensities: str
    random_state: int = 0

    @classmethod
    def build(cls, evidence: Evidence, estimate: Estimate | None = None) -> Evaluation:
        """The evaluation ``estimate`` asks for over this log's evidence (a weighted estimator needs propensities)."""
        estimate = estimate or Estimate()
        propensities = "logged" if evidence.propensities else "none"
        estimator = DEFAULT_ESTIMATOR if estimate.estimator is None else estimate.estimator
        if estimator in _NEEDS_WEIGHTS and not evidence.propensities:
            raise InvalidArgument("estimator", estimator, "needs the logging policy's propensities: the log has no "
                                  "propensity column (map one with columns := '{\"propensity\": ...}', or use 'dm')")
        interval = DEFAULT_INTERVAL[estimator] if estimate.interval is None else estimate.interval
        return cls(estimator, estimate.confidence, interval, propensities)

    @property
    def label(self) -> str:
        """The estimator and whether the log gave propensities, e.g. 'dm (propensities logged)'."""
        return f"{self.estimator} (propensities {self.propensities})"

    def figures(self, evidence: Evidence) -> FigureSums:
        """Empty running sums for one figure of a replay with this evaluation."""
        return FigureSums(evidence.cells, keep_terms=self.interval == "bootstrap")

    def quality(self, figures: FigureSums, evidence: Evidence) -> tuple[float | None, float | None, float | None]:
        """(estimate, low, high) of the mean quality of a figure's decisions, clipped to [0, 1] (a weighted
        estimator's noise can leave it)."""
        value = figures.estimate(self.estimator)
        low, high = figures.quality_interval(self.estimator, self.interval, self.confidence,
                                             evidence.quality_shared, self.random_state)
        if value is None or low is None or high is None:
            return value, None, None
        return min(max(value, 0.0), 1.0), max(low, 0.0), min(high, 1.0)

    def cost(self, figures: FigureSums, evidence: Evidence) -> tuple[float | None, float | None, float | None]:
        """(mean cost per decision, low, high), the low end at least 0."""
        low, high = figures.cost_interval(self.confidence, evidence.cost_shared)
        return figures.cost_mean(), None if low is None else max(low, 0.0), high


def summary_figures(evaluation: Evaluation, figures: FigureSums, evidence: Evidence,
                    actual_cost: float | None) -> dict[str, Any]:
    """A simulation summary's estimates and intervals: mean_quality, mean_cost, total_cost, savings, savings_pct
    (each with _low and _high), and what they rest on."""
    quality, q_low, q_high = evaluation.quality(figures, evidence)
    mean, c_low, c_high = evaluation.cost(figures, evidence)
    n = figures.n
    total = [None if v is None else v * n for v in (mean, c_low, c_high)]
    out = {"mean_quality": quality, "mean_quality_low": q_low, "mean_quality_high": q_high,
           "mean_cost": mean, "mean_cost_low": c_low, "mean_cost_high": c_high, "total_cost": total[0] or 0.0,
           "total_cost_low": total[1], "total_cost_high": total[2], "quality_estimator": evaluation.label,
           "propensities": evaluation.propensities, "interval_method": evaluation.interval,
           "confidence": evaluation.confidence, "effective_sample_size": figures.effective_sample_size(),
           "untried_decisions": round(figures.positivity)}
    savings = [None if actual_cost is None or t is None else actual_cost - t for t in (total[0], total[2], total[1])]
    out.update(savings=savings[0], savings_low=savings[1], savings_high=savings[2])
    out.update({f"savings_pct{suffix}": None if not actual_cost or s is None else 100.0 * s / actual_cost
                for suffix, s in zip(("", "_low", "_high"), savings)})
    return out


def untried_warning(untried: int, routed: int) -> list[str]:
    """The warning a summary carries when decisions went to agents the log never tried for such requests."""
    if not untried:
        return []
    text = (f"{untried} of {routed} decisions go to an agent the log never tried for such requests (its category): "
            "their quality is the outcome model's estimate (the agent's mean elsewhere, the outcome router or its "
            "quality_score), not a measurement")
    return [text]
