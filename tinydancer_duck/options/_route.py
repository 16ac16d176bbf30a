"""The routing options, declared once: every surface that routes (``ruvector_route`` and its table form,
``ruvector_route_multi``, ``ruvector_batch_route``, ``Engine.route``, ``route_batch``, Ray, Spark, ``tinydancer route``,
``route-parquet`` and the replays) takes exactly these, under these names, with these checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ._params import Choices, Declared, Flag, Interval, Param, Signature, Strings, declare, params_of

#: The per-request objectives (``learned``: the outcome router's calibrated willingness to pay).
OBJECTIVE_NAMES = ("cost", "latency", "quality", "balanced", "quality_per_dollar", "learned")


@dataclass(frozen=True)
class RouteOptions(Declared):
    """What a routing decision must respect and what it optimizes; one value for every request or (each field) a
    column with one value per request. Passed whole through every layer; ``RouteOptions.of(**values)`` refuses a
    name that is not an option.

    >>> RouteOptions(optimize_for="cost", max_cost=0.01, excluded_agents=["gpt-4"])
    """

    what: ClassVar[str] = "routing"

    optimize_for: Any = declare(
        "VARCHAR", "balanced", Choices(OBJECTIVE_NAMES), per_row=True,
        doc="cost, latency, quality, balanced, quality_per_dollar, or learned (the outcome router's calibrated "
            "willingness to pay)")
    required_capabilities: Any = declare(
        "VARCHAR[]", None, Strings(), per_row=True, flag="--require", metavar="CAPABILITY",
        doc="capabilities an agent must hold (each one)")
    max_cost: Any = declare("DOUBLE", None, Interval(0), per_row=True, metavar="DOLLARS",
                            doc="max estimated dollars per request")
    max_latency_ms: Any = declare("DOUBLE", None, Interval(0), per_row=True, metavar="MS",
                                  doc="max average latency in milliseconds")
    min_quality: Any = declare("DOUBLE", None, Interval(0, 1), per_row=True, metavar="Q",
                               doc="min quality score in [0, 1]")
    excluded_agents: Any = declare("VARCHAR[]", None, Strings(), per_row=True, flag="--exclude", metavar="AGENT",
                                   doc="agents never to choose")
    budget_remaining: Any = declare("DOUBLE", None, Interval(), per_row=True, metavar="DOLLARS",
                                    doc="dollars left to spend: a candidate's estimated cost must fit (negative: "
                                        "overspent)")
    willingness_to_pay: Any = declare(
        "DOUBLE", None, Interval(0, allow_inf=True), per_row=True, metavar="DOLLARS",
        doc="dollars per unit of expected quality: the best expected quality - cost / this wins, whatever "
            "optimize_for says")
    explore: Any = declare(
        "DOUBLE", None, Interval(0, 1), per_row=True, metavar="EPSILON",
        doc="the probability that the agent is drawn uniformly among the candidates instead (a seeded draw per "
            "request); each decision reports its propensity")
    explore_seed: Any = declare("BIGINT", 0, Interval(0, 2**63 - 1, integer=True), metavar="SEED",
                                doc="seeds the exploration draws (the same request and seed draw the same way)")


#: What a decision lists besides the choice: one value per call.
NUM_FALLBACKS = Param("num_fallbacks", "BIGINT", 2, Interval(0, 64, integer=True),
                      "the next candidates to list after the choice, by score")
EXPLAIN = Param("explain", "BOOLEAN", False, Flag(), "list every candidate's score breakdown in `scores`")

#: A whole batch's objective: any per-request objective, or total_cost (the cheapest candidate for every request).
BATCH_OBJECTIVES = ("total_cost", *OBJECTIVE_NAMES)
BATCH_OBJECTIVE = params_of(RouteOptions)[0].evolve(
    check=Choices(BATCH_OBJECTIVES),
    doc="total_cost (the cheapest candidate for every request) or any per-request objective")
BUDGET = Param("budget", "DOUBLE", None, Interval(0), "total dollars for all the requests together: the most total "
               "expected quality within it (Lagrangian; its willingness to pay is a column)", metavar="DOLLARS")
REQUEST = Param("request", "REQUEST", doc="text, or its embedding (FLOAT[N] or FLOAT[])", per_row=True)
NUM_AGENTS = Param("num_agents", "BIGINT", 3, Interval(1, 64, integer=True), "agents to plan", per_row=True)
STRATEGY = Param("strategy", "VARCHAR", "pipeline", Choices(("pipeline", "parallel", "ensemble")),
                 "pipeline (cover the needed capabilities in order), parallel or ensemble", per_row=True)

_AREA = "20_routing"
_OPTIONS = params_of(RouteOptions)
#: Options only a single decision takes: a plan or a batch decided together does not explore.
EXPLORING = ("explore", "explore_seed")
_DECIDING = tuple(p for p in _OPTIONS if p.name not in EXPLORING)
SIGNATURES = (
    Signature("ruvector_route", (REQUEST, *_OPTIONS, NUM_FALLBACKS, EXPLAIN), _AREA, twin="Engine.route",
              table_defaults=(("explain", True),),
              doc="Route requests: STRUCT(agent_name, confidence, estimated_cost, estimated_latency_ms, candidates, "
                  "reasoning, fallbacks, scores) per row over a column; SELECT * FROM ruvector_route(...) routes one "
                  "request as a table row (and explains it: explain defaults to true there)."),
    Signature("ruvector_route_multi", (REQUEST, NUM_AGENTS, STRATEGY, *_DECIDING), _AREA, twin="Engine.route_multi",
              doc="Plan several agents per request: STRUCT(strategy, steps, total_cost, total_latency_ms, "
                  "reasoning) per row; the table form gives one row per step of one request."),
    Signature("ruvector_batch_route",
              (Param("requests", "VARCHAR[]", doc="the batch's requests, decided together", per_row=True),
               BATCH_OBJECTIVE.evolve(default="total_cost", per_row=False), BUDGET,
               *(p.evolve(per_row=False) for p in _DECIDING[1:])), _AREA, twin="Engine.batch_route",
              doc="Decide a whole batch together: total_cost, any per-request objective, or budget := B (the most "
                  "total expected quality within B; the willingness to pay it implies is a column). Over a table: "
                  "SELECT * FROM ruvector_batch_route((SELECT list(request) FROM 'log.parquet'), budget := 50)."),
)
