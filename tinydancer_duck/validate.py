"""Argument checks shared by every entry point (SQL, Python, CLI), run once at the boundary.

Each check takes the argument's name so the error says which argument was wrong and with what value.
Checks work on whole columns: a NULL (NaN from Arrow) is allowed unless the check says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from .errors import InvalidArgument


def as_float_column(argument: str, values: Any, n: int) -> np.ndarray:
    """Return float64 (n,) from a scalar, sequence, numpy or Arrow column; NULL becomes NaN."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
                or pa.types.is_decimal(values.type) or pa.types.is_null(values.type)):
            raise InvalidArgument(argument, str(values.type), "expected a number")
        column = values.cast(pa.float64()).to_numpy(zero_copy_only=False)
    elif values is None:
        column = np.full(n, np.nan)
    else:
        try:
            column = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidArgument(argument, values, "expected a number") from None
        if column.ndim == 0:
            column = np.full(n, float(column))
    if column.shape != (n,):
        raise InvalidArgument(argument, f"{column.shape[0]} values", f"expected {n}")
    return np.asarray(column, dtype=np.float64)


def check_no_nan(argument: str, column: np.ndarray, present: np.ndarray) -> None:
    """Reject NaN/inf among values the caller did pass (present=True)."""
    bad = present & ~np.isfinite(column)
    if bad.any():
        raise InvalidArgument(argument, float(column[bad][0]), "must be a finite number")


def check_nonnegative(argument: str, column: np.ndarray, *, required: bool = False) -> None:
    """Finite and >= 0 where present; NULL allowed unless required."""
    present = ~np.isnan(column) if not required else np.ones(column.shape, bool)
    if required and np.isnan(column).any():
        raise InvalidArgument(argument, None, "is required")
    check_no_nan(argument, column, present | np.isinf(column))
    bad = present & (column < 0)
    if bad.any():
        raise InvalidArgument(argument, float(column[bad][0]), "must be >= 0")


def check_unit_interval(argument: str, column: np.ndarray) -> None:
    """Finite and within [0, 1] where present."""
    present = ~np.isnan(column)
    check_no_nan(argument, column, present | np.isinf(column))
    bad = present & ((column < 0) | (column > 1))
    if bad.any():
        raise InvalidArgument(argument, float(column[bad][0]), "must be within [0, 1]")


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
