"""Opening a store's table: create it only when it does not exist, never over one that exists but cannot be
opened; add the columns a newer version appended to its schema; check its newest manifest against the checksum it
was written with before LanceDB parses it (a damaged manifest can make LanceDB panic, README "Reliability")."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tinydancer_duck.errors import StoreError

from ._integrity import listing
from ._retry import retry as _retry
from ._retry import translated
from ._schemas import appended_fields

if TYPE_CHECKING:
    from ._store import Store


def open_table(store: Store, name: str) -> Any:
    """Open ``name``; create it only when its folder does not exist (or holds nothing but an aborted creation):
    a table that exists but cannot be opened is an error, never silently replaced by an empty one."""
    store.integrity.check_newest_manifest(name)
    with contextlib.suppress(Exception):  # LanceDB signals "no such table" with several exception types
        return _opened(store, name)
    with store.held(name):  # one creator at a time; a concurrent creator may have won
        try:
            return _opened(store, name)
        except StoreError as exc:  # decided below by what is on disk
            folder = store.integrity.table_folder(name)
            if folder.exists() and not _aborted_creation(folder, store.integrity.high_water(name)):
                raise StoreError(
                    f"table {name!r} exists in {store.path} but cannot be opened ({exc}). Nothing "
                    f"was changed. Run `tinydancer doctor --store {store.path}` (`--repair` goes back to its "
                    "newest readable version when one is left)") from exc
            if folder.exists():  # a creation killed before its first manifest: nothing in it to lose
                shutil.rmtree(folder)
        with translated(f"cannot create table {name!r} in {store.path}"):
            handle = store._db.create_table(name, schema=store.schema(name), exist_ok=True)
        store.integrity.record(name, int(handle.version))
        return handle


def _opened(store: Store, name: str) -> Any:
    """LanceDB's open, any failure (a Rust panic too) a StoreError whose cause is LanceDB's."""
    with translated("LanceDB"):
        return store._db.open_table(name)


def migrated(store: Store, name: str, handle: Any, expected: pa.Schema) -> pa.Schema:
    """The table's schema after adding the nullable columns a newer version appended to it (all NULL in the rows
    already stored), so a store written by an older version keeps working."""
    missing = appended_fields(handle.schema, expected)
    if not missing:
        return handle.schema
    with store.held(name):
        try:
            _retry(f"cannot add columns {missing.names} to {name!r}", lambda: handle.add_columns(missing))
        finally:
            store._wrote(name)
        store.integrity.record(name, int(handle.version))
    return handle.schema


def _aborted_creation(folder: Path, high_water: int | None) -> bool:
    """Whether a table folder that cannot be opened is only a creation killed before its first commit: no data or
    deletion files, and no later version ever committed."""
    return (high_water or 0) <= 1 and not any(rel.startswith(("data/", "_deletions/")) for rel in listing(folder))
