"""Semantic route UDFs: create, delete, list, add examples, match (text or embedding queries) and fit."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.semantic import MATCH_TYPE

from ._spec import UDF, arrow_sql_type, one_chunk

if TYPE_CHECKING:
    from tinydancer_duck.engine import Engine

CREATE_FIELDS = ("name", "description", "target_agent", "priority", "embedding", "min_similarity", "conditions")
CREATE_TYPES = ("VARCHAR", "VARCHAR", "VARCHAR", "DOUBLE", "FLOAT[]", "DOUBLE", "VARCHAR")
LIST_TYPE = pa.struct([("name", pa.string()), ("description", pa.string()), ("target_agent", pa.string()),
                       ("priority", pa.int32()), ("min_similarity", pa.float64()), ("conditions", pa.string()),
                       ("created_at", pa.timestamp("us", tz="UTC")), ("examples", pa.int64()),
                       ("target_registered", pa.bool_())])
FIT_TYPE = pa.struct([("route_name", pa.string()), ("min_similarity", pa.float64()), ("support", pa.int64()),
                      ("predicted", pa.int64()), ("precision", pa.float64()), ("recall", pa.float64()),
                      ("f1", pa.float64()), ("accuracy", pa.float64()), ("in_scope_accuracy", pa.float64()),
                      ("out_of_scope_recall", pa.float64()), ("out_of_scope_precision", pa.float64()),
                      ("examples", pa.int64())])
EXAMPLE_TYPE = pa.struct([("query", pa.string()), ("route", pa.string())])


def udfs(engine: Engine) -> list[UDF]:
    routes = engine.routes

    def create_route(name, description, target_agent, priority, embedding, min_similarity, conditions) -> pa.Array:
        columns = (name, description, target_agent, priority, embedding, min_similarity, conditions)
        routes.create({field: one_chunk(c) for field, c in zip(CREATE_FIELDS, columns)})
        return pa.array(np.ones(len(name), bool))

    def delete_route(name: pa.ChunkedArray) -> pa.Array:
        routes.delete(one_chunk(name))
        return pa.array(np.ones(len(name), bool))

    def list_routes() -> pa.Array:
        rows = routes.table().select(LIST_TYPE.names).to_struct_array()
        return pa.array([rows.to_pylist()], pa.list_(LIST_TYPE))

    def add_example_text(route: pa.ChunkedArray, example: pa.ChunkedArray) -> pa.Array:
        return pa.array(routes.add_examples(one_chunk(route), texts=one_chunk(example)))

    def add_example_vector(route: pa.ChunkedArray, example: pa.ChunkedArray) -> pa.Array:
        return pa.array(routes.add_examples(one_chunk(route), embeddings=one_chunk(example)))

    def semantic_route(query, top_k, ts, user_tier) -> pa.Array:
        return engine.semantic_match(one_chunk(query), one_chunk(top_k), ts=one_chunk(ts),
                                     user_tier=one_chunk(user_tier))

    def fit_routes(examples: pa.ChunkedArray, out_of_scope_weight: pa.ChunkedArray) -> pa.Array:
        rows, weights = one_chunk(examples), one_chunk(out_of_scope_weight).to_pylist()
        out = []
        for value, weight in zip(rows, weights):  # one aggregated list per call (the macro groups the whole source)
            pairs = value.values if value.is_valid else None
            if pairs is None or len(pairs) == 0:
                raise InvalidArgument("source", "no rows", "need labeled examples to fit")
            report = routes.fit(pairs.field("query"), pairs.field("route"),
                                out_of_scope_weight=1.0 if weight is None else weight)
            out.append(report.to_arrow().select(FIT_TYPE.names).to_pylist())
        return pa.array(out, pa.list_(FIT_TYPE))

    match_sql = f"{arrow_sql_type(MATCH_TYPE)}[]"
    return [
        UDF("_td_create_route", create_route, CREATE_TYPES, "BOOLEAN", side_effects=True),
        UDF("_td_delete_route", delete_route, ["VARCHAR"], "BOOLEAN", side_effects=True),
        UDF("_td_list_routes", list_routes, [], f"{arrow_sql_type(LIST_TYPE)}[]", side_effects=True),
        UDF("_td_add_route_example_text", add_example_text, ["VARCHAR", "VARCHAR"], "BOOLEAN", side_effects=True),
        UDF("_td_add_route_example_vector", add_example_vector, ["VARCHAR", "FLOAT[]"], "BOOLEAN",
            side_effects=True),
        UDF("_td_semantic_route_text", semantic_route, ["VARCHAR", "BIGINT", "BIGINT", "VARCHAR"], match_sql),
        UDF("_td_semantic_route_vector", semantic_route, ["FLOAT[]", "BIGINT", "BIGINT", "VARCHAR"], match_sql),
        UDF("_td_fit_routes", fit_routes, [f"{arrow_sql_type(EXAMPLE_TYPE)}[]", "DOUBLE"], f"{arrow_sql_type(FIT_TYPE)}[]",
            side_effects=True),
    ]
