"""Reasoning strings for routing decisions, formatted once per distinct situation in a batch.

A batch of a million rows usually holds a handful of situations (objective, winner, who was removed by what), so
the strings are built per distinct situation and spread with an Arrow ``take``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.registry import AgentSnapshot

from ._candidates import CONSTRAINTS
from ._options import OBJECTIVE_LABELS

_MAX_NAMED = 5  # removed agents named in a reasoning before "+N more"
#: What the matched semantic route did for a request (``router.semantic_status``): no route matched; a route decided;
#: its target is not a registered agent; its target is registered but not a candidate (inactive, open circuit or
#: removed by a constraint).
NO_ROUTE, ROUTE_DECIDED, ROUTE_TARGET_UNKNOWN, ROUTE_TARGET_REMOVED = 0, 1, 2, 3


#: Where a decision's own numbers go in the text of its situation.
DETAIL = "\x1f"


def explain(valid: np.ndarray, objective: np.ndarray, winner: np.ndarray, no_signal: np.ndarray,
            reasons: np.ndarray, n_candidates: np.ndarray, snapshot: AgentSnapshot, *,
            semantic: np.ndarray | None = None, route: np.ndarray | None = None,
            route_names: Sequence[str] = (), detail: pa.Array | None = None) -> pa.Array:
    """One reasoning string per request: the situation (formatted once per distinct one) with the decision's own
    numbers (``detail``, one string per request, e.g. from :func:`winner_detail`) after the winner. Takes many
    parameters because each is one column of the situation key the strings are formatted from.

    semantic, route : int (n,) semantic-route status (:data:`NO_ROUTE`...) and matched route index, if routes were used.
    """
    n = len(valid)
    if n == 0:
        return pa.array([], pa.string())
    zeros = np.zeros(n, np.int32)
    columns = [valid, objective, winner + 1, no_signal, n_candidates,
               zeros if semantic is None else semantic, zeros if route is None else route + 1]
    names = snapshot.name_list()
    threshold = snapshot.match_threshold
    if n == 1:  # one request: its key as Python ints, without stacking a (1, k) matrix
        text = _reason([int(c[0]) for c in columns] + reasons[0].tolist(), names, route_names, threshold)
        return pa.array([text.replace(DETAIL, "" if detail is None else detail[0].as_py())], pa.string())
    texts = format_once(np.column_stack([*columns, reasons]),
                        lambda row: _reason(row.tolist(), names, route_names, threshold))
    if detail is None:
        return pc.replace_substring(texts, DETAIL, "")
    parts = pc.split_pattern(texts, DETAIL)
    return pc.binary_join_element_wise(pc.list_element(parts, 0), detail, pc.list_element(parts, 1), "")


def winner_detail(winner: np.ndarray, no_signal: np.ndarray, similarity: np.ndarray, labels: pa.Array | None,
                  cost_ratio: np.ndarray, latency_ratio: np.ndarray, quality: np.ndarray) -> pa.Array:
    """Per request, the winner's numbers: ": match 0.61 on 'credit cards', cost 1.3x the cheapest, latency 2x the
    fastest, quality 0.92" (no match part when no capability matched; empty without a winner). Built with Arrow
    kernels, so a million-row batch with a million different numbers costs no Python loop.

    similarity, cost_ratio, latency_ratio, quality : float (n,) of the winner; labels : what it matched on (or None).
    """
    def number(values: np.ndarray, decimals: int) -> pa.Array:
        return pc.cast(pc.round(pa.array(np.asarray(values, np.float64)), decimals), pa.string())

    if len(winner) <= FEW_ROWS:
        return _few_details(winner, no_signal, labels, few_numbers(np.r_[similarity, quality], 2),
                            few_numbers(np.r_[cost_ratio, latency_ratio], 1))
    matched = pc.binary_join_element_wise(": match ", number(similarity, 2), "" if labels is None else
                                          pc.binary_join_element_wise(" on '", labels, "'", ""), ", ", "")
    unmatched = pa.array(np.full(len(winner), ": "), pa.string())
    text = pc.binary_join_element_wise(
        pc.if_else(pa.array(no_signal), unmatched, matched), "cost ", number(cost_ratio, 1), "x the cheapest, latency ",
        number(latency_ratio, 1), "x the fastest, quality ", number(quality, 2), "")
    return pc.if_else(pa.array(winner >= 0), text, pa.array(np.full(len(winner), ""), pa.string()))


#: Up to this many requests, details are joined in Python: a dozen Arrow kernel calls on one-row arrays cost more
#: (~0.4 ms) than the decision. The numbers are still formatted by Arrow, so both paths give the same text.
FEW_ROWS = 16


def few_numbers(values: np.ndarray, decimals: int) -> list[str]:
    """A few numbers as the Arrow path formats them (``cast(round(x, decimals), string)``), in Python where that is
    provably the same text: finite, below 1e9 (Arrow writes larger ones with an exponent) and not near a rounding
    tie (where Arrow's rounding of the decimal digits and Python's of the binary value may differ); else Arrow's."""
    values = np.asarray(values, np.float64)
    scaled = np.abs(values) * 10.0 ** decimals
    if not (np.isfinite(values).all() and (np.abs(values) < 1e9).all()
            and (np.abs(scaled - np.floor(scaled) - 0.5) > 1e-6).all()):
        return pc.cast(pc.round(pa.array(values), decimals), pa.string()).to_pylist()
    return [text.removesuffix(".0") for text in map(repr, (round(v, decimals)
                                                                              for v in values.tolist()))]


def _few_details(winner: np.ndarray, no_signal: np.ndarray, labels: pa.Array | None, two: list[str],
                 one: list[str]) -> pa.Array:
    """:func:`winner_detail` for a few requests; ``two``: similarity then quality as text, ``one``: cost then
    latency ratios. A NULL label makes the detail NULL, as Arrow's join does."""
    n, named = len(winner), None if labels is None else labels.to_pylist()
    out: list[str | None] = []
    for i in range(n):
        if winner[i] < 0:
            out.append("")
            continue
        if no_signal[i]:
            head = ": "
        elif named is not None and named[i] is None:
            out.append(None)
            continue
        else:
            head = f": match {two[i]}" + ("" if named is None else f" on '{named[i]}'") + ", "
        out.append(f"{head}cost {one[i]}x the cheapest, latency {one[n + i]}x the fastest, quality {two[n + i]}")
    return pa.array(out, pa.string())


def format_once(key: np.ndarray, describe: Callable[[np.ndarray], str]) -> pa.Array:
    """``describe(key[i])`` for every row i, calling ``describe`` once per distinct row of the int32 (n, k) key."""
    n = len(key)
    key = np.ascontiguousarray(key, dtype=np.int32)
    if n == 0:
        return pa.array([], pa.string())
    if n == 1:  # one request (a one-row SQL query): no take
        return pa.array([describe(key[0])], pa.string())
    if (key == key[0]).all():  # the usual batch: one situation for every row
        return pa.array([describe(key[0])], pa.string()).take(pa.array(np.zeros(n, np.int64)))
    rows_as_bytes = key.view(np.dtype((np.void, key.itemsize * key.shape[1]))).reshape(n)
    _, first, inverse = np.unique(rows_as_bytes, return_index=True, return_inverse=True)
    texts = [describe(key[i]) for i in first]
    return pa.array(texts, pa.string()).take(pa.array(inverse.reshape(-1), pa.int64()))


def _reason(key: list[int], names: list[str], route_names: Sequence[str], threshold: float) -> str:
    valid, objective, winner, no_signal, n_candidates, semantic, route = key[:7]
    codes = key[7:]
    if not valid:
        return "no agent: the request is NULL or empty" + DETAIL
    if not names:
        return "no agent: no agents are registered" + DETAIL
    removed = [(names[a], CONSTRAINTS[c - 1]) for a, c in enumerate(codes) if c]
    listed = ", ".join(f"{name} ({why})" for name, why in removed[:_MAX_NAMED])
    if len(removed) > _MAX_NAMED:
        listed += f", +{len(removed) - _MAX_NAMED} more"
    prefix = _semantic_prefix(semantic, route_names[route - 1] if route else "")
    if semantic == ROUTE_DECIDED:
        return f"{prefix} decided: {names[winner - 1]}" + DETAIL
    if winner == 0:
        emptied = CONSTRAINTS[max(codes) - 1]
        return f"{prefix}no agent: {emptied} removed the last candidate; removed: {listed}" + DETAIL
    label = OBJECTIVE_LABELS[objective]
    text = (f"{prefix}{names[winner - 1]} best by {_OBJECTIVE_WORDS.get(label, label)} among {n_candidates} "
            f"candidate{'s' if n_candidates != 1 else ''}" + DETAIL)
    if no_signal and label not in _OBJECTIVE_WORDS:  # a willingness to pay never weighs the match
        text += f" (no capability cleared the match threshold {threshold:.2f}; the objective alone decided)"
    if removed:
        text += f"; removed: {listed}"
    return text


#: How a reasoning names an objective that is not a single word.
_OBJECTIVE_WORDS = {"willingness_to_pay": "expected quality - cost / willingness_to_pay"}

_SEMANTIC_PREFIX = {
    NO_ROUTE: "",
    ROUTE_DECIDED: "semantic route {!r}",
    ROUTE_TARGET_UNKNOWN: "semantic route {!r} matched but its target is not a registered agent; ",
    ROUTE_TARGET_REMOVED: "semantic route {!r} matched but its target is not a candidate; ",
}


def _semantic_prefix(semantic: int, route_name: str) -> str:
    return _SEMANTIC_PREFIX[semantic].format(route_name)
