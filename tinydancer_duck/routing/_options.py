"""Routing options as per-request columns, validated once at the boundary.

SQL hands every argument over as a column (usually a constant repeated), Python callers pass scalars; both become
one :class:`RouteOptions` of n rows so the router never branches on where a request came from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck._validate import as_float_column, check_nonnegative, check_unit_interval
from tinydancer_duck.errors import InvalidArgument

OBJECTIVE_NAMES = ("cost", "latency", "quality", "balanced", "quality_per_dollar", "learned")
#: The objective of a request routed by a willingness to pay (argmax expected quality - cost / willingness_to_pay);
#: ``learned`` becomes it once the outcome router's calibrated willingness to pay is filled in.
BY_VALUE = len(OBJECTIVE_NAMES)
LEARNED = OBJECTIVE_NAMES.index("learned")
#: How a decision names its objective (OBJECTIVE_NAMES, then the willingness-to-pay value).
OBJECTIVE_LABELS = (*OBJECTIVE_NAMES, "willingness_to_pay")
#: The per-request constraints a policy may set (a replay's policy takes these; budget_remaining is live state).
CONSTRAINT_OPTIONS = ("required_capabilities", "max_cost", "max_latency_ms", "min_quality", "excluded_agents")


@dataclass(frozen=True)
class RouteOptions:
    """Constraints and objective for n requests.

    objective : int8 (n,), an index into OBJECTIVE_LABELS (BY_VALUE where a willingness to pay decides).
    max_cost, max_latency_ms, min_quality, budget_remaining : float64 (n,), NaN where unconstrained.
    willingness_to_pay : float64 (n,) dollars per unit of expected quality; NaN where the objective decides.
    required_capabilities, excluded_agents : list<string> Arrow arrays of length n, or None when unused.
    """

    objective: np.ndarray
    max_cost: np.ndarray
    max_latency_ms: np.ndarray
    min_quality: np.ndarray
    budget_remaining: np.ndarray
    required_capabilities: pa.ListArray | None
    excluded_agents: pa.ListArray | None
    willingness_to_pay: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> RouteOptions:
        """The options of a subset of the requests."""
        index = pa.array(rows, pa.int64())
        lists = (lambda column: None if column is None else column.take(index))
        return RouteOptions(self.objective[rows], self.max_cost[rows], self.max_latency_ms[rows],
                            self.min_quality[rows], self.budget_remaining[rows],
                            lists(self.required_capabilities), lists(self.excluded_agents),
                            None if self.willingness_to_pay is None else self.willingness_to_pay[rows])

    def with_willingness_to_pay(self, value: float) -> RouteOptions:
        """The options with ``optimize_for='learned'`` rows routed by ``value`` (the outcome router's calibrated
        willingness to pay)."""
        learned = self.objective == LEARNED
        if not learned.any():
            return self
        wtp = np.full(len(self.objective), np.nan) if self.willingness_to_pay is None else self.willingness_to_pay
        return replace(self, objective=np.where(learned, BY_VALUE, self.objective).astype(np.int8),
                       willingness_to_pay=np.where(learned, value, wtp))

    @classmethod
    def build(cls, n: int, *, optimize_for: Any = "balanced", required_capabilities: Any = None,
              max_cost: Any = None, max_latency_ms: Any = None, min_quality: Any = None,
              excluded_agents: Any = None, budget_remaining: Any = None,
              willingness_to_pay: Any = None) -> RouteOptions:
        """Columns from scalars (broadcast) or columns of length n; raises InvalidArgument naming the argument.
        A row with a willingness to pay is routed by it, whatever its optimize_for."""
        if n == 1:  # one request (SQL hands over 1-row Arrow columns): Python values skip ~0.3 ms of Arrow kernels
            optimize_for, required_capabilities, max_cost, max_latency_ms, min_quality, excluded_agents, \
                budget_remaining, willingness_to_pay = (
                    _single_value(v) for v in (optimize_for, required_capabilities, max_cost, max_latency_ms,
                                               min_quality, excluded_agents, budget_remaining, willingness_to_pay))
        costs = as_float_column("max_cost", max_cost, n)
        check_nonnegative("max_cost", costs)
        latency = as_float_column("max_latency_ms", max_latency_ms, n)
        check_nonnegative("max_latency_ms", latency)
        quality = as_float_column("min_quality", min_quality, n)
        check_unit_interval("min_quality", quality)
        budget = as_float_column("budget_remaining", budget_remaining, n)  # negative means overspent: allowed
        wtp = as_float_column("willingness_to_pay", willingness_to_pay, n, allow_inf=True)
        check_nonnegative("willingness_to_pay", wtp)
        objective = objective_codes(optimize_for, n)
        valued = ~np.isnan(wtp)
        return cls(
            objective=np.where(valued, BY_VALUE, objective).astype(np.int8) if valued.any() else objective,
            max_cost=costs,
            max_latency_ms=latency,
            min_quality=quality,
            budget_remaining=budget,
            required_capabilities=string_lists("required_capabilities", required_capabilities, n),
            excluded_agents=string_lists("excluded_agents", excluded_agents, n),
            willingness_to_pay=wtp if valued.any() else None,
        )


#: Inputs of at most this many rows look their objective up in :data:`_KNOWN_CODES` (a one-request query would
#: otherwise spend ~40 µs in Arrow kernels that build a hash table for one string).
SMALL_BATCH = 64
#: optimize_for strings already resolved by the Arrow path -> their code (valid names only, bounded).
_KNOWN_CODES: dict[str | None, int] = {}


def _single_value(value: Any) -> Any:
    """The Python value of a one-row Arrow column (as a scalar argument would be given); anything else as is."""
    if isinstance(value, (pa.Array, pa.ChunkedArray)) and len(value) == 1:
        return value[0].as_py()
    return value


def objective_codes(optimize_for: Any, n: int) -> np.ndarray:
    """int8 (n,) objective indices; NULL means 'balanced'; an unknown name is an error naming it."""
    if isinstance(optimize_for, (pa.Array, pa.ChunkedArray)):
        values = optimize_for
    elif optimize_for is None or isinstance(optimize_for, str):
        if optimize_for in _KNOWN_CODES:  # one name for every row, seen before
            return np.full(n, _KNOWN_CODES[optimize_for], np.int8)
        values = pa.array([optimize_for] * n, pa.string())
    else:
        if not isinstance(optimize_for, (list, tuple, np.ndarray)) or not all(
                v is None or isinstance(v, str) for v in optimize_for):
            raise InvalidArgument("optimize_for", optimize_for, f"must be one of {', '.join(OBJECTIVE_NAMES)}")
        values = pa.array(list(optimize_for), pa.string())
    if len(values) != n:
        raise InvalidArgument("optimize_for", f"{len(values)} values", f"expected {n}")
    if n <= SMALL_BATCH and pa.types.is_string(values.type):
        raw = values.to_pylist()
        if all(v in _KNOWN_CODES for v in raw):
            return np.fromiter((_KNOWN_CODES[v] for v in raw), dtype=np.int8, count=n)
        codes = _objective_codes(values)
        if len(_KNOWN_CODES) < 256:
            _KNOWN_CODES.update(zip(raw, codes.tolist()))
        return codes
    return _objective_codes(values)


def _objective_codes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    values = values.cast(pa.string())
    lowered = pc.utf8_trim_whitespace(pc.utf8_lower(values)).fill_null("balanced")
    codes = pc.index_in(lowered, value_set=pa.array(OBJECTIVE_NAMES))
    if codes.null_count:
        bad = values.filter(codes.is_null())[0].as_py()
        raise InvalidArgument("optimize_for", bad, f"must be one of {', '.join(OBJECTIVE_NAMES)}")
    return np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.int8)


def string_lists(argument: str, values: Any, n: int) -> pa.ListArray | None:
    """A list<string> column of length n from None, one list (broadcast) or a column of lists."""
    if values is None:
        return None
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if isinstance(values, pa.Array):
        if pa.types.is_null(values.type):
            return None
        if not (pa.types.is_list(values.type) or pa.types.is_large_list(values.type)):
            raise InvalidArgument(argument, str(values.type), "must be a list of strings")
        column = values.cast(pa.list_(pa.string()))
    elif isinstance(values, str):
        raise InvalidArgument(argument, values, "must be a list of strings, e.g. ['code']")
    else:
        items = list(values)
        if all(isinstance(v, str) for v in items):
            items = [items] * n  # one list for every request
        try:
            column = pa.array(items, pa.list_(pa.string()))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            raise InvalidArgument(argument, values, "must be a list of strings") from None
    if len(column) != n:
        raise InvalidArgument(argument, f"{len(column)} values", f"expected {n}")
    if column.null_count == n:
        return None
    return column
