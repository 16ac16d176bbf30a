"""Argument checks shared by every entry point (SQL, Python, CLI), run once at the boundary.

Each check takes the argument's name so the error says which argument was wrong and with what value.
Checks work on whole columns. :func:`as_float_column` rejects NaN and infinities the caller passed, so in the
columns it returns NaN means "NULL / not given", which every later check allows unless it says otherwise.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pyarrow as pa

from tinydancer_duck.errors import InvalidArgument


def as_float_column(argument: str, values: Any, n: int, *, allow_inf: bool = False) -> np.ndarray:
    """Return float64 (n,) from a scalar, sequence, numpy or Arrow column; NULL/None becomes NaN.

    A NaN the caller really passed is an error here, so afterwards NaN means only "not given"; so is an infinity,
    unless ``allow_inf`` (a limit that means "no limit", like an infinite willingness to pay).
    """
    if values is None:
        return np.full(n, np.nan)
    if type(values) in (int, float):  # one Python number (a one-request call): no Arrow round trip
        if type(values) is int and not -(2**63) <= values < 2**63:
            raise InvalidArgument(argument, values, "is out of range")
        if math.isnan(values) or (math.isinf(values) and not allow_inf):
            raise InvalidArgument(argument, float(values), "must be a finite number")
        return np.full(n, float(values))
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        if isinstance(values, (str, bytes)):
            raise InvalidArgument(argument, values, "expected a number")
        items = values.tolist() if isinstance(values, np.ndarray) else values
        if not isinstance(items, (list, tuple)):
            items = [items] * n
        try:
            values = pa.array(items, from_pandas=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            raise InvalidArgument(argument, values, "expected a number") from None
        except OverflowError:  # a Python int beyond 64 bits
            raise InvalidArgument(argument, values, "is out of range") from None
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
            or pa.types.is_decimal(values.type) or pa.types.is_null(values.type)):
        bad = values.drop_null()[0].as_py() if len(values.drop_null()) else str(values.type)
        raise InvalidArgument(argument, bad, "expected a number")
    if len(values) != n:
        raise InvalidArgument(argument, f"{len(values)} values", f"expected {n}")
    if values.null_count == n:  # SQL passes an unused option as a NULL column: skip the cast and the checks
        return np.full(n, np.nan)
    # unsafe cast: an integer beyond 2**53 (e.g. BIGINT max from SQL) rounds instead of raising ArrowInvalid
    column = np.array(values.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=np.float64)
    given = ~np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    bad = given & (np.isnan(column) if allow_inf else ~np.isfinite(column))
    if bad.any():
        raise InvalidArgument(argument, float(column[bad][0]), "must be a finite number")
    column[~given] = np.nan
    return column


def check_int(argument: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (Python or numpy; not a bool, not a float) within [minimum, maximum]; the error names the range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or (
            minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise InvalidArgument(argument, value, "must be an integer " + _range(minimum, maximum))
    return int(value)


def check_number(argument: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                 above: float | None = None) -> float:
    """A finite real number (not a bool) >= minimum, <= maximum and > above (each when given)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)):
        raise InvalidArgument(argument, value, "must be a finite number")
    if above is not None and not value > above:
        raise InvalidArgument(argument, value, f"must be > {above:g}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise InvalidArgument(argument, value, "must be " + _range(minimum, maximum))
    return float(value)


def _range(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"within [{minimum:g}, {maximum:g}]"
    return f">= {minimum:g}" if minimum is not None else f"<= {maximum:g}" if maximum is not None else "(any)"


def as_texts(argument: str, values: Any) -> pa.Array:
    """A string column from a list of str/None, numpy strings or an Arrow string column; anything else
    (one number, nested lists, bytes that are not UTF-8) is an error naming the argument."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type) or pa.types.is_null(values.type):
            return values.cast(pa.string())
        raise InvalidArgument(argument, str(values.type), "must be a column of text")
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple, np.ndarray)):
        raise InvalidArgument(argument, values, "must be a list of texts")
    for i, value in enumerate(values.tolist() if isinstance(values, np.ndarray) else values):
        if value is not None and not isinstance(value, str):
            raise InvalidArgument(argument, value, f"row {i} is not text")
    return pa.array(list(values), pa.string())


def check_utf8(argument: str, table: pa.Table | pa.RecordBatch) -> None:
    """Every string column of ``table`` holds valid UTF-8 (a Parquet file can declare any bytes as a string)."""
    for name, column in zip(table.column_names, table.columns):
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            try:
                column.validate(full=True)
            except pa.ArrowInvalid:
                raise InvalidArgument(argument, f"column {name!r}", "holds text that is not valid UTF-8") from None


def check_bools(argument: str, values: Iterable[Any]) -> list[bool]:
    """True/False (Python or numpy) only: 'yes', 2 or NULL are errors, not silently truthy."""
    out = []
    for value in values:
        if not isinstance(value, (bool, np.bool_)):
            raise InvalidArgument(argument, value, "must be true or false")
        out.append(bool(value))
    return out


def check_nonnegative(argument: str, column: np.ndarray, *, required: bool = False) -> None:
    """>= 0 where given (NaN = not given); with ``required``, a missing value is an error too."""
    if required and np.isnan(column).any():
        raise InvalidArgument(argument, None, "is required")
    bad = column < 0
    if bad.any():
        raise InvalidArgument(argument, float(column[bad][0]), "must be >= 0")


def check_unit_interval(argument: str, column: np.ndarray) -> None:
    """Within [0, 1] where given (NaN = not given)."""
    bad = (column < 0) | (column > 1)
    if bad.any():
        raise InvalidArgument(argument, float(column[bad][0]), "must be within [0, 1]")


def as_list(values: Any) -> list[Any]:
    """Python values from an Arrow or numpy column or any iterable; a scalar (or one string) is a list of one."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.to_pylist()
    if isinstance(values, np.ndarray):
        return values.tolist()
    if isinstance(values, (str, bytes)) or values is None or not hasattr(values, "__iter__"):
        return [values]
    return list(values)


def as_column(argument: str, values: Any, n: int) -> list[Any]:
    """n values of one argument: None means n NULLs; anything else must be a column of length n."""
    if values is None:
        return [None] * n
    column = as_list(values)
    if len(column) != n:
        raise InvalidArgument(argument, f"{len(column)} values", f"expected {n}, one per row")
    return column


def check_names(argument: str, names: Iterable[Any]) -> list[str]:
    """Non-NULL, non-blank strings, returned as a list."""
    out = []
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgument(argument, name, "must be a non-empty string")
        out.append(name)
    return out


def check_choice(argument: str, value: Any, choices: Iterable[str]) -> str:
    """One of a fixed set of words (case-insensitive); the error lists them."""
    allowed = tuple(choices)
    if isinstance(value, str) and value.strip().lower() in allowed:
        return value.strip().lower()
    raise InvalidArgument(argument, value, f"must be one of {', '.join(allowed)}")


def field_mapping(columns: Mapping[str, str] | str | None, fields: Sequence[str], what: str) -> dict[str, str]:
    """field -> column name of a log, from JSON text, a mapping or None (the ``columns`` argument of log readers).

    what : what the fields are, for the error ("usage field", "log field"); unknown fields are an error naming them.
    """
    if columns is None:
        return {}
    if isinstance(columns, str):
        try:
            columns = json.loads(columns)
        except json.JSONDecodeError as exc:
            raise InvalidArgument("columns", columns, f"is not valid JSON ({exc.msg})") from None
    if not isinstance(columns, Mapping):
        raise InvalidArgument("columns", columns, f"must map {what}s to the log's column names")
    mapping = {}
    for key, value in columns.items():
        if key not in fields:
            raise InvalidArgument("columns", key, f"is not a {what} ({', '.join(fields)})")
        if value is not None:
            if not isinstance(value, str) or not value:
                raise InvalidArgument("columns", value, f"the column for {key!r} must be a column name")
            mapping[key] = value
    return mapping


def to_us(now: Any) -> int:
    """µs since the epoch (UTC) of a datetime (naive = UTC), numpy datetime64, an int (µs already), or None (the
    current time)."""
    if now is None:
        return time.time_ns() // 1000
    if isinstance(now, (int, np.integer)) and not isinstance(now, bool):
        return int(now)
    if isinstance(now, np.datetime64):
        return int(now.astype("datetime64[us]").astype(np.int64))
    if isinstance(now, datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        return (now - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
    raise TypeError(f"now must be a datetime or numpy datetime64, not {type(now).__name__}")
