"""The routing options as n-row columns: what the router reads, built once per call from a
:class:`~tinydancer_duck.options.RouteOptions` (validated where it was made), so the router never branches on
whether a value was one for every request or one per request, nor on where the call came from."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa

from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.options import OBJECTIVE_NAMES, RouteOptions

#: The objective of a request routed by a willingness to pay (argmax expected quality - cost / willingness_to_pay);
#: ``learned`` becomes it once the outcome router's calibrated willingness to pay is filled in.
BY_VALUE = len(OBJECTIVE_NAMES)
LEARNED = OBJECTIVE_NAMES.index("learned")
BALANCED = OBJECTIVE_NAMES.index("balanced")
#: How a decision names its objective (OBJECTIVE_NAMES, then the willingness-to-pay value).
OBJECTIVE_LABELS = (*OBJECTIVE_NAMES, "willingness_to_pay")


@dataclass(frozen=True)
class OptionColumns:
    """Constraints and objective for n requests.

    objective : int8 (n,), an index into OBJECTIVE_LABELS (BY_VALUE where a willingness to pay decides).
    max_cost, max_latency_ms, min_quality, budget_remaining : float64 (n,), NaN where unconstrained.
    willingness_to_pay : float64 (n,) dollars per unit of expected quality, NaN where the objective decides; None
        when no request has one.
    required_capabilities, excluded_agents : list<string> Arrow arrays of length n, or None when unused.
    explore : float64 (n,) the probability of drawing the agent among the candidates, or None when no request
        explores; explore_seed : the draws' seed (:mod:`tinydancer_duck.routing._explore`).
    """

    objective: np.ndarray
    max_cost: np.ndarray
    max_latency_ms: np.ndarray
    min_quality: np.ndarray
    budget_remaining: np.ndarray
    required_capabilities: pa.ListArray | None
    excluded_agents: pa.ListArray | None
    willingness_to_pay: np.ndarray | None = None
    explore: np.ndarray | None = None
    explore_seed: int = 0

    @classmethod
    def of(cls, options: RouteOptions, n: int) -> OptionColumns:
        """The options of n requests: a value given once is repeated, a column must hold n values. A row with a
        willingness to pay is routed by it, whatever its optimize_for."""
        wtp = _numbers("willingness_to_pay", options.willingness_to_pay, n)
        objective = _objectives(options.optimize_for, n)
        valued = ~np.isnan(wtp)
        explore = np.nan_to_num(_numbers("explore", options.explore, n))
        return cls(
            objective=np.where(valued, BY_VALUE, objective).astype(np.int8) if valued.any() else objective,
            max_cost=_numbers("max_cost", options.max_cost, n),
            max_latency_ms=_numbers("max_latency_ms", options.max_latency_ms, n),
            min_quality=_numbers("min_quality", options.min_quality, n),
            budget_remaining=_numbers("budget_remaining", options.budget_remaining, n),
            required_capabilities=_lists("required_capabilities", options.required_capabilities, n),
            excluded_agents=_lists("excluded_agents", options.excluded_agents, n),
            willingness_to_pay=wtp if valued.any() else None,
            explore=explore if explore.any() else None,
            explore_seed=options.explore_seed,
        )

    def refuse_exploring(self, what: str) -> None:
        """An error naming ``explore`` when it is asked of a decision that cannot explore (``what``)."""
        if self.explore is not None:
            raise InvalidArgument("explore", float(self.explore.max()), f"applies to a single decision "
                                  f"(ruvector_route), not to {what}")

    def take(self, rows: np.ndarray) -> OptionColumns:
        """The options of a subset of the requests."""
        index = pa.array(rows, pa.int64())
        lists = (lambda column: None if column is None else column.take(index))
        per_row = (lambda column: None if column is None else column[rows])
        return OptionColumns(self.objective[rows], self.max_cost[rows], self.max_latency_ms[rows],
                             self.min_quality[rows], self.budget_remaining[rows],
                             lists(self.required_capabilities), lists(self.excluded_agents),
                             per_row(self.willingness_to_pay), per_row(self.explore), self.explore_seed)

    def with_willingness_to_pay(self, value: float) -> OptionColumns:
        """The options with ``optimize_for='learned'`` rows routed by ``value`` (the outcome router's calibrated
        willingness to pay)."""
        learned = self.objective == LEARNED
        if not learned.any():
            return self
        wtp = np.full(len(self.objective), np.nan) if self.willingness_to_pay is None else self.willingness_to_pay
        return replace(self, objective=np.where(learned, BY_VALUE, self.objective).astype(np.int8),
                       willingness_to_pay=np.where(learned, value, wtp))


def _length(name: str, column: Any, n: int) -> None:
    if len(column) != n:
        raise InvalidArgument(name, f"{len(column)} values", f"expected {n}, one per request")


def _numbers(name: str, value: Any, n: int) -> np.ndarray:
    """float64 (n,) from None (NaN), one number, or a checked float64 column."""
    if value is None:
        return np.full(n, np.nan)
    if isinstance(value, np.ndarray):
        _length(name, value, n)
        return value
    return np.full(n, float(value))


def _objectives(value: Any, n: int) -> np.ndarray:
    """int8 (n,) objective codes from one normalized name or a column of codes (-1, NULL: balanced)."""
    if isinstance(value, np.ndarray):
        _length("optimize_for", value, n)
        return np.where(value < 0, BALANCED, value).astype(np.int8)
    return np.full(n, OBJECTIVE_NAMES.index(value), np.int8)


def _lists(name: str, value: Any, n: int) -> pa.ListArray | None:
    """list<string> (n,) from None, one list (every request), or a checked column of lists."""
    if value is None:
        return None
    if isinstance(value, pa.Array):
        _length(name, value, n)
        return value
    items = list(value)
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * len(items), pa.int32())
    return pa.ListArray.from_arrays(offsets, pa.array(items * n, pa.string()))
