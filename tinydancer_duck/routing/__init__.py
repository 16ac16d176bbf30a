"""The routing room: pure numpy kernels that decide agents for a batch of requests (the options as columns, costs,
the router, multi-agent plans, batch objectives, reasoning strings). No I/O: never store, duckdb, lancedb or polars.

May import: registry (the agent snapshot), ground.
"""

from ._batch import BATCH_TYPE, BatchDecisions, batch_route, check_batch_objective, per_request_objective
from ._candidates import CONSTRAINTS
from ._decisions import ROUTE_FIELDS, ROUTE_TYPE, Decisions
from ._multi import PLAN_TYPE, check_strategy, route_multi
from ._options import LEARNED, OptionColumns
from ._router import NO_SIGNALS, Requests, Signals, route, score_batch

__all__ = [
    "BATCH_TYPE",
    "CONSTRAINTS",
    "LEARNED",
    "NO_SIGNALS",
    "PLAN_TYPE",
    "ROUTE_FIELDS",
    "ROUTE_TYPE",
    "BatchDecisions",
    "Decisions",
    "OptionColumns",
    "Requests",
    "Signals",
    "batch_route",
    "check_batch_objective",
    "check_strategy",
    "per_request_objective",
    "route",
    "route_multi",
    "score_batch",
]
