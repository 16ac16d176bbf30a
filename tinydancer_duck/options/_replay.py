"""The replay policy and the replay functions, declared once: a replay takes the routing options under their own
names (:class:`~tinydancer_duck.options.RouteOptions`), plus what only a replay has (a budget for the whole log,
choosing among observed agents only, the held-out share)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from tinydancer_duck.errors import InvalidArgument

from ._learn import HOLDOUT
from ._params import REQUIRED, Choices, Declared, Flag, Interval, Param, Signature, declare, params_of
from ._registry import COLUMNS, LOG
from ._route import BATCH_OBJECTIVE, BUDGET, EXPLORING, OBJECTIVE_NAMES, RouteOptions

#: Routing options a replay does not take: what is left of a budget is live state (a replay has ``budget``).
LIVE_ONLY = ("budget_remaining",)
#: Routing options that choose (the curve and the what-if sweep the choice themselves and take only constraints).
CHOOSING = ("optimize_for", "willingness_to_pay", *EXPLORING)


#: The off-policy estimators (kernels in tinydancer_duck/_offpolicy.py) and interval methods
#: (tinydancer_duck/replay/_intervals.py), README "Replaying a production log".
ESTIMATORS = ("dm", "ips", "snips", "dr", "blend")
INTERVALS = ("model", "influence", "bootstrap")


@dataclass(frozen=True)
class Estimate(Declared):
    """How a replay's counterfactual figures and their intervals are estimated (the same decisions either way)."""

    what: ClassVar[str] = "a replay's estimate"

    estimator: Any = declare("VARCHAR", None, Choices(ESTIMATORS), "how counterfactual quality is estimated: dm "
                             "(direct method, the default), ips, snips, dr (doubly robust), blend; all but dm need "
                             "the log's propensity column")
    confidence: Any = declare("DOUBLE", 0.95, Interval(0, 1, closed="neither"), "the intervals' confidence level "
                              "(0.95: each figure's 95% interval)", metavar="LEVEL")
    interval: Any = declare("VARCHAR", None, Choices(INTERVALS), "how the intervals are computed: model, influence "
                            "or bootstrap (seeded, over requests); default: the estimator's own")


@dataclass(frozen=True)
class Policy(Declared):
    """A policy to replay a log under: the routing options (objective and constraints, as ``ruvector_route`` takes
    them), or total_cost, or a budget for the whole log; ``observed_only`` and ``holdout`` say which decisions and
    requests count, ``estimate`` how its figures are estimated.

    >>> Policy.of(optimize_for="cost", max_cost=0.01, holdout=0.2)
    """

    what: ClassVar[str] = "a replay"

    options: RouteOptions = field(default_factory=RouteOptions)
    estimate: Estimate = field(default_factory=Estimate)
    optimize_for: Any = declare("VARCHAR", None, BATCH_OBJECTIVE.check, BATCH_OBJECTIVE.doc)
    budget: Any = declare(BUDGET.sql, None, BUDGET.check, "total dollars for the whole log (Lagrangian), held in "
                          "logged cost where the log has it", metavar="DOLLARS")
    observed_only: Any = declare("BOOLEAN", False, Flag(), "choose only among agents whose outcome the log holds "
                                 "for the request")
    holdout: Any = declare(HOLDOUT.sql, None, HOLDOUT.check, "replay only the share of requests that "
                           "train_outcome_router(holdout := f) kept out of training", metavar="FRACTION")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.options, RouteOptions):
            raise InvalidArgument("options", type(self.options).__name__, "must be a RouteOptions")
        if not isinstance(self.estimate, Estimate):
            raise InvalidArgument("estimate", type(self.estimate).__name__, "must be an Estimate")
        for name in LIVE_ONLY:
            if getattr(self.options, name) is not None:
                raise InvalidArgument(name, getattr(self.options, name), "is live state, not part of a replay "
                                      "policy (a replay's total is `budget`)")
        if self.optimize_for is None:
            object.__setattr__(self, "optimize_for", self.options.optimize_for)
        elif self.optimize_for in OBJECTIVE_NAMES and self.optimize_for != self.options.optimize_for:
            object.__setattr__(self, "options", replace(self.options, optimize_for=self.optimize_for))
        if self.budget is not None and self.options.willingness_to_pay is not None:
            raise InvalidArgument("willingness_to_pay", self.options.willingness_to_pay,
                                  "cannot be combined with budget: the budget decides the willingness to pay")

    @classmethod
    def flat_params(cls, *, choosing: bool = True) -> tuple[Param, ...]:
        """The policy's parameters as the SQL functions and the CLI take them, flat: the objective, the routing
        constraints, the budget, the rest and the estimate (``choosing``: with the objective, willingness to pay and
        budget)."""
        route = [p for p in params_of(RouteOptions) if p.name not in LIVE_ONLY + ("optimize_for",)
                 and (choosing or p.name not in CHOOSING)]
        own = {p.name: p for p in params_of(cls)}
        head = [own["optimize_for"].evolve(default="balanced")] if choosing else []
        tail = [own["budget"]] if choosing else []
        return (*head, *(p.evolve(per_row=False) for p in route), *tail, own["observed_only"], own["holdout"],
                *params_of(Estimate))

    @classmethod
    def of(cls, given: Policy | None = None, /, **values: Any) -> Policy:
        """``given`` (or the default policy) with ``values`` applied, each a routing option or a policy field."""
        route_names = {p.name for p in params_of(RouteOptions)}
        own_names = {p.name for p in params_of(cls)}
        estimate_names = {p.name for p in params_of(Estimate)}
        unknown = [name for name in values if name not in route_names | own_names | estimate_names]
        if unknown:
            options = ", ".join(sorted((route_names | own_names | estimate_names) - set(LIVE_ONLY)))
            raise InvalidArgument(unknown[0], values[unknown[0]], f"is not an option of {cls.what}; the options "
                                  f"are {options}")
        base = given if given is not None else cls()
        if not isinstance(base, cls):
            raise InvalidArgument("policy", type(base).__name__, "must be a Policy")
        routing = {k: v for k, v in values.items() if k in route_names and k != "optimize_for"}
        own = {k: v for k, v in values.items() if k in own_names}
        estimating = {k: v for k, v in values.items() if k in estimate_names}
        if estimating:
            own["estimate"] = Estimate.of(base.estimate, **estimating)
        options = RouteOptions.of(base.options, **routing) if routing else base.options
        return replace(base, options=options, **own) if (routing or own) else base


POINTS = Param("points", "BIGINT", 40, Interval(3, 1000, integer=True), "willingness-to-pay values the curve sweeps")
BUDGETS = Param("budgets", "DOUBLE[]", REQUIRED, doc="total budgets for the whole log, in dollars")
QUALITY_THRESHOLD = Param("quality_threshold", "DOUBLE", None, Interval(0, 1), "mark the budgets whose allocation "
                          "serves every request at this mean expected quality or more")
#: The report's (not a SQL function's): agents without evidence in the log are left out unless this is true.
INCLUDE_UNOBSERVED = Param("include_unobserved", "BOOLEAN", False, Flag(),
                           "compare agents without evidence in the log too (never observed, no outcome router "
                           "covering them), on their registered prior quality")
_REPLAY_DOC = (" Every figure says where it came from (observed_rows, category_mean_rows, predicted_rows, "
               "quality_score_rows; logged_cost_rows, estimated_cost_rows: each group adds up to the decisions) and "
               "carries an interval (<figure>_low, <figure>_high) from the named estimator.")
_POLICY = Policy.flat_params()
_CONSTRAINTS = Policy.flat_params(choosing=False)

SIGNATURES = (
    Signature("ruvector_simulate", (LOG, *_POLICY, COLUMNS), "60_replay", twin="simulate",
              doc="Replay a log under a policy with the engine's router: one row per request (row, request_id, "
                  "category, agent_name, propensity (1 unless the policy explores), expected_quality, quality, "
                  "quality_source, cost, cost_source, estimated_cost, latency_ms, actual_agent, actual_cost, "
                  "actual_quality, reasoning)." + _REPLAY_DOC),
    Signature("ruvector_simulate_summary", (LOG, *_POLICY, COLUMNS), "60_replay", twin="simulate",
              doc="The same replay, streamed, as one summary row: cost, expected and measured quality with their "
                  "sources, latency, agent mix, savings against the log's actual choices, budget and overrun, "
                  "warnings." + _REPLAY_DOC),
    Signature("ruvector_cost_quality_curve", (LOG, POINTS, COLUMNS, *_CONSTRAINTS), "60_replay", twin="curve",
              doc="The cost-quality curve: the router swept over willingness_to_pay (ruvector_route(willingness_to_pay "
                  ":= w) makes the same choices), the single agents (zero router) and the oracle; on_hull marks the "
                  "non-decreasing convex hull, aiq is RouterBench's AIQ of the series."),
    Signature("ruvector_budget_whatif",
              (LOG, BUDGETS, QUALITY_THRESHOLD, COLUMNS, *_CONSTRAINTS),
              "60_replay", twin="budget_whatif",
              doc="One row per total budget: estimated_spend, spend (logged where the log has it: the budget is "
                  "held there), budget_overrun, the willingness_to_pay that budget implies, expected_quality, "
                  "quality, requests, served, served_share, meets_quality_threshold, agent_mix, source counts and "
                  "warnings."),
)
