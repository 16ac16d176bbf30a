"""Names the store reads from its own files (journal steps, lock names, table names) are data: each is checked
before it touches a path (DESIGN §12), so a crafted ``.journal/<id>/intent.json`` naming ``../../etc`` or an
absolute path creates nothing outside the store."""

from __future__ import annotations

import re

from tinydancer_duck.errors import StoreError

from ._schemas import TABLES

#: A name that is one plain path component: letters, digits, '_', '-', '.', not starting with '.', at most 64.
_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def safe_name(name: object, what: str, source: object = None) -> str:
    """``name`` when it is one plain path component; else StoreError naming ``what`` and the file it came from."""
    if isinstance(name, str) and _SAFE.fullmatch(name) and ".." not in name:
        return name
    raise StoreError(f"{what} {str(name)[:80]!r}{f' in {source}' if source else ''} is not a safe name (letters, "
                     "digits, '_', '-' and '.', one path component): refused before it touched a path")


def known_table(name: object, source: object = None) -> str:
    """``name`` when it is one of the store's tables (:data:`TABLES`); else StoreError naming the file it came
    from."""
    if isinstance(name, str) and name in TABLES:
        return name
    safe_name(name, "table name", source)
    raise StoreError(f"table name {name!r}{f' in {source}' if source else ''} is not one of the store's tables "
                     f"({', '.join(TABLES)})")
