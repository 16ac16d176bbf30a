"""The store room: the LanceDB tables (the only importer of lancedb), their schemas, version-keyed caches,
write locks and model rows.

May import: ground (errors, settings, _validate, _numeric).
"""

from pathlib import Path

from ._cache import MAX_CHUNKS
from ._inspect import inspect_store
from ._integrity import Integrity
from ._journal import Step, file_away, quarantined
from ._journal import describe as _describe_pending
from ._ledger import count_routes, held_by_others, reserve, settle
from ._literal import sql_literal
from ._location import side_folder, store_location
from ._locks import write_locked
from ._models import named_row, newest_order, newest_row, save_model
from ._repair import accept_newest, adopt_checksums, backup, restore_readable, roll_back_manifests
from ._rewrite import read_tables, rewrite_tables
from ._schemas import IDENTITY_KEY, TABLES, USAGE_SCHEMA, expected_schema
from ._store import COMPACT_FRAGMENTS, Store, default_store_path


def side_files(path: str | Path) -> Path:
    """The local folder of the side files (journal, ledger, locks) of the store at ``path`` (a folder or a URI)."""
    location, remote = store_location(path, default_store_path())
    return side_folder(location, remote)


def pending_writes(path: str | Path) -> list[str]:
    """Writes killed processes left half done in the store at ``path`` (for ``tinydancer doctor``)."""
    return _describe_pending(side_files(path))


def set_aside_writes(path: str | Path) -> list[str]:
    """Half-done writes that could not be finished and were quarantined, with why (for ``tinydancer doctor``)."""
    lines = []
    for intent in quarantined(side_files(path)):
        try:
            reason = (intent / "reason.txt").read_text(encoding="utf-8").strip()
        except OSError:
            reason = "no reason recorded"
        lines.append(f"{intent}: {reason}")
    return lines


def file_set_aside_writes(path: str | Path) -> list[Path]:
    """After a repair accounted for them, move the set-aside writes under ``.quarantine/journal`` (kept, no longer
    reported); where they went."""
    return file_away(side_files(path))


__all__ = [
    "COMPACT_FRAGMENTS",
    "IDENTITY_KEY",
    "MAX_CHUNKS",
    "TABLES",
    "USAGE_SCHEMA",
    "Integrity",
    "Step",
    "Store",
    "_describe_pending",
    "accept_newest",
    "adopt_checksums",
    "backup",
    "count_routes",
    "default_store_path",
    "expected_schema",
    "file_set_aside_writes",
    "held_by_others",
    "inspect_store",
    "named_row",
    "newest_order",
    "newest_row",
    "pending_writes",
    "read_tables",
    "reserve",
    "restore_readable",
    "rewrite_tables",
    "roll_back_manifests",
    "save_model",
    "set_aside_writes",
    "settle",
    "side_files",
    "sql_literal",
    "store_location",
    "write_locked",
]
