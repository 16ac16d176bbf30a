"""Facts about a store for ``tinydancer doctor``: every table opened and read in full, its files checked against
the checksums they were written with, its newest version against the highest ever committed, and its schema,
fragments and versions. Read without an embedder, so a store made by another embedder can still be diagnosed; a
store on object storage (``s3://...``) is read through LanceDB alone (its files are not checksummed here)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from tinydancer_duck.errors import StoreError

from ._integrity import Integrity, Unchecked
from ._location import side_folder, store_location
from ._retry import first_line, foreign_failure


def table_info(table: Any) -> dict[str, int]:
    """rows, fragments, small_fragments, version and versions (kept on disk) of an open LanceDB table."""
    stats = table.stats()
    return {"rows": int(stats["num_rows"]), "fragments": int(stats["fragment_stats"]["num_fragments"]),
            "small_fragments": int(stats["fragment_stats"]["num_small_fragments"]), "version": int(table.version),
            "versions": len(table.list_versions())}


def connect(path: str | Path, storage_options: dict[str, str] | None = None) -> Any:
    import lancedb  # ~2 s to import: only when a store is inspected

    location, _ = store_location(path, Path(path))
    try:
        return lancedb.connect(str(location), read_consistency_interval=timedelta(0),
                               storage_options=storage_options or None)
    except Exception as exc:
        raise StoreError(f"cannot open store at {path}: {exc}") from exc


def table_names(db: Any, root: Path | None) -> list[str]:
    """Tables LanceDB lists, plus table folders it does not (one whose manifests are lost is not listed; a
    remote store, ``root`` None, only lists)."""
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
    if root is not None:
        names += [p.name.removesuffix(".lance") for p in root.glob("*.lance") if p.is_dir()]
    return sorted(set(names))


def inspect_store(path: str | Path, storage_options: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Facts about every table in the store at ``path`` (read only; for ``tinydancer doctor``).

    Per table: ``schema``, ``info`` (as :meth:`Store.info`), ``data`` (every row, read in full), ``damaged``
    (files whose bytes differ from their checksum), ``lost`` ((newest readable version, highest committed) when
    manifests are lost, else None), ``unverified`` (files without a checksum), ``recorded`` (whether any checksum
    was ever kept for it); a table that cannot be opened has ``error`` instead (and ``manifest``: True when the
    manifest of its newest committed version is damaged), one that opens but cannot be read in full
    ``read_error``. A failure inside LanceDB (a Rust panic too) is a fact, never raised.
    """
    location, remote = store_location(path, Path(path))
    db = connect(location, storage_options)
    integrity = Unchecked(side_folder(location, True)) if remote else Integrity(location)
    facts: dict[str, dict[str, Any]] = {}
    for name in table_names(db, None if remote else location):
        problem = integrity.newest_manifest_problem(name)
        facts[name] = {"error": problem, "manifest": True} if problem else _table_facts(db, name, integrity)
    return facts


def _table_facts(db: Any, name: str, integrity: Integrity) -> dict[str, Any]:
    """The facts of one table (see :func:`inspect_store`)."""
    try:
        table = db.open_table(name)
        fact: dict[str, Any] = {"damaged": integrity.damaged(name), "unverified": integrity.unverifiable(name),
                                "recorded": integrity.has_records(name), "lost": None, "data": None,
                                "schema": table.schema, "info": table_info(table)}
    except BaseException as exc:
        if not foreign_failure(exc):
            raise
        return {"error": first_line(exc)}
    committed = integrity.high_water(name)
    if committed is not None and fact["info"]["version"] < committed:
        fact["lost"] = (fact["info"]["version"], committed)
    try:
        fact["data"] = table.to_arrow()
    except BaseException as exc:
        if not foreign_failure(exc):
            raise
        fact["read_error"] = first_line(exc)
    return fact
