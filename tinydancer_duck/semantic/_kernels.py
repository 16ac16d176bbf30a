"""Semantic-match kernels and the route snapshot: pure numpy over a picklable snapshot (no I/O, no DuckDB).

See :mod:`tinydancer_duck.semantic._routes` for the matching rules; the benchmark times :func:`match_top_k`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.embed import ROUTE_LEAD, ROUTE_LEAD_LEVEL, ROUTE_LEVEL, Background

from ._conditions import RouteConditions, build_conditions

CONFIDENCE_TEMPERATURE = 0.05
PRIORITY_MARGIN = 0.01
ROW_CHUNK = 2048
#: rows per block in :func:`match_top_k`: a (1024, 1K) float32 score block stays in L2/L3 for top-k and exp.
KERNEL_CHUNK = 1024
ARGMAX_TOP_K = 16
MATCH_TYPE = pa.struct([("route_name", pa.string()), ("similarity", pa.float64()), ("target_agent", pa.string()),
                        ("confidence", pa.float64()), ("target_registered", pa.bool_())])


# -- kernels (pure numpy) ---------------------------------------------------------------------------------------
def route_scores(queries: np.ndarray, vectors: np.ndarray, starts: np.ndarray | None) -> np.ndarray:
    """Max cosine per route: float32 (n, R) from queries (n, D) and vectors (M, D) grouped by route.

    starts : int64 (R,) first vector row of each route (vectors sorted by route), or None when M == R.
    """
    scores = queries @ vectors.T
    return scores if starts is None else np.maximum.reduceat(scores, starts, axis=1)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest entries per row, in descending order: (int64 (n, k) columns, float32 (n, k) values).

    For k <= :data:`ARGMAX_TOP_K`, k passes of argmax (masking each winner, then restoring it): measured ~0.3 µs/row
    for top-3 of 1K, against ~8 µs/row for ``np.argpartition`` (which is used for larger k). ``scores`` is left
    unchanged. Ties go to the lowest column.
    """
    n, r = scores.shape
    k = min(k, r)
    if k == 0:
        return np.zeros((n, 0), np.int64), np.zeros((n, 0), scores.dtype)
    if k <= ARGMAX_TOP_K:
        rows = np.arange(n)
        idx = np.empty((n, k), np.int64)
        values = np.empty((n, k), scores.dtype)
        for j in range(k):
            idx[:, j] = scores.argmax(axis=1)
            values[:, j] = scores[rows, idx[:, j]]
            scores[rows, idx[:, j]] = -np.inf
        for j in reversed(range(k)):  # reversed: a row with fewer than k finite scores repeats a column
            scores[rows, idx[:, j]] = values[:, j]
        return idx, values
    part = np.argpartition(scores, r - k, axis=1)[:, r - k:] if k < r else \
        np.broadcast_to(np.arange(r), scores.shape).copy()
    values = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(values, order, axis=1)


def match_top_k(queries: np.ndarray, vectors: np.ndarray, k: int, *, starts: np.ndarray | None = None,
                temperature: float = CONFIDENCE_TEMPERATURE, chunk: int = KERNEL_CHUNK
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unconditioned top-k match of n queries: (route (n, k) int64, similarity (n, k) float32, confidence (n, k)).

    The kernel the benchmark times: GEMM + per-route max + top-k + softmax confidence over all routes, chunked
    over rows so the (chunk, R) score block bounds memory; the softmax runs in place on that block.
    """
    n, r = len(queries), (len(starts) if starts is not None else len(vectors))
    k = min(k, r)
    idx, sim, conf = np.empty((n, k), np.int64), np.empty((n, k), np.float32), np.empty((n, k), np.float32)
    scale = np.float32(1.0 / temperature)
    for lo in range(0, n, chunk):
        s = route_scores(queries[lo:lo + chunk], vectors, starts)
        i, v = top_k(s, k)
        top = v[:, :1]
        s -= top
        s *= scale
        np.exp(s, out=s)
        idx[lo:lo + chunk], sim[lo:lo + chunk] = i, v
        conf[lo:lo + chunk] = np.exp((v - top) * scale) / s.sum(axis=1, keepdims=True)
    return idx, sim, conf


def _softmax_at(scores: np.ndarray, values: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(scores / T) evaluated at ``values`` (entries of the same rows); -inf scores count as absent."""
    top = scores.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    total = np.exp((scores - top) / temperature).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.exp((values - top) / temperature) / total, 0.0).astype(np.float32)


def decide(scores: np.ndarray, priority: np.ndarray, margin: float) -> np.ndarray:
    """Best route per row among finite scores: within ``margin`` of the top, highest priority, then highest score,
    then lowest index. int64 (n,), -1 where no score is finite."""
    top = scores.max(axis=1, keepdims=True) if scores.shape[1] else np.full((len(scores), 1), -np.inf)
    near = np.isfinite(scores) & (scores >= top - margin)
    key = np.where(near, priority[None, :] * 4.0 + scores, -np.inf)  # scores lie in [-1, 1]: span < 4
    best = np.argmax(key, axis=1) if scores.shape[1] else np.zeros(len(scores), np.int64)
    return np.where(np.isfinite(top[:, 0]), best, -1).astype(np.int64)


# -- snapshot ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RouteSnapshot:
    """The R routes (sorted by name) and their M >= R vectors, as numpy; picklable, no store handle.

    vectors : float32 (M, D) unit rows sorted by route; starts : int64 (R,) first row per route, None if M == R.
    priority : float64 (R,); threshold : float32 (R,): min_similarity where fitted (``fitted``), else the calibrated
    default (-inf before calibration). examples : int64 (R,) example utterances per route.
    lead_threshold : float32 (R,) the lower similarity at which a route that leads every other route by ``lead``
        (similarity) still matches (+inf for a fitted route, whose min_similarity is the whole rule, and before
        calibration).
    nulls, null_of : what unrelated text scores against a route of k vectors (embed._calibration.TextNull), one sorted
        float32 array per distinct k, and the index into ``nulls`` of each route's; for the confidence.
    target_codes : int (R,) equal for routes with the same target (to tell a runner-up to another target).
    """

    table: pa.Table
    names: pa.Array
    targets: pa.Array
    index: dict[str, int]
    vectors: np.ndarray
    starts: np.ndarray | None
    priority: np.ndarray
    threshold: np.ndarray
    lead_threshold: np.ndarray
    lead: float
    examples: np.ndarray
    conditions: RouteConditions
    fitted: np.ndarray
    nulls: tuple[np.ndarray, ...]
    null_of: np.ndarray
    target_codes: np.ndarray

    @property
    def size(self) -> int:
        return len(self.names)


def build_route_snapshot(routes: pa.Table, examples: pa.Table, dim: int) -> RouteSnapshot:
    """Arrays from the ``routes`` and ``route_examples`` tables (examples of unknown routes are ignored)."""
    if routes.num_rows:
        routes = routes.take(pc.sort_indices(routes["name"]))
    routes = routes.combine_chunks()
    r = routes.num_rows
    names = routes["name"].chunk(0) if r else pa.array([], pa.string())
    index = {name: i for i, name in enumerate(names.to_pylist())}
    own = _matrix(routes["embedding"], dim)
    owner = pc.index_in(examples["route"], value_set=names) if examples.num_rows else pa.array([], pa.int32())
    keep = owner.is_valid()
    ex_owner = np.asarray(owner.filter(keep).to_numpy(zero_copy_only=False), np.int64)
    ex_vectors = _matrix(examples["embedding"].filter(keep), dim) if len(ex_owner) else np.zeros((0, dim), np.float32)
    counts = np.bincount(ex_owner, minlength=r)
    if len(ex_owner):
        all_owner = np.concatenate([np.arange(r), ex_owner])
        order = np.argsort(all_owner, kind="stable")
        vectors = np.ascontiguousarray(np.concatenate([own, ex_vectors])[order])
        starts = np.r_[0, np.cumsum(counts + 1)[:-1]].astype(np.int64)
    else:
        vectors, starts = own, None
    min_sim = np.asarray(routes["min_similarity"].to_numpy(zero_copy_only=False), np.float64) if r else np.zeros(0)
    return RouteSnapshot(
        table=routes,
        names=names,
        targets=routes["target_agent"].chunk(0) if r else pa.array([], pa.string()),
        index=index,
        vectors=vectors,
        starts=starts,
        priority=np.asarray(routes["priority"].fill_null(0).to_numpy(zero_copy_only=False), np.float64) if r
        else np.zeros(0),
        threshold=np.where(np.isnan(min_sim), -np.inf, min_sim).astype(np.float32),
        lead_threshold=np.full(r, np.inf, np.float32),
        lead=float("inf"),
        examples=counts.astype(np.int64),
        conditions=build_conditions(routes["conditions"].to_pylist() if r else []),
        fitted=~np.isnan(min_sim),
        nulls=(),
        null_of=np.zeros(r, np.int64),
        target_codes=pc.dictionary_encode(routes["target_agent"].chunk(0)).indices.to_numpy(zero_copy_only=False)
        if r else np.zeros(0, np.int32),
    )


def calibrated(snap: RouteSnapshot, background: Background) -> RouteSnapshot:
    """The snapshot against the background requests: a route without a fitted min_similarity gets the default
    thresholds of a route of its size (the text null's :data:`ROUTE_LEVEL` quantile for its number of vectors, and
    its :data:`ROUTE_LEAD_LEVEL` quantile when it leads every other route by :data:`ROUTE_LEAD` spreads), and every
    route its null for the confidence."""
    if not snap.size:
        return snap
    counts = snap.examples + 1
    sizes, null_of = np.unique(counts, return_inverse=True)
    nulls = tuple(background.text_null(int(k)) for k in sizes)
    default = np.array([nulls[i].threshold(ROUTE_LEVEL) for i in null_of], np.float32)
    leading = np.array([nulls[i].threshold(ROUTE_LEAD_LEVEL) for i in null_of], np.float32)
    return replace(snap, threshold=np.where(snap.fitted, snap.threshold, default).astype(np.float32),
                   lead_threshold=np.where(snap.fitted, np.inf, leading).astype(np.float32),
                   lead=ROUTE_LEAD * background.spread, nulls=tuple(n.scores for n in nulls),
                   null_of=null_of.astype(np.int64))


def _matrix(column: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(flat, dtype=np.float32).reshape(len(column), dim)
