"""connect(): an in-process DuckDB connection with every ruvector_* function bound to an Engine."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import duckdb

from .embed import Embedder
from .settings import Settings


def connect(store: str | Path | None = None, *, embedder: str | Embedder = "static",
            settings: Settings | None = None) -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB with the routing functions over the LanceDB store at ``store``.

    store : the LanceDB directory (default ``$TINYDANCER_HOME``, else ``~/.tinydancer``); connections on one store
        see each other's writes.
    """
    from .engine import Engine

    return Engine(store, embedder=embedder, settings=settings).connect()


def connect_engine(engine) -> duckdb.DuckDBPyConnection:
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
