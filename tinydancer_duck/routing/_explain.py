"""Reasoning strings for routing decisions, formatted once per distinct situation in a batch.

A batch of a million rows usually holds a handful of situations (objective, winner, who was removed by what), so
the strings are built per distinct situation and spread with an Arrow ``take``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


def explain(valid: np.ndarray, objective: np.ndarray, winner: np.ndarray, no_evidence: np.ndarray,
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
    columns = [valid, objective, winner + 1, no_evidence, n_candidates,
               zeros if semantic is None else semantic, zeros if route is None else route + 1]
    names = snapshot.name_list()
    if n == 1:  # one request: its key as Python ints, without stacking a (1, k) matrix
        text = _reason([int(c[0]) for c in columns] + reasons[0].tolist(), names, route_names)
        return pa.array([text.replace(DETAIL, "" if detail is None else detail[0].as_py())], pa.string())
    texts = format_once(np.column_stack([*columns, reasons]), lambda row: _reason(row.tolist(), names, route_names))
    if detail is None:
        return pc.replace_substring(texts, DETAIL, "")
    parts = pc.split_pattern(texts, DETAIL)
    return pc.binary_join_element_wise(pc.list_element(parts, 0), detail, pc.list_element(parts, 1), "")


#: What a winner's probability of serving rests on (:func:`winner_detail`): no candidate had any evidence (the
#: objective alone decided); a general agent's share of what no specialist claims; a specialist's match on one of
#: its phrases or examples; a signal (a capability classifier's probability).
NO_EVIDENCE, GENERAL, MATCHED, SIGNALLED = 0, 1, 2, 3
#: How much of a request the embedder read (:class:`Reading`): all of it, part (its evidence weighs less), too little
#: (no evidence: priors only).
READ, PART_READ, UNREAD = 0, 1, 2


@dataclass(frozen=True)
class Reading:
    """Per request: int8 (n,) READ / PART_READ / UNREAD, float (n,) the tokens known (a token of a word read as
    pieces counts half) and int (n,) all tokens."""

    state: np.ndarray
    known: np.ndarray
    total: np.ndarray

    @staticmethod
    def of(weight: np.ndarray | None, known: np.ndarray | None, total: np.ndarray | None) -> Reading | None:
        """From :func:`~tinydancer_duck.routing._evidence.reading_weight` (None: embeddings, read in full)."""
        if weight is None or known is None or total is None or (weight >= 1).all():
            return None
        state = np.where(weight <= 0, UNREAD, np.where(weight < 1, PART_READ, READ)).astype(np.int8)
        return Reading(state, np.asarray(known, np.float64), np.asarray(total, np.int64))


def one_detail(case: int, state: int, p: str, similarity: str, label: str, known: str, total: str, cost: str,
               latency: str, quality: str) -> str:
    """One winner's detail, the text :func:`winner_detail` builds for a batch, from its numbers already written as
    text (:func:`few_number`). Takes many parameters because each is one of the numbers the sentence states."""
    claim = {NO_EVIDENCE: "no evidence", GENERAL: f"P(serve) {p} as a general agent",
             MATCHED: f"P(serve) {p} from '{label}', similarity {similarity}", SIGNALLED: f"P(serve) {p}"}[case]
    if state == UNREAD:
        claim = f"no evidence: {known} of {total} tokens known" + (f", {claim}" if case == GENERAL else "")
    elif state == PART_READ:
        claim += f" ({known} of {total} tokens known)"
    return f": {claim}, cost {cost}x the cheapest, latency {latency}x the fastest, quality {quality}"


def winner_detail(winner: np.ndarray, case: np.ndarray, p_serve: np.ndarray, similarity: np.ndarray,
                  labels: pa.Array, reading: Reading | None, cost_ratio: np.ndarray, latency_ratio: np.ndarray,
                  quality: np.ndarray) -> pa.Array:
    """Per request, the winner's evidence and numbers, in the words ``scores`` uses: ": P(serve) 0.91 from 'credit
    cards', similarity 0.58, cost 1.3x the cheapest, latency 2x the fastest, quality 0.92"; a general agent's
    "P(serve) 0.97 as a general agent"; "no evidence" where no candidate had any; a request read in part says
    "(6 of 9 tokens known)", one read too little to be evidence "no evidence: 0 of 3 tokens known". Empty without
    a winner. Built with Arrow kernels, so a million different numbers cost no Python loop: the most common kind of
    claim for every row, the others only for their own rows, patched in (a batch usually holds one or two kinds, and
    few requests read in part); :func:`one_detail` writes the same text for one request. Takes many parameters
    because each is one of the winner's numbers the sentence states.

    case : int8 (n,) :data:`NO_EVIDENCE`... ; p_serve, similarity, cost_ratio, latency_ratio, quality : float (n,)
    of the winner; labels : what its similarity came from (a capability, "description: ...", "example: ...").
    """
    state = np.zeros(len(winner), np.int8) if reading is None else reading.state

    def number(values: np.ndarray, decimals: int) -> pa.Array:
        return pc.cast(pc.round(pa.array(np.asarray(values, np.float64)), decimals), pa.string())

    def join(*parts: pa.Array | str) -> pa.Array:
        return pc.binary_join_element_wise(*parts, "")

    def claim_of(code: int, rows: np.ndarray | None) -> pa.Array:
        pick = (lambda values: values if rows is None else values[rows])
        p = number(pick(p_serve), 2)
        if code == NO_EVIDENCE:
            return pa.array(np.full(len(p), "no evidence"), pa.string())
        if code == GENERAL:
            return join("P(serve) ", p, " as a general agent")
        if code == MATCHED:
            named = labels if rows is None else labels.take(pa.array(rows, pa.int64()))
            return join("P(serve) ", p, " from '", named, "', similarity ", number(pick(similarity), 2))
        return join("P(serve) ", p)

    codes, counts = np.unique(case, return_counts=True)
    common = int(codes[np.argmax(counts)])
    claim = claim_of(common, None)
    for code in codes.tolist():
        if code != common:
            claim = _patched(claim, case == code, lambda rows, code=code: claim_of(code, rows))
    if reading is not None:
        def counted(rows: np.ndarray) -> pa.Array:
            return join(number(reading.known[rows], 1), " of ", pc.cast(pa.array(reading.total[rows]), pa.string()),
                        " tokens known")

        def unread(rows: np.ndarray) -> pa.Array:
            general = pa.array(case[rows] == GENERAL)
            return join("no evidence: ", counted(rows), pc.if_else(general, join(", ", claim_of(GENERAL, rows)), ""))

        claim = _patched(claim, state == PART_READ,
                         lambda rows: join(claim.take(pa.array(rows, pa.int64())), " (", counted(rows), ")"))
        claim = _patched(claim, state == UNREAD, unread)
    out = join(": ", claim, ", cost ", number(cost_ratio, 1), "x the cheapest, latency ", number(latency_ratio, 1),
               "x the fastest, quality ", number(quality, 2))
    return out if (winner >= 0).all() else pc.if_else(pa.array(winner >= 0), out, "")


def _patched(values: pa.Array, mask: np.ndarray, make: Callable[[np.ndarray], pa.Array]) -> pa.Array:
    """``values`` with the rows of ``mask`` replaced by ``make(those rows)`` (built for those rows only)."""
    if not mask.any():
        return values
    return pc.replace_with_mask(values, pa.array(mask), make(np.flatnonzero(mask)))


#: Up to this many requests, details are joined in Python (:func:`one_detail`, :func:`few_number`): a dozen Arrow
#: kernel calls on one-row arrays cost more (~0.4 ms) than the decision. Both paths give the same text.
FEW_ROWS = 16


def few_number(value: float, decimals: int) -> str:
    """One number as the Arrow path formats it, in Python where that is provably the same text: finite, below 1e9
    (Arrow writes larger ones with an exponent) and not near a rounding tie (where Arrow's rounding of the decimal
    digits and Python's of the binary value may differ); else Arrow's."""
    scaled = abs(value) * 10.0 ** decimals
    if math.isfinite(value) and abs(value) < 1e9 and abs(scaled - math.floor(scaled) - 0.5) > 1e-6:
        return repr(round(value, decimals)).removesuffix(".0")
    return pc.cast(pc.round(pa.array([value], pa.float64()), decimals), pa.string())[0].as_py()


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


def _reason(key: list[int], names: list[str], route_names: Sequence[str]) -> str:
    valid, objective, winner, no_evidence, n_candidates, semantic, route = key[:7]
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
    if no_evidence:
        text += " (no candidate has evidence of serving this request; the objective alone decided)"
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
