"""Facts about a store for ``tinydancer doctor``: every table opened and read in full, its files checked against
the checksums they were written with, its newest version against the highest ever committed, and its schema,
fragments and versions. Read without an embedder, so a store made by another embedder can still be diagnosed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from tinydancer_duck.errors import StoreError

from ._integrity import Integrity


def table_info(table: Any) -> dict[str, int]:
    """rows, fragments, small_fragments, version and versions (kept on disk) of an open LanceDB table."""
    stats = table.stats()
    return {"rows": int(stats["num_rows"]), "fragments": int(stats["fragment_stats"]["num_fragments"]),
            "small_fragments": int(stats["fragment_stats"]["num_small_fragments"]), "version": int(table.version),
            "versions": len(table.list_versions())}


def connect(path: str | Path) -> Any:
    import lancedb  # ~2 s to import: only when a store is inspected

    try:
        return lancedb.connect(str(Path(path).expanduser()), read_consistency_interval=timedelta(0))
    except Exception as exc:
        raise StoreError(f"cannot open store at {path}: {exc}") from exc


def table_names(db: Any, root: Path) -> list[str]:
    """Tables LanceDB lists, plus table folders it does not (one whose manifests are lost is not listed)."""
    names, token = [], None
    try:
        while True:
            listed = db.list_tables(page_token=token) if token else db.list_tables()
            names.extend(listed.tables)
            token = listed.page_token
            if not token:
                break
    except Exception as exc:
        raise StoreError(f"cannot list the tables of {root}: {exc}") from exc
    folders = [p.name.removesuffix(".lance") for p in root.glob("*.lance") if p.is_dir()]
    return sorted({*names, *folders})


def inspect_store(path: str | Path) -> dict[str, dict[str, Any]]:
    """Facts about every table in the store at ``path`` (read only; for ``tinydancer doctor``).

    Per table: ``schema``, ``info`` (as :meth:`Store.info`), ``data`` (every row, read in full), ``damaged``
    (files whose bytes differ from their checksum), ``lost`` ((newest readable version, highest committed) when
    manifests are lost, else None), ``unverified`` (files without a checksum); a table that cannot be opened has
    ``error`` instead, one that opens but cannot be read in full ``read_error``.
    """
    root = Path(path).expanduser()
    db = connect(root)
    integrity = Integrity(root)
    facts: dict[str, dict[str, Any]] = {}
    for name in table_names(db, root):
        try:
            table = db.open_table(name)
        except Exception as exc:  # noqa: BLE001 - reported by the doctor as a problem with this table
            facts[name] = {"error": _first_line(exc)}
            continue
        fact: dict[str, Any] = {"damaged": integrity.damaged(name), "unverified": integrity.unverifiable(name),
                                "lost": None, "data": None}
        try:
            fact.update(schema=table.schema, info=table_info(table))
        except Exception as exc:  # noqa: BLE001 - reported by the doctor
            facts[name] = {"error": _first_line(exc)}
            continue
        committed = integrity.high_water(name)
        if committed is not None and fact["info"]["version"] < committed:
            fact["lost"] = (fact["info"]["version"], committed)
        try:
            fact["data"] = table.to_arrow()
        except Exception as exc:  # noqa: BLE001 - reported by the doctor
            fact["read_error"] = _first_line(exc)
        facts[name] = fact
    return facts


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
