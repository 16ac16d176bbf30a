"""Matching a batch of queries against a route snapshot: pure numpy, no store (rules in :mod:`._routes`).

The query rows are scored in chunks of :data:`ROW_CHUNK`; each row's time and user tier remove the routes whose
conditions it fails, then per-minute rate limits are applied in row order across chunks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from tinydancer_duck._validate import as_column
from tinydancer_duck.embed import NullScores
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.options import TOP_K

from ._conditions import US_PER_MIN, rate_limit_pass
from ._kernels import (
    CONFIDENCE_TEMPERATURE,
    MATCH_TYPE,
    PRIORITY_MARGIN,
    ROW_CHUNK,
    RouteSnapshot,
    _softmax_at,
    decide,
    route_scores,
    top_k,
)


def match_routes(snap: RouteSnapshot, x: np.ndarray, valid: np.ndarray, ts_us: np.ndarray, tiers: np.ndarray, *,
                 k: int, carried: dict[tuple[int, int], int] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Routes of n queries that pass their conditions and threshold.

    x : float32 (n, D) unit rows; valid : bool (n,); ts_us : int64 (n,) each row's time (µs since the epoch);
    tiers : int (n,) user-tier codes (``RouteConditions.tier_codes``).
    carried : matches counted before this call per (route, UTC minute), for rate limits that hold across calls
        (the live ledger); updated in place with this call's matches.
    k == 0: the best route per row (route int64 (n,) or -1, similarity (n,), confidence (n,), NaN where none);
    k > 0: lists (n, k) of (route, similarity (-inf where absent), confidence), best first.
    """
    n = len(valid)
    width = min(k, snap.size) if k else 0
    shape = (n, width) if k else (n,)
    out_idx = np.full(shape, -1, np.int64)
    out_sim = np.full(shape, -np.inf if k else np.nan)
    out_conf = np.full(shape, np.nan)
    if snap.size == 0 or n == 0:
        return out_idx, out_sim, out_conf
    carried = {} if carried is None else carried
    for lo in range(0, n, ROW_CHUNK):
        hi = min(lo + ROW_CHUNK, n)
        scores, eligible, choice = _chunk(snap, x[lo:hi], valid[lo:hi], ts_us[lo:hi], tiers[lo:hi],
                                               carried)
        rows = np.arange(hi - lo)
        if not k:
            sim = np.where(choice >= 0, eligible[rows, np.maximum(choice, 0)], np.nan)
            out_idx[lo:hi], out_sim[lo:hi] = choice, sim
            out_conf[lo:hi] = np.where(choice >= 0, _confidence(snap, scores, np.nan_to_num(sim)[:, None],
                                                                 choice[:, None])[:, 0], np.nan)
            continue
        idx, sim = top_k(eligible, width)
        if width:
            missing = (choice >= 0) & ~(idx == choice[:, None]).any(axis=1)
            idx[missing, -1] = choice[missing]
            sim[missing, -1] = eligible[missing, choice[missing]]
            # best first, then by similarity; absent (-inf) entries last (they may repeat a column)
            key = np.where(np.isfinite(sim), np.where(idx == choice[:, None], -2.0, -sim), 2.0)
            order = np.argsort(key, axis=1, kind="stable")
            idx, sim = np.take_along_axis(idx, order, axis=1), np.take_along_axis(sim, order, axis=1)
        out_idx[lo:hi], out_sim[lo:hi] = idx, sim
        out_conf[lo:hi] = _confidence(snap, scores, np.where(np.isfinite(sim), sim, -np.inf), idx)
    return out_idx, out_sim, out_conf


def _confidence(snap: RouteSnapshot, scores: np.ndarray, values: np.ndarray, routes: np.ndarray) -> np.ndarray:
    """How sure a match is: its softmax weight among the routes that pass their conditions (which route), times
    the share of unrelated text scoring below it against a route of its size (whether any route at all: near the
    threshold, unrelated text scores as high, so the confidence is low). values, routes : (n, w)."""
    chance = np.zeros(values.shape)
    null_of = snap.null_of[np.maximum(routes, 0)]
    for i, null in enumerate(snap.nulls):
        mine = null_of == i
        if mine.any():
            chance[mine] = NullScores(null).tail(np.where(np.isfinite(values[mine]), values[mine], 1.0))
    return (_softmax_at(scores, values, CONFIDENCE_TEMPERATURE) * (1.0 - chance)).astype(np.float32)


def _chunk(snap: RouteSnapshot, x: np.ndarray, valid: np.ndarray, ts_us: np.ndarray, tiers: np.ndarray,
           carried: dict[tuple[int, int], int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores after conditions (c, R), eligible = scores above threshold else -inf, best route (c,))."""
    scores = route_scores(x, snap.vectors, snap.starts)
    scores[~valid] = -np.inf
    cond = snap.conditions
    columns = cond.conditioned
    if len(columns):
        block = scores[:, columns]
        block[~cond.allowed(ts_us, tiers, columns)] = -np.inf
        scores[:, columns] = block
    eligible = np.where((scores >= snap.threshold) | leads(scores, snap), scores, -np.inf)
    choice = decide(eligible, snap.priority, PRIORITY_MARGIN)
    limited = cond.limited
    if len(limited):
        minute = ts_us // US_PER_MIN
        # Fixed point: a row over a route's per-minute limit loses that route and re-chooses; a lost route
        # never comes back, so this ends, and equals taking the rows one by one in order.
        while True:
            changed = False
            for r in limited:
                over, _ = rate_limit_pass(choice, minute, int(r), int(cond.rate_limit[r]), carried)
                if over.any():
                    eligible[over, r] = scores[over, r] = -np.inf
                    changed = True
            if not changed:
                break
            choice = decide(eligible, snap.priority, PRIORITY_MARGIN)
        for r in limited:
            _, exhausted = rate_limit_pass(choice, minute, int(r), int(cond.rate_limit[r]), carried)
            eligible[exhausted, r] = scores[exhausted, r] = -np.inf
            used, counts = np.unique(minute[choice == r], return_counts=True)
            for m, c in zip(used.tolist(), counts.tolist()):
                carried[(int(r), m)] = carried.get((int(r), m), 0) + c
    return scores, eligible, choice


def leads(scores: np.ndarray, snap: RouteSnapshot) -> np.ndarray:
    """bool (c, R): the row's most similar route, where it leads the next by at least ``snap.lead`` and reaches its
    lead threshold: a request far closer to one route than to any other is that route's even at a low similarity
    ('How do I reset my password?' is 0.19 from customer support, 3.5x its 0.05 from technical docs)."""
    out = np.zeros(scores.shape, bool)
    if scores.shape[1] < 2 or not np.isfinite(snap.lead):
        return out
    rows = np.arange(len(scores))
    best = scores.argmax(axis=1)
    top = scores[rows, best]
    rest = scores.copy()
    rest[rows, best] = -np.inf
    with np.errstate(invalid="ignore"):  # a row with every route removed: -inf - -inf
        ahead = (top - rest.max(axis=1) >= snap.lead) & (top >= snap.lead_threshold[best])
    out[rows[ahead], best[ahead]] = True
    return out


def matches_arrow(snap: RouteSnapshot, idx: np.ndarray, sim: np.ndarray, conf: np.ndarray,
                  registered: np.ndarray) -> pa.ListArray:
    """LIST<MATCH_TYPE> per row from :func:`match_routes` lists (absent entries have similarity -inf).

    registered : bool (R,) whether each route's target is a registered agent.
    """
    listed = np.isfinite(sim)
    offsets = np.r_[0, np.cumsum(listed.sum(axis=1))].astype(np.int32)
    take = pa.array(idx[listed], pa.int64())
    values = pa.StructArray.from_arrays(
        [snap.names.take(take), pa.array(sim[listed].astype(np.float64)), snap.targets.take(take),
         pa.array(conf[listed].astype(np.float64)), pa.array(registered).take(take)], fields=list(MATCH_TYPE))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


# -- arguments ---------------------------------------------------------------------------------------------------
def user_tiers(values: Any, n: int) -> pa.Array | None:
    """The ``user_tier`` argument as a string column of n rows (one tier broadcast), or None."""
    if values is None:
        return None
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array([values] * n if isinstance(values, str) else as_column("user_tier", values, n), pa.string())
    if len(values) != n:
        raise InvalidArgument("user_tier", f"{len(values)} values", f"expected {n}")
    return values


def check_top_k(top_k: Any) -> int:
    """One top_k for the batch (a column must hold one value; NULL: the default), as declared."""
    return TOP_K.value(top_k)
