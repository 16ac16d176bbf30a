"""Facts about a store for ``tinydancer doctor``: every table's schema, fragments, versions and small tables' rows,
read without an embedder (so a store made by another embedder can still be diagnosed)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from tinydancer_duck.errors import StoreError


def table_info(table: Any) -> dict[str, int]:
    """rows, fragments, small_fragments, version and versions (kept on disk) of an open LanceDB table."""
    stats = table.stats()
    return {"rows": int(stats["num_rows"]), "fragments": int(stats["fragment_stats"]["num_fragments"]),
            "small_fragments": int(stats["fragment_stats"]["num_small_fragments"]), "version": int(table.version),
            "versions": len(table.list_versions())}


#: Tables whose whole contents `tinydancer doctor` reads (the others are only counted).
_INSPECT_READ = ("agents", "routes", "route_examples", "models", "budgets")


def inspect_store(path: str | Path) -> dict[str, dict[str, Any]]:
    """Facts about every table in the store at ``path``, without an embedder (for ``tinydancer doctor``).

    Per table: ``schema``, ``info`` (as :meth:`Store.info`) and ``data`` (the rows, for the small tables of
    :data:`_INSPECT_READ`, else None); a table that cannot be opened has ``error`` instead.
    """
    import lancedb  # ~2 s to import: only when a store is inspected

    try:
        db = lancedb.connect(str(Path(path).expanduser()), read_consistency_interval=timedelta(0))
        names, token = [], None
        while True:
            listed = db.list_tables(page_token=token) if token else db.list_tables()
            names.extend(listed.tables)
            token = listed.page_token
            if not token:
                break
    except Exception as exc:
        raise StoreError(f"cannot open store at {path}: {exc}") from exc
    facts: dict[str, dict[str, Any]] = {}
    for name in sorted(names):
        try:
            table = db.open_table(name)
            facts[name] = {"schema": table.schema, "info": table_info(table),
                           "data": table.to_arrow() if name in _INSPECT_READ else None}
        except Exception as exc:  # noqa: BLE001 - reported by the doctor as a problem with this table
            facts[name] = {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    return facts
