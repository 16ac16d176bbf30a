"""DuckDB adapters: Arrow batch in -> engine call -> Arrow array out. No routing logic lives here.

Each area module pairs the declared signatures of its SQL functions (:mod:`tinydancer_duck.options`) with the UDF
each form calls (:class:`~._bind.Binding`) and the adapters that serve them, by name. The ``ruvector_*`` macros in
``tinydancer_duck/sql/`` are generated from the same bindings (``python -m tinydancer_duck.udfs``), so the macros'
parameters, the UDFs' argument types and the adapters' keyword arguments cannot drift apart.

The one exception to Arrow batches is the one-request table form of ruvector_route (``Call.one_row``): it takes one
row's Python values, because for one row the Arrow conversions cost more than the routing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import learn, registry, replay, routing, semantic, usage
from ._arrow import arrow_sql_type, one_chunk
from ._bind import UDF, Binding, udf

if TYPE_CHECKING:
    import duckdb

    from tinydancer_duck.engine import Engine

__all__ = ["AREAS", "UDF", "Area", "all_udfs", "arrow_sql_type", "bindings", "one_chunk", "register_udfs"]


@dataclass(frozen=True)
class Area:
    """One SQL file: its name (``20_routing``), what it covers and its functions."""

    file: str
    title: str
    bindings: tuple[Binding, ...]


AREAS = (
    Area("10_registry", registry.TITLE, registry.BINDINGS),
    Area("15_embed", registry.EMBED_TITLE, registry.EMBED_BINDINGS),
    Area("20_routing", routing.TITLE, routing.BINDINGS),
    Area("30_learn", learn.TITLE, learn.BINDINGS),
    Area("40_semantic", semantic.TITLE, semantic.BINDINGS),
    Area("50_usage", usage.TITLE, usage.BINDINGS),
    Area("55_budget", usage.BUDGET_TITLE, usage.BUDGET_BINDINGS),
    Area("60_replay", replay.TITLE, replay.BINDINGS),
)
_ADAPTERS = (registry.adapters, routing.adapters, learn.adapters, semantic.adapters, usage.adapters, replay.adapters)


def bindings() -> list[Binding]:
    """Every SQL function's binding, in SQL file order."""
    return [b for area in AREAS for b in area.bindings]


def all_udfs(engine: Engine) -> list[UDF]:
    """Every UDF bound to ``engine`` (a UDF serving two forms is registered once)."""
    adapters = {name: fn for make in _ADAPTERS for name, fn in make(engine).items()}
    out: dict[str, UDF] = {}
    for binding in bindings():
        for call in binding.calls:
            out.setdefault(call.udf, udf(binding, call, adapters, engine))
    return list(out.values())


def register_udfs(con: duckdb.DuckDBPyConnection, engine: Engine) -> None:
    """Register every UDF on ``con``, bound to ``engine``; a second call on the same connection is a no-op."""
    existing = {row[0] for row in con.execute(
        "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_name LIKE '\\_td\\_%' ESCAPE '\\'"
    ).fetchall()}
    for function in all_udfs(engine):
        if function.name not in existing:
            function.register(con)
