"""The agent registry and the embedding: register (one or a JSON config), list, import from a log, get, remove,
switch on/off, clear, find by capability, update metrics; ruvector_embed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tinydancer_duck.options import SIGNATURES
from tinydancer_duck.registry import FOUND_TYPE, IMPORT_TYPE, config_columns

from ._bind import TABLE_OF_ROWS, Adapter, Binding, Call

if TYPE_CHECKING:
    from tinydancer_duck.engine import Engine

TITLE = "Agent registry (tinydancer_duck/udfs/registry.py -> tinydancer_duck/registry/): the seed's names and named " \
        "parameters."
EMBED_TITLE = "Embedding (tinydancer_duck/udfs/registry.py -> tinydancer_duck/embed/)."


def _agent_type(engine: Engine) -> pa.DataType:
    """One agent as a STRUCT: the store's agents schema (it may gain columns)."""
    return pa.struct(list(engine.registry.table().schema))


def _embedding_type(engine: Engine) -> str:
    return f"FLOAT[{engine.dim}]"


BINDINGS = (
    Binding(SIGNATURES["ruvector_register_agent"], scalar=Call("_td_register_agent", "BOOLEAN", side_effects=True)),
    Binding(SIGNATURES["ruvector_register_agent_full"],
            scalar=Call("_td_register_agent_full", "BOOLEAN", side_effects=True)),
    Binding(SIGNATURES["ruvector_list_agents"],
            table=Call("_td_list_agents", lambda e: pa.list_(_agent_type(e)), TABLE_OF_ROWS, side_effects=True)),
    Binding(SIGNATURES["ruvector_import_agents"],
            table=Call("_td_import_agents", pa.list_(IMPORT_TYPE), TABLE_OF_ROWS, side_effects=True)),
    Binding(SIGNATURES["ruvector_get_agent"], scalar=Call("_td_get_agent", _agent_type, side_effects=True)),
    Binding(SIGNATURES["ruvector_remove_agent"], scalar=Call("_td_remove_agent", "BOOLEAN", side_effects=True)),
    Binding(SIGNATURES["ruvector_set_agent_active"],
            scalar=Call("_td_set_agent_active", "BOOLEAN", side_effects=True)),
    Binding(SIGNATURES["ruvector_clear_agents"], scalar=Call("_td_clear_agents", "BIGINT", side_effects=True)),
    Binding(SIGNATURES["ruvector_find_agents_by_capability"],
            table=Call("_td_find_agents_by_capability", pa.list_(FOUND_TYPE), TABLE_OF_ROWS, side_effects=True)),
    Binding(SIGNATURES["ruvector_update_agent_metrics"],
            scalar=Call("_td_update_agent_metrics", "BOOLEAN", side_effects=True)),
)
EMBED_BINDINGS = (Binding(SIGNATURES["ruvector_embed"], scalar=Call("_td_embed", _embedding_type)),)


def _true(n: int) -> pa.Array:
    return pa.array([True] * n, pa.bool_())


def adapters(engine: Engine) -> dict[str, Adapter]:
    registry = engine.registry

    def register_agent(**fields: pa.Array) -> pa.Array:
        registry.register(fields)
        return _true(len(fields["name"]))

    def register_agent_full(config: pa.Array) -> pa.Array:
        registry.register(config_columns(config.to_pylist()))
        return _true(len(config))

    def list_agents() -> pa.Table:
        return registry.table()

    def import_agents(log: str, columns: str | None, agent_type: str, capabilities: Any) -> pa.Table:
        return engine.import_agents(log, columns=columns, agent_type=agent_type, capabilities=capabilities)

    def get_agent(name: pa.Array) -> pa.Array:
        table = registry.get(name.to_pylist())
        struct_type = _agent_type(engine)
        struct = table.to_struct_array().combine_chunks() if table.num_rows else pa.array([], struct_type)
        return pa.StructArray.from_arrays(struct.flatten(), fields=list(struct_type),
                                          mask=table["name"].is_null().combine_chunks())

    def remove_agent(name: pa.Array) -> pa.Array:
        registry.remove(name)
        return _true(len(name))

    def set_agent_active(name: pa.Array, is_active: pa.Array) -> pa.Array:
        registry.set_active(name, is_active)
        return _true(len(name))

    def clear_agents() -> int:
        return registry.clear()

    def find_by_capability(capability: str, limit: int) -> pa.Table:
        return registry.find_by_capability(capability, limit)

    def update_agent_metrics(name: pa.Array, latency_ms: pa.Array, success: pa.Array, quality: pa.Array) -> pa.Array:
        registry.update_metrics(name, latency_ms, success, quality)
        return _true(len(name))

    def embed(text: pa.Array) -> pa.Array:
        vectors = engine.embed(text)
        return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), engine.dim,
                                                 mask=text.is_null())

    return {"_td_register_agent": register_agent, "_td_register_agent_full": register_agent_full,
            "_td_list_agents": list_agents, "_td_import_agents": import_agents, "_td_get_agent": get_agent,
            "_td_remove_agent": remove_agent, "_td_set_agent_active": set_agent_active,
            "_td_clear_agents": clear_agents, "_td_find_agents_by_capability": find_by_capability,
            "_td_update_agent_metrics": update_agent_metrics, "_td_embed": embed}
