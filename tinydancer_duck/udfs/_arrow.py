"""Arrow at the DuckDB seam: a UDF's argument as one Arrow array, SQL type names of Arrow types, result shapes."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from tinydancer_duck._validate import MAX_TS_US, MIN_TS_US
from tinydancer_duck.errors import InvalidArgument


def one_chunk(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """DuckDB hands each argument over as a ChunkedArray of one chunk; take the Array without copying."""
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 1:
            return column.chunk(0)
        return column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    return column


_SCALARS = {
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.float64(): "DOUBLE",
    pa.float32(): "FLOAT",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.bool_(): "BOOLEAN",
    pa.large_binary(): "BLOB",
    pa.binary(): "BLOB",
    pa.date32(): "DATE",
}


def arrow_sql_type(typ: pa.DataType) -> str:
    """The DuckDB type name of an Arrow type, so SQL return types are derived from the store's schemas."""
    if typ in _SCALARS:
        return _SCALARS[typ]
    if pa.types.is_timestamp(typ):
        return "TIMESTAMP WITH TIME ZONE" if typ.tz else "TIMESTAMP"
    if pa.types.is_fixed_size_list(typ):
        return f"{arrow_sql_type(typ.value_type)}[{typ.list_size}]"
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return f"{arrow_sql_type(typ.value_type)}[]"
    if pa.types.is_struct(typ):
        fields = ", ".join(f'"{f.name}" {arrow_sql_type(f.type)}' for f in typ)
        return f"STRUCT({fields})"
    raise TypeError(f"no DuckDB type for {typ}")


_TS = pa.timestamp("us", tz="UTC")


def as_list(rows: pa.Array | pa.Table, typ: pa.DataType) -> pa.Array:
    """One LIST(STRUCT) value holding ``rows`` (a struct array or a table: the shape table macros unnest)."""
    if isinstance(rows, pa.Table):
        rows = pa.StructArray.from_arrays([one_chunk(c) for c in rows.columns], names=rows.column_names) \
            if rows.num_rows else pa.array([], typ)
    return pa.ListArray.from_arrays(pa.array([0, len(rows)], pa.int32()), rows.cast(typ))


def repeated(value: Any, typ: pa.DataType, n: int) -> pa.Array:
    """n rows of one result: a table becomes one LIST(STRUCT) value, a 1-row Arrow array is taken n times, a
    Python value is converted (a call whose arguments are all constants computes its result once)."""
    if isinstance(value, pa.Table):
        value = as_list(value, typ.value_type)
    if not isinstance(value, pa.Array):
        value = pa.array([value], typ)
    return value if n == 1 else value.take(pa.array([0] * n, pa.int64()))


def epoch_us_to_ts(column: pa.Array) -> pa.Array:
    """The BIGINT µs the SQL macro passes, as UTC timestamps (NULL stays NULL: now)."""
    return column.cast(pa.int64()).cast(_TS)


def now_of(micros: int | None) -> int | None:
    """The ``now`` argument (µs since the epoch, as the SQL macro passes it), or None for the current time; a moment
    outside years 1-9999 is an error naming ``now``."""
    if micros is not None and not MIN_TS_US <= micros <= MAX_TS_US:
        raise InvalidArgument("now", f"{micros} µs since 1970", "must fall within years 1-9999")
    return micros
