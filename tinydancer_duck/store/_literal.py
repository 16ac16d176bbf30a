"""User values in LanceDB filters: quoted as data, never SQL (the store's only way to put a value in a filter)."""

from __future__ import annotations

from collections.abc import Iterable

from tinydancer_duck.errors import StoreError


def sql_literal(value: str) -> str:
    """Quote a user string as a LanceDB (DataFusion) SQL string literal: data, never SQL. A NUL character (which
    no new name may hold, but a store written before that may) becomes ``chr(0)`` between quoted parts."""
    if not isinstance(value, str):
        raise StoreError(f"filter value must be a string, got {type(value).__name__}")
    return " || chr(0) || ".join("'" + part.replace("'", "''") + "'" for part in value.split("\x00"))


def in_filter(column: str, values: Iterable[str]) -> str:
    """``column IN ('a', 'b')`` with every value quoted by :func:`sql_literal`."""
    return f"{column} IN ({', '.join(sql_literal(v) for v in values)})"
