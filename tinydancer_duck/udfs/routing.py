"""Routing: ruvector_route (a column of requests, or one request as a table row), ruvector_route_multi and
ruvector_batch_route (one list of requests per row, decided together).

The vectorized forms take the request as text or as an embedding (the macro fills the argument of the request's
type); the one-request table form has its own one-row UDF, ``_td_route_one``, which takes the request as a VARIANT
(str, list or None) and Python values for the options."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.options import SIGNATURES, RouteOptions
from tinydancer_duck.routing import BATCH_TYPE, PLAN_TYPE, ROUTE_FIELDS, ROUTE_TYPE

from ._bind import TABLE_OF_ONE_ROW, Adapter, Binding, Call

if TYPE_CHECKING:
    from tinydancer_duck.engine import Engine

TITLE = "Routing (tinydancer_duck/udfs/routing.py -> Engine.route, tinydancer_duck/_decide.py)."
BATCH_ROW = pa.struct([("request", pa.string()), *BATCH_TYPE])

BINDINGS = (
    Binding(SIGNATURES["ruvector_route"], scalar=Call("_td_route", ROUTE_TYPE),
            table=Call("_td_route_one", ROUTE_TYPE, TABLE_OF_ONE_ROW, one_row=True)),
    Binding(SIGNATURES["ruvector_route_multi"], scalar=Call("_td_route_multi", PLAN_TYPE),
            table=Call("_td_route_multi", PLAN_TYPE,
                       "SELECT unnest(plan.steps, max_depth := 2) FROM (SELECT {call} AS plan)")),
    Binding(SIGNATURES["ruvector_batch_route"],
            table=Call("_td_batch_route", pa.list_(BATCH_ROW),
                       "SELECT unnest(decided, max_depth := 2) FROM (SELECT {call} AS decided)")),
)


def adapters(engine: Engine) -> dict[str, Adapter]:
    def route(request: pa.Array, num_fallbacks: Any, explain: Any, **options: pa.Array) -> pa.Array:
        return engine.route_struct(request, RouteOptions(**options), num_fallbacks=num_fallbacks, explain=explain)

    def route_one(request: Any, num_fallbacks: Any, explain: Any, **options: Any) -> tuple:
        """One request as Python values: text, an embedding (a list) or NULL; any other value (a number, a date)
        is routed as its text, as the scalar form's VARCHAR cast does."""
        if request is not None and not isinstance(request, (str, list)):
            request = str(request)
        decision = engine.route_one(request, num_fallbacks=num_fallbacks, explain=explain, **options)
        return _as_tuples(decision)

    def route_multi(request: pa.Array, num_agents: pa.Array, strategy: pa.Array, **options: pa.Array) -> pa.Array:
        return engine.route_multi_struct(request, RouteOptions(**options), num_agents=num_agents,
                                         strategy=strategy)

    def batch_route(requests: pa.Array, optimize_for: Any, budget: Any, **options: Any) -> pa.Array:
        """Each row holds a whole batch: its list of requests is decided together."""
        decided = []
        for row in range(len(requests)):  # one iteration per batch, not per request
            texts = requests[row].values if requests[row].is_valid else pa.array([], pa.string())
            struct = engine.batch_route_struct(texts, optimize_for=optimize_for, budget=budget, **options)
            decided.append(pa.StructArray.from_arrays([texts.cast(pa.string()), *struct.flatten()],
                                                      fields=list(BATCH_ROW)))
        lengths = pa.array([0] + [len(d) for d in decided], pa.int32())
        values = pa.concat_arrays(decided) if decided else pa.array([], BATCH_ROW)
        return pa.ListArray.from_arrays(pc.cumulative_sum(lengths), values)

    return {"_td_route": route, "_td_route_one": route_one, "_td_route_multi": route_multi,
            "_td_batch_route": batch_route}


#: Position in the STRUCT -> field names of each list-of-STRUCT field (fallbacks, scores), read from ROUTE_TYPE.
_NESTED = {at: field.type.value_type.names for at, field in enumerate(ROUTE_TYPE) if pa.types.is_list(field.type)}


def _as_tuples(decision: dict[str, Any]) -> tuple:
    """A route_one decision as DuckDB's native UDF reads a STRUCT fastest: tuples in ROUTE_TYPE's field order, the
    fallbacks' and scores' too (a dict's keys are matched by name: ~0.07 ms more for an explained decision)."""
    out = [decision[field] for field in ROUTE_FIELDS]
    for at, names in _NESTED.items():
        if out[at] is not None:
            out[at] = [tuple(item[name] for name in names) for item in out[at]]
    return tuple(out)
