"""One declaration per parameter: its name, SQL type, default, constraint and doc, and the one check of its values.

scikit-learn declares an estimator's constraints in one table that one helper checks (``_parameter_constraints``);
httpx passes its configuration around as whole objects. Here a :class:`Param` is one parameter's declaration, and a
value object (:class:`Declared`) declares its fields with :func:`declare`, so the field *is* the declaration. The
SQL macros and UDF registrations (``tinydancer_duck/udfs``), the CLI flags (``tinydancer_duck/cli/_flags.py``) and
the reference docs are generated from these declarations, and every surface validates a value with
:meth:`Param.value`, so a bad value gets the same error from SQL, Python, a distributed worker and the CLI.

A value is a scalar, or — for a ``per_row`` parameter — a column (a numpy array, an Arrow array, or a Python list)
with one value per request. This module imports neither numpy nor pyarrow: the CLI builds its flags from the
declarations before any heavy import. A column check imports them; whoever passed a column has loaded them already.
"""

from __future__ import annotations

import math
import numbers
import sys
from dataclasses import MISSING, dataclass, field, fields, replace
from functools import cache
from typing import Any, ClassVar, TypeVar

from tinydancer_duck.errors import InvalidArgument


class _Required:
    """The default of a parameter that has none (positional in SQL, required in Python)."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


def is_column(value: Any) -> bool:
    """A numpy array or an Arrow array: one value per row (a Python list is a column only where the check says)."""
    np, pa = sys.modules.get("numpy"), sys.modules.get("pyarrow")
    return (np is not None and isinstance(value, np.ndarray)) or (
        pa is not None and isinstance(value, (pa.Array, pa.ChunkedArray)))


def _all_null(value: Any) -> bool:
    """An Arrow column of NULLs only: an option not given, as SQL passes it (checked at once, not row by row)."""
    pa = sys.modules.get("pyarrow")
    return pa is not None and isinstance(value, (pa.Array, pa.ChunkedArray)) and value.null_count == len(value) > 0


def one_value(name: str, value: Any) -> Any:
    """A call-wide value given as a scalar, or as a column repeating one value (SQL hands a constant to a UDF as a
    column); differing values are an error naming ``name``. NULLs are ignored; all NULL gives None."""
    if not is_column(value):
        return value
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(value, (pa.Array, pa.ChunkedArray)) and not pa.types.is_nested(value.type):
        # SQL's constants arrive as whole columns: one vectorized pass instead of a Python loop over the rows
        import pyarrow.compute as pc

        value = pc.unique(value.drop_null())
    values = value.tolist() if hasattr(value, "tolist") else value.to_pylist()
    distinct = []
    for item in values:
        if item is not None and item not in distinct:
            distinct.append(item)
            if len(distinct) > 1:
                raise InvalidArgument(name, distinct, "must be the same for every row of a call")
    return distinct[0] if distinct else None


# -- constraints ------------------------------------------------------------------------------------------------
class Check:
    """A constraint on one parameter's values. ``scalar`` returns the normalized value or raises InvalidArgument
    naming the parameter; ``column`` does the same for a whole column and returns its canonical array."""

    def scalar(self, name: str, value: Any) -> Any:
        return value

    def takes_column(self, value: Any) -> bool:
        """Whether ``value`` is a column of this parameter's values rather than one value."""
        return is_column(value)

    def column(self, name: str, values: Any) -> Any:
        return values

    def describe(self) -> str:
        """The constraint in words, for errors and docs ("within [0, 1]"); empty when the function checks."""
        return ""


#: No check here: the function checks (a request, a JSON mapping, a file path, a log).
ANYTHING = Check()


@dataclass(frozen=True)
class Interval(Check):
    """A real number (or an integer) within bounds; ``closed``: which ends belong ("both", "left", "right",
    "neither"); ``allow_inf``: +infinity is a value ("no limit", e.g. an infinite willingness to pay)."""

    low: float | None = None
    high: float | None = None
    closed: str = "both"
    integer: bool = False
    allow_inf: bool = False

    def scalar(self, name: str, value: Any) -> Any:
        kind = numbers.Integral if self.integer else numbers.Real
        if value is None and not self.integer:
            raise InvalidArgument(name, value, "must be a finite number")
        if isinstance(value, bool) or not isinstance(value, kind):
            raise InvalidArgument(name, value, "must be an integer " + self.describe() if self.integer
                                  else "expected a number")
        number = int(value) if self.integer else float(value)
        if not self.integer and not math.isfinite(number) and not (self.allow_inf and number == math.inf):
            raise InvalidArgument(name, number, "must be a finite number")
        if not self._inside(number):
            raise InvalidArgument(name, number, f"must be {'an integer ' if self.integer else ''}{self.describe()}")
        return number

    def takes_column(self, value: Any) -> bool:
        return is_column(value) or isinstance(value, (list, tuple))

    def column(self, name: str, values: Any) -> Any:
        """float64 (n,) with NaN for NULL."""
        import numpy as np

        from tinydancer_duck._validate import as_float_column

        column = as_float_column(name, values, len(values), allow_inf=self.allow_inf)
        given = ~np.isnan(column)
        bad = given & ~self._inside(column)
        if self.integer:
            bad |= given & (column != np.round(column))
        if bad.any():
            first = column[bad][0]
            raise InvalidArgument(name, int(first) if self.integer and first == round(first) else float(first),
                                  f"must be {'an integer ' if self.integer else ''}{self.describe()}")
        return column

    def _inside(self, x: Any) -> Any:
        above = True if self.low is None else (x >= self.low if self.closed in ("both", "left") else x > self.low)
        below = True if self.high is None else (x <= self.high if self.closed in ("both", "right") else x < self.high)
        return above & below

    def describe(self) -> str:
        """ "within [0, 1]", ">= 0", "> 0" (an integer's: "within [0, 64]"); empty without bounds."""
        if self.low is not None and self.high is not None:
            left = "[" if self.closed in ("both", "left") else "("
            right = "]" if self.closed in ("both", "right") else ")"
            return f"within {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"{'>=' if self.closed in ('both', 'left') else '>'} {self.low:g}"
        if self.high is not None:
            return f"{'<=' if self.closed in ('both', 'right') else '<'} {self.high:g}"
        return ""


@dataclass(frozen=True)
class Choices(Check):
    """One of a few words, case-insensitive; a column becomes int8 indices into ``values`` (-1 for NULL)."""

    values: tuple[str, ...]

    def scalar(self, name: str, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in self.values:
            return value.strip().lower()
        raise InvalidArgument(name, value, f"must be {self.describe()}")

    def takes_column(self, value: Any) -> bool:
        return is_column(value) or isinstance(value, (list, tuple))

    def column(self, name: str, values: Any) -> Any:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if not is_column(values) or isinstance(values, np.ndarray):
            if not all(v is None or isinstance(v, str) for v in list(values)):
                raise InvalidArgument(name, list(values)[:3], f"must be {self.describe()}")
            values = pa.array(list(values), pa.string())
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
                or pa.types.is_null(values.type)):
            raise InvalidArgument(name, str(values.type), f"must be {self.describe()}")
        normalized = pc.utf8_trim_whitespace(pc.utf8_lower(values.cast(pa.string())))
        codes = pc.index_in(normalized, value_set=pa.array(self.values, pa.string()))
        unknown = pc.and_(codes.is_null(), values.is_valid())
        if pc.any(unknown).as_py():
            raise InvalidArgument(name, values.filter(unknown)[0].as_py(), f"must be {self.describe()}")
        return np.asarray(codes.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int8)

    def describe(self) -> str:
        return "one of " + ", ".join(self.values)


@dataclass(frozen=True)
class Flag(Check):
    """True or false (a Python or numpy bool): 'yes', 1 or 2 are errors, not silently truthy."""

    def scalar(self, name: str, value: Any) -> Any:
        np = sys.modules.get("numpy")
        if isinstance(value, bool) or (np is not None and isinstance(value, np.bool_)):
            return bool(value)
        raise InvalidArgument(name, value, "must be true or false")

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Strings(Check):
    """A list of texts (one list for every request); a column is a list per row (an Arrow list array)."""

    def scalar(self, name: str, value: Any) -> Any:
        if isinstance(value, str):
            raise InvalidArgument(name, value, "must be a list of strings, e.g. ['code']")
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise InvalidArgument(name, value, "must be a list of strings")
        return tuple(value)

    def takes_column(self, value: Any) -> bool:
        return is_column(value) or (isinstance(value, (list, tuple)) and len(value) > 0
                                    and all(v is None or isinstance(v, (list, tuple)) for v in value))

    def column(self, name: str, values: Any) -> Any:
        """list<string> Arrow array, or None when every row is NULL (no constraint)."""
        import pyarrow as pa

        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if not isinstance(values, pa.Array):
            try:
                values = pa.array(list(values), pa.list_(pa.string()))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                raise InvalidArgument(name, values, "must be a list of strings") from None
        if pa.types.is_null(values.type) or values.null_count == len(values):
            return None
        if not (pa.types.is_list(values.type) or pa.types.is_large_list(values.type)):
            raise InvalidArgument(name, str(values.type), "must be a list of strings")
        return values.cast(pa.list_(pa.string()))

    def describe(self) -> str:
        return "a list of text"


@dataclass(frozen=True)
class Text(Check):
    """A non-blank text that every reader can store (UTF-8, no NUL)."""

    def scalar(self, name: str, value: Any) -> Any:
        from tinydancer_duck._validate import check_text

        if not isinstance(value, str) or not value.strip():
            raise InvalidArgument(name, value, "must be a non-empty string")
        return check_text(name, value)

    def describe(self) -> str:
        return "a non-empty text"


# -- parameters -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """One parameter of a SQL function and its Python twin.

    sql : the SQL type the macro casts the argument to (VARCHAR, DOUBLE, BIGINT, BOOLEAN, VARCHAR[], DOUBLE[],
        FLOAT[]) or how the macro passes it on: REQUEST (text or an embedding), JSON (text, a STRUCT or a MAP),
        TIMESTAMP (µs since the epoch, UTC), MOMENT (a timestamp, or a word such as 'now'), TABLE (a table, view or
        file name).
    default : the value when the caller gives none (or NULL); :data:`REQUIRED` when there is none.
    per_row : may differ per request (a column); otherwise one value per call.
    flag, metavar : the CLI flag when it is not ``--name-with-dashes``, and its placeholder.
    """

    name: str
    sql: str
    default: Any = REQUIRED
    check: Check = ANYTHING
    doc: str = ""
    per_row: bool = False
    flag: str | None = None
    metavar: str | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def value(self, value: Any) -> Any:
        """The validated value: None gives the default (None for a required parameter: the function says what is
        missing); a column is checked whole and returned in its canonical form, and only where ``per_row``."""
        if value is None or _all_null(value):
            return None if self.default is REQUIRED else self.default
        if self.check.takes_column(value):
            if self.per_row:
                return self.check.column(self.name, value)
            value = one_value(self.name, value)
            if value is None:
                return None if self.default is REQUIRED else self.default
        return self.check.scalar(self.name, value)

    def evolve(self, **changes: Any) -> Param:
        """The same declaration with another default, check or doc (e.g. a function whose default differs)."""
        return replace(self, **changes)


# -- value objects ----------------------------------------------------------------------------------------------
_PARAM = "tinydancer_param"
D = TypeVar("D", bound="Declared")


def declare(sql: str, default: Any = REQUIRED, check: Check = ANYTHING, doc: str = "", *, per_row: bool = False,
            flag: str | None = None, metavar: str | None = None) -> Any:
    """A dataclass field that is a parameter's declaration (its name is the field's)."""
    return field(default=MISSING if default is REQUIRED else default,
                 metadata={_PARAM: Param("", sql, default, check, doc, per_row, flag, metavar)})


@cache
def params_of(cls: type) -> tuple[Param, ...]:
    """The declared parameters of a value object, in field order."""
    return tuple(replace(f.metadata[_PARAM], name=f.name) for f in fields(cls) if _PARAM in f.metadata)


class Declared:
    """A frozen dataclass whose fields are declared parameters, each validated (and normalized) on construction.

    ``what`` names the object in errors ("is not an option of <what>").
    """

    what: ClassVar[str] = "this call"

    def __post_init__(self) -> None:
        for param in params_of(type(self)):
            object.__setattr__(self, param.name, param.value(getattr(self, param.name)))

    @classmethod
    def params(cls) -> tuple[Param, ...]:
        return params_of(cls)

    @classmethod
    def of(cls: type[D], given: D | None = None, /, **values: Any) -> D:  # noqa: PYI019 - typing.Self needs 3.11
        """``given`` (or the defaults) with ``values`` applied; a name that is not a field is an error listing the
        fields."""
        names = {p.name for p in params_of(cls)}
        unknown = [name for name in values if name not in names]
        if unknown:
            raise InvalidArgument(unknown[0], values[unknown[0]],
                                  f"is not an option of {cls.what}; the options are {', '.join(sorted(names))}")
        if given is None:
            return cls(**values)
        if not isinstance(given, cls):
            raise InvalidArgument(cls.__name__, type(given).__name__, f"must be a {cls.__name__}")
        return replace(given, **values) if values else given

    def given(self) -> dict[str, Any]:
        """The fields that differ from their defaults (what a caller set), by name."""
        out = {}
        for param in params_of(type(self)):
            value = getattr(self, param.name)
            if is_column(value) or value != param.default:
                out[param.name] = value
        return out


# -- SQL functions ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Signature:
    """A SQL function's name, parameters and doc, and the Python function with the same parameters.

    area : the SQL file it is written to (``20_routing`` -> ``tinydancer_duck/sql/20_routing.sql``).
    twin : "Class.method" or "module-level function" of the Python API with these parameters (names and defaults
        are checked against it by tests/test_surfaces.py), or None for SQL-only functions.
    table_defaults : defaults of the table form where they differ from the scalar form's.
    """

    name: str
    params: tuple[Param, ...]
    area: str
    doc: str
    twin: str | None = None
    table_defaults: tuple[tuple[str, Any], ...] = ()

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)


def per_row_values(param: Param, value: Any, n: int) -> list[Any]:
    """n checked Python values of a parameter given once (repeated) or as a column of n (a NULL row: the default);
    each distinct value is checked once."""
    if not (is_column(value) or (isinstance(value, (list, tuple)) and param.check.takes_column(value))):
        return [param.value(value)] * n
    items = value.tolist() if hasattr(value, "tolist") else value.to_pylist() if is_column(value) else list(value)
    if len(items) != n:
        raise InvalidArgument(param.name, f"{len(items)} values", f"expected {n}, one per request")
    checked = {item: param.value(item) for item in set(items)}
    return [checked[item] for item in items]
