"""The routing room: pure numpy kernels that decide agents for a batch of requests (options, costs, the router,
multi-agent plans, batch objectives, reasoning strings). No I/O: never store, duckdb, lancedb or polars.

May import: registry (the agent snapshot), ground.
"""

from ._batch import (
    BATCH_OBJECTIVES,
    BATCH_TYPE,
    BatchDecisions,
    batch_route,
    check_batch_objective,
    per_request_objective,
)
from ._decisions import MAX_FALLBACKS, NUM_FALLBACKS, ROUTE_FIELDS, ROUTE_TYPE, Decisions
from ._multi import PLAN_TYPE, check_strategy, route_multi
from ._options import CONSTRAINT_OPTIONS, LEARNED, OBJECTIVE_NAMES, RouteOptions
from ._router import NO_SIGNALS, Requests, Signals, route, score_batch

__all__ = [
    "BATCH_OBJECTIVES",
    "BATCH_TYPE",
    "CONSTRAINT_OPTIONS",
    "LEARNED",
    "MAX_FALLBACKS",
    "NO_SIGNALS",
    "NUM_FALLBACKS",
    "OBJECTIVE_NAMES",
    "PLAN_TYPE",
    "ROUTE_FIELDS",
    "ROUTE_TYPE",
    "BatchDecisions",
    "Decisions",
    "Requests",
    "RouteOptions",
    "Signals",
    "batch_route",
    "check_batch_objective",
    "check_strategy",
    "per_request_objective",
    "route",
    "route_multi",
    "score_batch",
]
