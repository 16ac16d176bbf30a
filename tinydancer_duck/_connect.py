"""The DuckDB seam: a connection with every ruvector_* UDF bound to an Engine and the sql/ surface run."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from tinydancer_duck.engine import Engine



def connect_engine(engine: Engine) -> duckdb.DuckDBPyConnection:
    """A new in-memory connection with ``engine``'s UDFs registered and ``sql/*.sql`` run."""
    from tinydancer_duck.udfs import register_udfs

    con = duckdb.connect(":memory:")
    register_udfs(con, engine)
    for script in sql_scripts():
        con.execute(script).fetchall()
    return con


def sql_scripts() -> list[str]:
    """The SQL surface files in name order."""
    folder = resources.files("tinydancer_duck.sql")
    return [f.read_text(encoding="utf-8") for f in sorted(folder.iterdir(), key=lambda f: f.name)
            if f.name.endswith(".sql")]
