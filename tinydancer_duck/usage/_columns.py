"""Usage events given as columns, validated into a ``usage`` table (USAGE_SCHEMA) plus the input row numbers.

Validation runs on the whole batch before anything is written: cost, latency_ms and tokens >= 0, finite and at most
1e12, quality within [0, 1], propensity within (0, 1], ts within years 1-9999, text valid UTF-8 without NUL (a CSV column that is not UTF-8 is
named with the first bad value, not Arrow's error); a NULL agent/cost/success/latency_ms is an error naming the
argument. A missing ts is ``now``, given by the caller (an ingest asks for it explicitly).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck._validate import (
    MAX_TS_US,
    MIN_TS_US,
    as_float_column,
    check_nonnegative,
    check_stored,
    check_text_column,
    check_unit_interval,
)
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.store import USAGE_SCHEMA

from ._log import FIELDS

_TS = pa.timestamp("us", tz="UTC")


def usage_batch(columns: Mapping[str, Any] | pa.Table | pa.RecordBatch, *, now: datetime) -> pa.Table:
    """Validate usage fields given as columns and return them as a USAGE_SCHEMA table plus a ``_row`` column
    (the input row number). Raises InvalidArgument naming the field and the first bad value."""
    if isinstance(columns, (pa.Table, pa.RecordBatch)):
        columns = {name: columns.column(name) for name in columns.column_names}
    n = _length(columns)
    if n == 0:
        return USAGE_SCHEMA.empty_table().append_column("_row", pa.array([], pa.int64()))
    out: dict[str, pa.Array] = {}
    out["ts"] = timestamps(columns.get("ts"), n, now)
    for name in ("request_id", "route", "category", "policy"):
        out[name] = _strings(name, columns.get(name), n)
    out["agent"] = _strings("agent", columns.get("agent"), n)
    if out["agent"].null_count:
        raise InvalidArgument("agent", None, f"is required (row {_first(out['agent'].is_null())} is NULL)")
    blank = pc.equal(pc.utf8_trim_whitespace(out["agent"]), "")
    if pc.any(blank).as_py():
        raise InvalidArgument("agent", out["agent"].filter(blank)[0].as_py(), "must be a non-empty string")
    for name in ("tokens_in", "tokens_out"):
        values = as_float_column(name, _plain(columns.get(name)), n)
        check_nonnegative(name, values)
        check_stored(name, values)
        out[name] = pa.array(np.rint(values), pa.float64(), mask=np.isnan(values)).cast(pa.int64())
    for name in ("cost", "latency_ms"):
        values = as_float_column(name, _plain(columns.get(name)), n)
        check_nonnegative(name, values, required=True)
        check_stored(name, values)
        out[name] = pa.array(values, pa.float64())
    out["success"] = _booleans(columns.get("success"), n)
    quality = as_float_column("quality", _plain(columns.get("quality")), n)
    check_unit_interval("quality", quality)
    out["quality"] = pa.array(quality, pa.float64(), mask=np.isnan(quality))
    propensity = as_float_column("propensity", _plain(columns.get("propensity")), n)
    impossible = (propensity <= 0) | (propensity > 1)
    if impossible.any():
        raise InvalidArgument("propensity", float(propensity[impossible][0]), "must lie within (0, 1]: the "
                              "probability the routing policy had of choosing the agent (1 for a deterministic choice)")
    out["propensity"] = pa.array(propensity, pa.float64(), mask=np.isnan(propensity))
    table = pa.table({name: out[name] for name in FIELDS}).cast(USAGE_SCHEMA)
    return table.append_column("_row", pa.array(np.arange(n, dtype=np.int64)))


def in_time_order(batch: pa.Table) -> pa.Table:
    """Rows sorted by ts (stable), the order events are folded into running stats."""
    order = pc.sort_indices(batch, sort_keys=[("ts", "ascending"), ("_row", "ascending")])
    return batch.take(order)


def _length(columns: Mapping[str, Any]) -> int:
    lengths = {len(v) for v in columns.values() if _is_column(v)}
    if len(lengths) > 1:
        raise InvalidArgument("columns", sorted(lengths), "all usage columns must have the same length")
    return lengths.pop() if lengths else 1


def _is_column(value: Any) -> bool:
    return isinstance(value, (pa.Array, pa.ChunkedArray, np.ndarray, list, tuple))


def _plain(values: Any) -> Any:
    """Arrow columns as Arrow arrays; a NULL-typed column is 'not given'."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array) and pa.types.is_null(values.type):
        return None
    return values


def _broadcast(values: Any, n: int) -> pa.Array:
    values = _plain(values)
    if values is None:
        return pa.nulls(n)
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, np.ndarray):
        return pa.array(values)
    return pa.array(list(values) if _is_column(values) else [values] * n)


def _strings(name: str, values: Any, n: int) -> pa.Array:
    try:
        column = _broadcast(values, n)
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            _check_utf8_bytes(name, column)  # a CSV column with invalid UTF-8 reads as binary
        column = column.cast(pa.string()) if not pa.types.is_string(column.type) else column
    except UnicodeEncodeError:
        raise InvalidArgument(name, values, "is not valid UTF-8 text (it holds a lone surrogate)") from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, OverflowError):
        raise InvalidArgument(name, values if not _is_column(values) else f"a column of {_type_of(values)}",
                              "must be text") from None
    try:
        column.validate(full=True)  # a Parquet file may declare invalid UTF-8 bytes as strings
    except pa.ArrowInvalid:
        raise InvalidArgument(name, "<invalid UTF-8>", "must be valid UTF-8 text") from None
    check_text_column(name, column)
    return column


def _check_utf8_bytes(name: str, column: pa.Array) -> None:
    """InvalidArgument naming the first value of a binary column that is not UTF-8 text (and its row)."""
    for row, value in enumerate(column.to_pylist()):
        try:
            value is None or value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidArgument(name, value[:40], f"row {row} of this batch is not valid UTF-8 text ({exc.reason} "
                                  f"at byte {exc.start}); a log's text must be UTF-8") from None


def _type_of(values: Any) -> str:
    return str(values.type) if hasattr(values, "type") else type(values).__name__


def _booleans(values: Any, n: int) -> pa.Array:
    try:
        column = _broadcast(values, n)
        if not (pa.types.is_boolean(column.type) or pa.types.is_integer(column.type) or pa.types.is_null(column.type)):
            raise TypeError
        column = column.cast(pa.bool_())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
        shown = values if not _is_column(values) else str(_broadcast(values, n).type)
        raise InvalidArgument("success", shown, "must be true or false") from None
    if column.null_count:
        raise InvalidArgument("success", None, f"is required (row {_first(column.is_null())} is NULL)")
    return column


def timestamps(values: Any, n: int, now: datetime | None) -> pa.Array:
    """UTC µs timestamps; NULL (or no column) means ``now`` (None: a NULL is an error naming ts). Naive timestamps
    and ISO texts without an offset are read as UTC."""
    try:
        column = _broadcast(values, n)
        if pa.types.is_null(column.type):
            column = pa.nulls(n, _TS)
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            try:
                column = column.cast(_TS)
            except pa.ArrowInvalid:  # no offset in the text
                column = pc.assume_timezone(column.cast(pa.timestamp("us")), "UTC")
        elif pa.types.is_date(column.type):
            column = pc.assume_timezone(column.cast(pa.timestamp("us")), "UTC")
        elif pa.types.is_timestamp(column.type):
            if column.type.tz is None:
                column = pc.assume_timezone(column, "UTC")
        else:
            raise TypeError
        column = column.cast(_TS)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError, OverflowError):
        shown = values if not _is_column(values) else type(values).__name__
        raise InvalidArgument("ts", shown, "must be a timestamp within years 1-9999 (NULL means now)") from None
    micros = column.cast(pa.int64()).to_numpy(zero_copy_only=False)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(valid & ((micros < MIN_TS_US) | (micros > MAX_TS_US)))
    if len(bad):
        raise InvalidArgument("ts", f"{int(micros[bad[0]])} µs since 1970", "must fall within years 1-9999")
    if now is None and column.null_count:
        raise InvalidArgument("ts", None, f"is missing in row {_first(column.is_null())} of a batch: say when such "
                              "events happened, ts := 'now' or ts := an as_of timestamp")
    return column if now is None else column.fill_null(pa.scalar(now, _TS))


def _first(mask: pa.Array) -> int:
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0])
