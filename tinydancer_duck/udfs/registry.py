"""Registry UDFs: register, full config, list, get, remove, activate, clear, find, update metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from tinydancer_duck.registry import FOUND_TYPE, IMPORT_TYPE, config_columns

from ._spec import UDF, arrow_sql_type, one_chunk

if TYPE_CHECKING:
    from tinydancer_duck.engine import Engine

REGISTER_FIELDS = ("name", "agent_type", "capabilities", "cost_per_1k_tokens", "cost_per_call", "cost_per_second",
                   "avg_latency_ms", "quality_score", "metadata", "description", "examples", "context_window",
                   "max_output_tokens", "scope")
REGISTER_TYPES = ("VARCHAR", "VARCHAR", "VARCHAR[]", "DOUBLE", "DOUBLE", "DOUBLE", "DOUBLE", "DOUBLE", "VARCHAR",
                  "VARCHAR", "VARCHAR[]", "BIGINT", "BIGINT", "VARCHAR")


def _true(n: int) -> pa.Array:
    return pa.array([True] * n, pa.bool_())


def udfs(engine: Engine) -> list[UDF]:
    """The area's UDFs bound to ``engine``. Long because it declares one small adapter per SQL function of the
    area, side by side with its registration."""

    registry = engine.registry

    def agent_struct_type() -> pa.DataType:
        return pa.struct(list(registry.table().schema))

    def register_agent(name, agent_type, capabilities, cost_per_1k_tokens, cost_per_call, cost_per_second,
                       avg_latency_ms, quality_score, metadata, description, examples, context_window,
                       max_output_tokens, scope) -> pa.Array:
        columns = (name, agent_type, capabilities, cost_per_1k_tokens, cost_per_call, cost_per_second,
                   avg_latency_ms, quality_score, metadata, description, examples, context_window, max_output_tokens,
                   scope)
        registry.register({field: one_chunk(c) for field, c in zip(REGISTER_FIELDS, columns)})
        return _true(len(name))

    def register_agent_full(config: pa.ChunkedArray) -> pa.Array:
        registry.register(config_columns(one_chunk(config).to_pylist()))
        return _true(len(config))

    def list_agents() -> pa.Array:
        rows = registry.table().to_struct_array()
        return pa.array([rows.to_pylist()], pa.list_(agent_struct_type()))

    def import_agents(log, columns, agent_type, capabilities) -> pa.Array:
        out = []
        for log_, columns_, type_, caps in zip(*[one_chunk(c).to_pylist() for c in (log, columns, agent_type,
                                                                                      capabilities)]):
            table = engine.import_agents(log_, columns=columns_, agent_type=type_,
                                         capabilities=["general"] if caps is None else caps)
            out.append(table.to_pylist())
        return pa.array(out, pa.list_(IMPORT_TYPE))

    def get_agent(name: pa.ChunkedArray) -> pa.Array:
        table = registry.get(one_chunk(name).to_pylist())
        struct = table.to_struct_array().combine_chunks() if table.num_rows else pa.array([], agent_struct_type())
        return pa.StructArray.from_arrays(struct.flatten(), fields=list(agent_struct_type()),
                                          mask=table["name"].is_null().combine_chunks())

    def remove_agent(name: pa.ChunkedArray) -> pa.Array:
        registry.remove(one_chunk(name))
        return _true(len(name))

    def set_agent_active(name: pa.ChunkedArray, is_active: pa.ChunkedArray) -> pa.Array:
        registry.set_active(one_chunk(name), one_chunk(is_active))
        return _true(len(name))

    def clear_agents() -> pa.Array:
        return pa.array([registry.clear()], pa.int64())

    def find_by_capability(capability: pa.ChunkedArray, limit: pa.ChunkedArray) -> pa.Array:
        found = [registry.find_by_capability(c, k).to_pylist()
                 for c, k in zip(one_chunk(capability).to_pylist(), one_chunk(limit).to_pylist())]
        return pa.array(found, pa.list_(FOUND_TYPE))

    def update_agent_metrics(name, latency_ms, success, quality) -> pa.Array:
        registry.update_metrics(one_chunk(name), one_chunk(latency_ms), one_chunk(success), one_chunk(quality))
        return _true(len(name))

    agent_sql = arrow_sql_type(agent_struct_type())
    return [
        UDF("_td_register_agent", register_agent, REGISTER_TYPES, "BOOLEAN", side_effects=True),
        UDF("_td_register_agent_full", register_agent_full, ["VARCHAR"], "BOOLEAN", side_effects=True),
        UDF("_td_list_agents", list_agents, [], f"{agent_sql}[]", side_effects=True),
        UDF("_td_get_agent", get_agent, ["VARCHAR"], agent_sql, side_effects=True),
        UDF("_td_import_agents", import_agents, ["VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR[]"],
            arrow_sql_type(IMPORT_TYPE) + "[]", side_effects=True),
        UDF("_td_remove_agent", remove_agent, ["VARCHAR"], "BOOLEAN", side_effects=True),
        UDF("_td_set_agent_active", set_agent_active, ["VARCHAR", "BOOLEAN"], "BOOLEAN", side_effects=True),
        UDF("_td_clear_agents", clear_agents, [], "BIGINT", side_effects=True),
        UDF("_td_find_agents_by_capability", find_by_capability, ["VARCHAR", "BIGINT"],
            f"{arrow_sql_type(FOUND_TYPE)}[]", side_effects=True),
        UDF("_td_update_agent_metrics", update_agent_metrics, ["VARCHAR", "DOUBLE", "BOOLEAN", "DOUBLE"], "BOOLEAN",
            side_effects=True),
    ]
