"""Rewriting a whole store under another embedder (``tinydancer reembed``): read its tables whatever embedder made
them, and write new ones with the new embedder's schemas after a backup of the folder.

The vector tables' schemas carry the embedder identity, which LanceDB cannot change in place, so a re-embedded table
is dropped and created again. The backup (a copy of the store folder beside it) is taken first and kept: if the
rewrite is interrupted, the backup is the store as it was.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa

from tinydancer_duck.errors import StoreError

from ._integrity import Integrity
from ._schemas import expected_schema


def read_tables(path: str | Path, names: tuple[str, ...]) -> dict[str, pa.Table]:
    """The tables of ``names`` that exist in the store at ``path``, as Arrow, without checking their embedder."""
    import lancedb  # ~2 s to import: only when a store is opened

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise StoreError(f"no store at {folder}")
    try:
        db = lancedb.connect(str(folder), read_consistency_interval=timedelta(0))
        present = set(db.list_tables().tables)
        return {name: db.open_table(name).to_arrow() for name in names if name in present}
    except Exception as exc:
        raise StoreError(f"cannot read the store at {folder}: {exc}") from exc


def rewrite_tables(path: str | Path, tables: Mapping[str, pa.Table], *, dim: int, identity: str) -> Path:
    """Back the store up, then replace each table of ``tables`` by its rows under the schema of ``identity`` and
    ``dim``; returns the backup folder."""
    import lancedb

    folder = Path(path).expanduser()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    backup = folder.with_name(f"{folder.name}.backup-{stamp}")
    try:
        shutil.copytree(folder, backup)
        db = lancedb.connect(str(folder), read_consistency_interval=timedelta(0))
        integrity = Integrity(folder)
        for name, rows in tables.items():
            schema = expected_schema(name, dim, identity)
            for field in schema:  # columns a newer version added: NULL, as Store._migrated adds them
                if field.name not in rows.column_names:
                    rows = rows.append_column(field, pa.nulls(rows.num_rows, field.type))
            db.drop_table(name)
            for kept in (f"{name}.log", f"{name}.version"):  # the old table's checksums and versions are gone
                (integrity.folder / kept).unlink(missing_ok=True)
            handle = db.create_table(name, rows.select(schema.names).cast(schema), schema=schema)
            integrity.record(name, int(handle.version))
    except Exception as exc:
        raise StoreError(f"re-embedding {folder} failed ({exc}); the store as it was is in {backup}") from exc
    return backup
