"""Semantic routes: create, delete, list, add examples (text or embedding), match (text or embedding queries), and
fit thresholds from labeled rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.options import SIGNATURES
from tinydancer_duck.semantic import MATCH_TYPE

from ._bind import TABLE_OF_ROWS, Adapter, Binding, Call

if TYPE_CHECKING:
    from tinydancer_duck.engine import Engine

TITLE = ("Semantic routes (tinydancer_duck/udfs/semantic.py -> tinydancer_duck/semantic/). Queries and examples may "
         "be text or an embedding (FLOAT[N], FLOAT[], DOUBLE[]). ts may be TIMESTAMP (read as UTC), TIMESTAMPTZ or a "
         "string; it reaches the UDF as µs since the epoch, so the session TimeZone never shifts it. NULL ts means "
         "now.")
LIST_TYPE = pa.struct([("name", pa.string()), ("description", pa.string()), ("target_agent", pa.string()),
                       ("priority", pa.int32()), ("min_similarity", pa.float64()), ("conditions", pa.string()),
                       ("created_at", pa.timestamp("us", tz="UTC")), ("examples", pa.int64()),
                       ("target_registered", pa.bool_())])
FIT_TYPE = pa.struct([("route_name", pa.string()), ("min_similarity", pa.float64()), ("support", pa.int64()),
                      ("predicted", pa.int64()), ("precision", pa.float64()), ("recall", pa.float64()),
                      ("f1", pa.float64()), ("accuracy", pa.float64()), ("in_scope_accuracy", pa.float64()),
                      ("out_of_scope_recall", pa.float64()), ("out_of_scope_precision", pa.float64()),
                      ("examples", pa.int64())])
EXAMPLE_TYPE = "STRUCT(query VARCHAR, route VARCHAR)[]"
_EXAMPLES = (("examples", EXAMPLE_TYPE, ("list({'query': struct_extract(s, text_column)::VARCHAR, "
              "'route': struct_extract(s, route_column)::VARCHAR})")),)

BINDINGS = (
    Binding(SIGNATURES["ruvector_create_route"], scalar=Call("_td_create_route", "BOOLEAN", side_effects=True)),
    Binding(SIGNATURES["ruvector_delete_route"], scalar=Call("_td_delete_route", "BOOLEAN", side_effects=True)),
    Binding(SIGNATURES["ruvector_list_routes"],
            table=Call("_td_list_routes", pa.list_(LIST_TYPE), TABLE_OF_ROWS, side_effects=True)),
    Binding(SIGNATURES["ruvector_add_route_example"],
            scalar=Call("_td_add_route_example", "BOOLEAN", side_effects=True)),
    Binding(SIGNATURES["ruvector_semantic_route"], scalar=Call("_td_semantic_route", pa.list_(MATCH_TYPE)),
            table=Call("_td_semantic_route", pa.list_(MATCH_TYPE),
                       "SELECT unnest(matches, recursive := true) FROM (SELECT {call} AS matches)")),
    Binding(SIGNATURES["ruvector_fit_routes"],
            table=Call("_td_fit_routes", pa.list_(FIT_TYPE),
                       "SELECT unnest(report, recursive := true) FROM (SELECT {call} AS report FROM "
                       "query_table(source) s)", params=("out_of_scope_weight",), extra=_EXAMPLES,
                       side_effects=True)),
)


def adapters(engine: Engine) -> dict[str, Adapter]:
    routes = engine.routes

    def create_route(**columns: pa.Array) -> pa.Array:
        routes.create(columns)
        return pa.array(np.ones(len(columns["name"]), bool))

    def delete_route(name: pa.Array) -> pa.Array:
        routes.delete(name)
        return pa.array(np.ones(len(name), bool))

    def list_routes() -> pa.Table:
        return routes.table().select(LIST_TYPE.names)

    def add_example(route_name: pa.Array, example: pa.Array) -> pa.Array:
        if pa.types.is_string(example.type) or pa.types.is_null(example.type):
            return pa.array(routes.add_examples(route_name, texts=example))
        return pa.array(routes.add_examples(route_name, embeddings=example))

    def semantic_route(query: pa.Array, top_k: int, ts: pa.Array, user_tier: pa.Array) -> pa.Array:
        return engine.semantic_match(query, top_k, ts=ts, user_tier=user_tier)

    def fit_routes(out_of_scope_weight: float, examples: pa.Array) -> pa.Array:
        """The source's rows, aggregated by the macro into one list of (query, route) pairs."""
        pairs = examples[0].values if len(examples) and examples[0].is_valid else None
        if pairs is None or len(pairs) == 0:
            raise InvalidArgument("source", "no rows", "need labeled examples to fit")
        report = routes.fit(pairs.field("query"), pairs.field("route"), out_of_scope_weight=out_of_scope_weight)
        return pa.array([report.to_arrow().select(FIT_TYPE.names).to_pylist()], pa.list_(FIT_TYPE))

    return {"_td_create_route": create_route, "_td_delete_route": delete_route, "_td_list_routes": list_routes,
            "_td_add_route_example": add_example, "_td_semantic_route": semantic_route,
            "_td_fit_routes": fit_routes}
