"""ruvector_route UDFs: one for text requests, one for embedding requests (the SQL macro picks by type)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from tinydancer_duck.router import ROUTE_FIELDS

from ._spec import UDF, one_chunk

if TYPE_CHECKING:
    from tinydancer_duck.engine import Engine

OPTION_FIELDS = ("optimize_for", "required_capabilities", "max_cost", "max_latency_ms", "min_quality",
                 "excluded_agents", "budget_remaining")
OPTION_TYPES = ("VARCHAR", "VARCHAR[]", "DOUBLE", "DOUBLE", "DOUBLE", "VARCHAR[]", "DOUBLE")
ROUTE_TYPE = "STRUCT(" + ", ".join(
    f"{name} {sql}" for name, sql in zip(ROUTE_FIELDS, ("VARCHAR", "DOUBLE", "DOUBLE", "DOUBLE", "INTEGER", "VARCHAR"))
) + ")"


def udfs(engine: Engine) -> list[UDF]:
    def route(request, optimize_for, required_capabilities, max_cost, max_latency_ms, min_quality,
              excluded_agents, budget_remaining) -> pa.Array:
        options = (optimize_for, required_capabilities, max_cost, max_latency_ms, min_quality, excluded_agents,
                   budget_remaining)
        return engine.route_struct(one_chunk(request),
                                   **{field: one_chunk(c) for field, c in zip(OPTION_FIELDS, options)})

    return [
        UDF("_td_route_text", route, ["VARCHAR", *OPTION_TYPES], ROUTE_TYPE),
        UDF("_td_route_vector", route, ["FLOAT[]", *OPTION_TYPES], ROUTE_TYPE),
    ]
