"""One declaration per UDF: name, kernel, SQL parameter and return types, side effects."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from tinydancer_duck._blas import single_threaded_blas
from tinydancer_duck._validate import MAX_TS_US, MIN_TS_US
from tinydancer_duck.errors import InvalidArgument

#: Calls of at most this many rows skip the BLAS thread switch (~30 µs: two threadpoolctl calls), which matters only
#: for a one-request query.
SMALL_CALL_ROWS = 16


@dataclass(frozen=True)
class UDF:
    """A DuckDB function. NULL rows are always passed through to the kernel.

    one_row : False (the rule): vectorized, ``fn`` takes Arrow columns and returns an Arrow array. True: ``fn``
        takes one row's Python values and returns one value; only for the one-request table forms, whose single
        row would spend more time in Arrow conversions (~0.2 ms for nine arguments and a STRUCT) than in routing.
    """

    name: str
    fn: Callable[..., Any]
    params: Sequence[str]
    returns: str
    side_effects: bool = False
    one_row: bool = False

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        fn, kind = (self.fn, "native") if self.one_row else (_with_single_threaded_blas(self.fn), "arrow")
        con.create_function(self.name, fn, list(self.params), self.returns, type=kind, null_handling="special",
                            side_effects=self.side_effects)


def _with_single_threaded_blas(fn: Callable[..., pa.Array]) -> Callable[..., pa.Array]:
    """The same function, run with BLAS at one thread (see tinydancer_duck._blas for the measurement)."""

    @functools.wraps(fn)
    def call(*columns: pa.ChunkedArray) -> pa.Array:
        if columns and len(columns[0]) <= SMALL_CALL_ROWS:  # BLAS does not thread products this small
            return fn(*columns)
        with single_threaded_blas():
            return fn(*columns)

    return call


def one_chunk(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """DuckDB hands each argument over as a ChunkedArray of one chunk; take the Array without copying."""
    if isinstance(column, pa.ChunkedArray):
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
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


def as_list(rows: pa.Array, typ: pa.DataType) -> pa.Array:
    """One LIST(STRUCT) value holding ``rows`` (the shape table macros unnest)."""
    return pa.ListArray.from_arrays(pa.array([0, len(rows)], pa.int32()), rows.cast(typ))


def epoch_us_to_ts(column: pa.ChunkedArray) -> pa.Array:
    """The BIGINT µs the SQL macro passes, as UTC timestamps (NULL stays NULL: now)."""
    return one_chunk(column).cast(pa.int64()).cast(_TS)


def now_of(column: pa.ChunkedArray) -> int | None:
    """The ``now`` argument (µs since the epoch, as the SQL macro passes it), or None for the current time; a moment
    outside years 1-9999 is an error naming ``now``."""
    values = one_chunk(column)
    if len(values) == 0 or not values[0].is_valid:
        return None
    micros = int(values.cast(pa.int64())[0].as_py())
    if not MIN_TS_US <= micros <= MAX_TS_US:
        raise InvalidArgument("now", f"{micros} µs since 1970", "must fall within years 1-9999")
    return micros
