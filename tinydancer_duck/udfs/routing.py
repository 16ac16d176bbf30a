"""Routing UDFs: ruvector_route, ruvector_route_multi (text or embedding) and ruvector_batch_route (one list of
requests per row, decided together).

The vectorized UDFs take the request twice, as text and as an embedding: the SQL macro fills the one matching the
request's type and passes NULL for the other. A CASE over two UDFs instead made DuckDB call both on a constant
request (one of them on a NULL). The one-request table form of ruvector_route has its own one-row UDF,
``_td_route_one``, which takes the request as a VARIANT (str, list or None) and Python values for the options."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.routing import BATCH_TYPE, PLAN_TYPE, ROUTE_TYPE

from ._spec import UDF, arrow_sql_type, one_chunk

if TYPE_CHECKING:
    from tinydancer_duck.engine import Engine

OPTION_FIELDS = ("optimize_for", "required_capabilities", "max_cost", "max_latency_ms", "min_quality",
                 "excluded_agents", "budget_remaining", "willingness_to_pay")
OPTION_TYPES = ("VARCHAR", "VARCHAR[]", "DOUBLE", "DOUBLE", "DOUBLE", "VARCHAR[]", "DOUBLE", "DOUBLE")
BATCH_ROW = pa.struct([("request", pa.string()), *BATCH_TYPE])


def request_column(text: pa.ChunkedArray, vector: pa.ChunkedArray) -> pa.Array:
    """The request column the macro filled: the embeddings when any row holds one, else the texts."""
    vector = one_chunk(vector)
    return vector if vector.null_count < len(vector) else one_chunk(text)


def udfs(engine: Engine) -> list[UDF]:
    def route(text, vector, optimize_for, required_capabilities, max_cost, max_latency_ms, min_quality,
              excluded_agents, budget_remaining, willingness_to_pay, num_fallbacks, explain) -> pa.Array:
        options = (optimize_for, required_capabilities, max_cost, max_latency_ms, min_quality, excluded_agents,
                   budget_remaining, willingness_to_pay)
        return engine.route_struct(request_column(text, vector), num_fallbacks=one_chunk(num_fallbacks),
                                   explain=one_chunk(explain),
                                   **{field: one_chunk(c) for field, c in zip(OPTION_FIELDS, options)})

    def route_one(request, optimize_for, required_capabilities, max_cost, max_latency_ms, min_quality,
                  excluded_agents, budget_remaining, willingness_to_pay, num_fallbacks, explain) -> dict:
        """The table form's one request, as Python values: text, an embedding (a list) or NULL; any other value
        (a number, a date) is routed as its text, as the scalar form's VARCHAR cast does."""
        if request is not None and not isinstance(request, (str, list)):
            request = str(request)
        return engine.route_one(request, optimize_for=optimize_for, required_capabilities=required_capabilities,
                                max_cost=max_cost, max_latency_ms=max_latency_ms, min_quality=min_quality,
                                excluded_agents=excluded_agents, budget_remaining=budget_remaining,
                                willingness_to_pay=willingness_to_pay, num_fallbacks=num_fallbacks, explain=explain)

    def route_multi(text, vector, num_agents, strategy, optimize_for, required_capabilities, max_cost,
                    max_latency_ms, min_quality, excluded_agents, budget_remaining, willingness_to_pay) -> pa.Array:
        options = (optimize_for, required_capabilities, max_cost, max_latency_ms, min_quality, excluded_agents,
                   budget_remaining, willingness_to_pay)
        return engine.route_multi_struct(request_column(text, vector), num_agents=one_chunk(num_agents),
                                         strategy=one_chunk(strategy),
                                         **{field: one_chunk(c) for field, c in zip(OPTION_FIELDS, options)})

    def batch_route(requests, optimize_for, budget, willingness_to_pay) -> pa.Array:
        """Each row holds a whole batch: its list of requests is decided together."""
        lists, objectives, budgets = one_chunk(requests), one_chunk(optimize_for), one_chunk(budget)
        prices = one_chunk(willingness_to_pay)
        decided = []
        for row in range(len(lists)):  # one iteration per batch, not per request
            texts = lists[row].values if lists[row].is_valid else pa.array([], pa.string())
            struct = engine.batch_route_struct(texts, optimize_for=objectives[row].as_py(),
                                               budget=budgets[row].as_py(),
                                               willingness_to_pay=prices[row].as_py())
            decided.append(pa.StructArray.from_arrays([texts.cast(pa.string()), *struct.flatten()],
                                                      fields=list(BATCH_ROW)))
        lengths = pa.array([0] + [len(d) for d in decided], pa.int32())
        values = pa.concat_arrays(decided) if decided else pa.array([], BATCH_ROW)
        return pa.ListArray.from_arrays(pc.cumulative_sum(lengths), values)

    return [
        UDF("_td_route", route, ["VARCHAR", "FLOAT[]", *OPTION_TYPES, "BIGINT", "BOOLEAN"], arrow_sql_type(ROUTE_TYPE)),
        UDF("_td_route_one", route_one, ["VARIANT", *OPTION_TYPES, "BIGINT", "BOOLEAN"], arrow_sql_type(ROUTE_TYPE),
            one_row=True),
        UDF("_td_route_multi", route_multi, ["VARCHAR", "FLOAT[]", "BIGINT", "VARCHAR", *OPTION_TYPES],
            arrow_sql_type(PLAN_TYPE)),
        UDF("_td_batch_route", batch_route, ["VARCHAR[]", "VARCHAR", "DOUBLE", "DOUBLE"],
            f"{arrow_sql_type(BATCH_ROW)}[]"),
    ]
