"""DuckDB adapters: Arrow batch in -> engine call -> Arrow array out. No routing logic lives here.

The one exception to Arrow batches is the one-request table form of ruvector_route (``UDF.one_row``): it takes one
row's Python values, because for one row the Arrow conversions cost more than the routing.

Every UDF is declared once, with its SQL parameter and return types, in the module of its SQL area; the public
``ruvector_*`` names are SQL macros in ``sql/`` that call these ``_td_*`` functions with named parameters and
defaults (DuckDB Python UDFs have neither).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import budget, embed, learn, registry, replay, routing, semantic, usage
from ._spec import UDF, arrow_sql_type, one_chunk

if TYPE_CHECKING:
    import duckdb

    from tinydancer_duck.engine import Engine

__all__ = ["UDF", "all_udfs", "arrow_sql_type", "one_chunk", "register_udfs"]

AREAS = (registry, embed, routing, learn, semantic, usage, budget, replay)


def all_udfs(engine: Engine) -> list[UDF]:
    return [udf for area in AREAS for udf in area.udfs(engine)]


def register_udfs(con: duckdb.DuckDBPyConnection, engine: Engine) -> None:
    """Register every UDF on ``con``, bound to ``engine``; a second call on the same connection is a no-op."""
    existing = {row[0] for row in con.execute(
        "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_name LIKE '\\_td\\_%' ESCAPE '\\'"
    ).fetchall()}
    for udf in all_udfs(engine):
        if udf.name not in existing:
            udf.register(con)
