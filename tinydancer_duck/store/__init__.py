"""The store room: the LanceDB tables (the only importer of lancedb), their schemas, version-keyed caches,
write locks and model rows.

May import: ground (errors, settings, _validate, _numeric).
"""

from ._cache import MAX_CHUNKS
from ._inspect import inspect_store
from ._integrity import Integrity
from ._journal import Step
from ._journal import describe as _describe_pending
from ._ledger import count_routes, held_by_others, reserve, settle
from ._literal import sql_literal
from ._locks import write_locked
from ._models import named_row, newest_order, newest_row, save_model
from ._repair import accept_newest, adopt_checksums, backup, restore_readable
from ._rewrite import read_tables, rewrite_tables
from ._schemas import IDENTITY_KEY, TABLES, USAGE_SCHEMA, expected_schema
from ._store import COMPACT_FRAGMENTS, Store, default_store_path


def pending_writes(path: str) -> list[str]:
    """Writes killed processes left half done in the store at ``path`` (for ``tinydancer doctor``)."""
    from pathlib import Path

    return _describe_pending(Path(path))

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
    "held_by_others",
    "inspect_store",
    "named_row",
    "newest_order",
    "newest_row",
    "read_tables",
    "reserve",
    "restore_readable",
    "rewrite_tables",
    "save_model",
    "settle",
    "sql_literal",
    "write_locked",
]
