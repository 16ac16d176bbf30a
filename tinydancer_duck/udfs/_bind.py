"""How a SQL function's macro calls its UDF, and the UDF that passes DuckDB's arguments on by name.

A :class:`Binding` pairs a declared :class:`~tinydancer_duck.options.Signature` with its forms (:class:`Call`: the
scalar macro, the table macro). The UDF's SQL argument types, the macro's casts and the adapter's keyword
arguments all follow from the signature's parameters, in one order, so an adapter never unpacks by position and
two swapped DOUBLE arguments cannot pass silently.

What the adapter receives for each parameter: a per-row parameter as an Arrow array (a column of the batch); a
call-wide one as one Python value (SQL hands a constant over as a column repeating it; differing values are an
error naming the parameter); a REQUEST as one array of text or embeddings (the macro fills the text or the
vector argument, by the request's type). A one-row UDF (``Call.one_row``) gets Python values instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tinydancer_duck._blas import single_threaded_blas
from tinydancer_duck.options import Param, Signature, one_value

from ._arrow import arrow_sql_type, one_chunk, repeated

if TYPE_CHECKING:
    import duckdb

    from tinydancer_duck.engine import Engine

#: Calls of at most this many rows skip the BLAS thread switch (~30 µs: two threadpoolctl calls), which matters only
#: for a one-request query.
SMALL_CALL_ROWS = 16
#: Names DuckDB parses as keywords: quoted in macros (``"limit" := 5``).
KEYWORDS = frozenset({"limit", "order", "group", "select", "from", "where", "table"})
#: Macro bodies of the table forms: a LIST(STRUCT) of rows, or one STRUCT as one row.
TABLE_OF_ROWS = "SELECT unnest(rows, max_depth := 2) FROM (SELECT {call} AS rows)"
TABLE_OF_ONE_ROW = "SELECT unnest(result) FROM (SELECT {call} AS result)"


def quoted(name: str) -> str:
    return f'"{name}"' if name in KEYWORDS else name


@dataclass(frozen=True)
class Arg:
    """One UDF argument: the parameter it carries, its SQL type and the macro expression that fills it.

    part : "text" and "vector" are the two halves of a REQUEST (joined again before the adapter sees them).
    """

    name: str
    sql: str
    expr: str
    per_row: bool
    part: str = ""
    param: Param | None = None


def args_of(param: Param, *, one_row: bool = False) -> list[Arg]:
    """The UDF arguments a parameter becomes, with the macro's cast for each."""
    name, sql, row = quoted(param.name), param.sql, param.per_row
    if sql == "REQUEST":
        if one_row:
            return [Arg(param.name, "VARIANT", f"{name}::VARIANT", row, param=param)]
        return [Arg(param.name, "VARCHAR", f"_td_request_text({name})", row, "text", param),
                Arg(param.name, "FLOAT[]", f"_td_request_vector({name})", row, "vector", param)]
    typ, expr = _PASSED.get(sql, (sql, "{}::" + sql))
    return [Arg(param.name, typ, expr.format(name), row, param=param)]


#: How the macro passes a pseudo-type on: the UDF's SQL type and the expression.
_PASSED = {"JSON": ("VARCHAR", "_td_json_text({})"), "TIMESTAMP": ("BIGINT", "_td_epoch_us({})"),
           "TABLE": ("VARCHAR", "{}::VARCHAR"), "MOMENT": ("VARCHAR", "_td_moment({})")}


@dataclass(frozen=True)
class Call:
    """One form of a SQL function: the UDF its macro calls and how.

    udf : the ``_td_*`` function; returns : its SQL type, an Arrow type, or a function of the engine (a type that
        depends on the embedder or the store's schema).
    body : the macro body; ``{call}`` is the UDF call. Default: the call itself (a scalar form).
    params : the parameters the UDF takes, by name (default: all of the signature's); extra : more arguments the
        macro computes (name, SQL type, expression), handed over as Arrow arrays (an aggregate's list stays Arrow).
    one_row : the UDF takes one row's Python values (DuckDB's native UDF), for one-request table forms whose single
        row would cost more in Arrow conversions than in the work.
    """

    udf: str
    returns: str | pa.DataType | Callable[[Engine], str | pa.DataType]
    body: str = "{call}"
    params: tuple[str, ...] | None = None
    extra: tuple[tuple[str, str, str], ...] = ()
    side_effects: bool = False
    one_row: bool = False

    def args(self, signature: Signature) -> list[Arg]:
        chosen = [p for p in signature.params if self.params is None or p.name in self.params]
        out = [arg for p in chosen for arg in args_of(p, one_row=self.one_row)]
        return out + [Arg(name, sql, expr, True) for name, sql, expr in self.extra]

    def return_type(self, engine: Engine) -> str:
        typ = self.returns(engine) if callable(self.returns) else self.returns
        return typ if isinstance(typ, str) else arrow_sql_type(typ)


@dataclass(frozen=True)
class Binding:
    """A declared SQL function and its scalar and/or table form."""

    signature: Signature
    scalar: Call | None = None
    table: Call | None = None

    @property
    def calls(self) -> list[Call]:
        return [c for c in (self.scalar, self.table) if c is not None]


Adapter = Callable[..., Any]


@dataclass(frozen=True)
class UDF:
    """A DuckDB function registered from a Binding's Call and the adapter that serves it."""

    name: str
    fn: Adapter
    args: tuple[Arg, ...]
    returns: str
    side_effects: bool
    one_row: bool
    arrow_type: pa.DataType | None = None

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        types = [arg.sql for arg in self.args]
        if self.one_row:
            con.create_function(self.name, _by_name_one_row(self.fn, self.args), types, self.returns, type="native",
                                null_handling="special", side_effects=self.side_effects)
            return
        fn = _by_name(self.fn, self.args, self.arrow_type or _SIMPLE.get(self.returns))
        con.create_function(self.name, _with_single_threaded_blas(fn), types, self.returns, type="arrow",
                            null_handling="special", side_effects=self.side_effects)


def udf(binding: Binding, call: Call, adapters: dict[str, Adapter], engine: Engine) -> UDF:
    returns = call.returns(engine) if callable(call.returns) else call.returns
    return UDF(call.udf, adapters[call.udf], tuple(call.args(binding.signature)), call.return_type(engine),
               call.side_effects, call.one_row, returns if isinstance(returns, pa.DataType) else None)


#: Arrow types of the simple SQL types a call-wide UDF may return (others are declared as Arrow types).
_SIMPLE = {"BOOLEAN": pa.bool_(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "VARCHAR": pa.string()}


def _by_name(fn: Adapter, args: Sequence[Arg], result_type: pa.DataType | None) -> Callable[..., pa.Array]:
    """DuckDB's positional Arrow columns as the adapter's keyword arguments (see the module docstring)."""
    per_row = any(arg.per_row for arg in args)

    def call(*columns: pa.ChunkedArray) -> pa.Array:
        n = len(columns[0]) if columns else 1
        kwargs: dict[str, Any] = {}
        for arg, column in zip(args, columns):
            values = one_chunk(column)
            if arg.part == "vector":  # the macro filled one half of the request: the other is all NULL
                if values.null_count < len(values):
                    kwargs[arg.name] = values
                continue
            if arg.per_row:
                kwargs[arg.name] = values
            else:  # one value for the call: NULL gives the declared default, and the declared check applies
                kwargs[arg.name] = arg.param.value(values) if arg.param else one_value(arg.name, values)
        if per_row:
            return fn(**kwargs)
        return repeated(fn(**kwargs), result_type, n)

    return _positional(call, args)


def _by_name_one_row(fn: Adapter, args: Sequence[Arg]) -> Callable[..., Any]:
    names = [arg.name for arg in args]

    def call(*values: Any) -> Any:
        return fn(**dict(zip(names, values)))

    return _positional(call, args)


def _positional(call: Callable[..., Any], args: Sequence[Arg]) -> Callable[..., Any]:
    """``call`` declaring one positional parameter per argument: DuckDB counts a UDF's parameters by its
    signature."""
    call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(f"{arg.name}_{arg.part or 'value'}", inspect.Parameter.POSITIONAL_ONLY) for arg in args])
    return call


def _with_single_threaded_blas(fn: Callable[..., pa.Array]) -> Callable[..., pa.Array]:
    """The same function, run with BLAS at one thread (see tinydancer_duck._blas for the measurement)."""

    def call(*columns: pa.ChunkedArray) -> pa.Array:
        if columns and len(columns[0]) <= SMALL_CALL_ROWS:  # BLAS does not thread products this small
            return fn(*columns)
        with single_threaded_blas():
            return fn(*columns)

    call.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return call
