"""Semantic routes: create/replace, delete, list, add examples, and match query batches in numpy (DESIGN §5).

A route is a name, a description, an embedding (the description's unless given), a target agent (any handler name;
it need not be a registered agent), a priority, an optional ``min_similarity`` and optional conditions
(:mod:`tinydancer_duck.semantic._conditions`). A route may also hold example utterances (table ``route_examples``):
its score for a query is the **max** cosine over its own vector and its examples' vectors.

Matching a batch of n queries against R routes (M vectors, M >= R), in row chunks of :data:`ROW_CHUNK`:

1. scores S = Q @ V.T (float32 GEMM), reduced to (n, R) by max over each route's vectors;
2. routes failing their time/tier conditions for a row, and rate-limited ones, are removed for that row;
3. confidence of route r = softmax over the remaining routes' scores at :data:`CONFIDENCE_TEMPERATURE`
   (0.05: a 0.05 similarity lead is e times the odds), i.e. P(route | query, some route applies). It is in
   [0, 1] and sums to 1 over all routes left after step 2, so to <= 1 over any listed subset. (The seed's
   similarity * (priority + 1) / 10 is not a probability.)
4. routes scoring below their ``min_similarity`` are dropped, so an out-of-scope query can match no route;
5. the **best** route is the most similar one left, except that among routes within :data:`PRIORITY_MARGIN`
   (0.01) of the top similarity the highest priority wins (then the most similar, then the first by name).
   ``ruvector_semantic_route`` lists the best route first, then the others by similarity, up to top_k.

Exact numpy scoring is used for every route-set size; there is no LanceDB index path. Measured with
benchmarks/bench_semantic.py (768-dim, top-3, this 2-core machine, medians of 7): 1K routes ≈ 11 µs/row batched
(86% of the GEMM bound); 100K routes ≈ 1.0 ms/row batched and ≈ 10.6 ms for one query alone; 10K routes ≈ 0.9 ms
for one query. LanceDB IVF_HNSW_SQ answers ≈ 4 ms/query at 100K (FACTS.md) after a 70–140 s build, with recall
0.9–0.96, and brute-force LanceDB is ~30x slower than numpy. So the index would only win for single queries over
more than ~30K routes, and never for batches; the cut-over is therefore "never" for the route sets this product
holds (tens to a few thousand routes), and the matrix must fit in memory (100K × 768 float32 = 307 MB).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck._validate import as_column, as_float_column, as_list, check_names
from tinydancer_duck.embed import Embedder, embedding_matrix, is_vector_input, nonzero_rows
from tinydancer_duck.errors import InvalidArgument, NotFound
from tinydancer_duck.settings import Settings
from tinydancer_duck.store import Store

from ._conditions import US_PER_MIN, epoch_us, parse_conditions, rate_limit_pass
from ._kernels import (
    ARGMAX_TOP_K,
    CONFIDENCE_TEMPERATURE,
    KERNEL_CHUNK,
    MATCH_FIELDS,
    MATCH_TYPE,
    PRIORITY_MARGIN,
    ROW_CHUNK,
    BestRoutes,
    RouteSnapshot,
    _softmax_at,
    build_route_snapshot,
    decide,
    match_top_k,
    route_scores,
    top_k,
)

__all__ = ["ARGMAX_TOP_K", "CONFIDENCE_TEMPERATURE", "KERNEL_CHUNK", "MATCH_FIELDS", "MATCH_TYPE", "PRIORITY_MARGIN",
           "ROW_CHUNK", "BestRoutes", "RouteSnapshot", "SemanticRoutes", "build_route_snapshot", "decide",
           "match_top_k", "route_scores", "top_k"]


# -- service ----------------------------------------------------------------------------------------------------
class SemanticRoutes:
    """Create, replace, delete, list and match semantic routes over one store.

    temperature : softmax temperature of the confidence; priority_margin : similarity gap counted as a near-tie.
    """

    def __init__(self, store: Store, embedder: Embedder, settings: Settings, *,
                 temperature: float = CONFIDENCE_TEMPERATURE, priority_margin: float = PRIORITY_MARGIN) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.temperature = temperature
        self.priority_margin = priority_margin
        self._cached: tuple[tuple[int, int], RouteSnapshot] | None = None

    # -- reads --------------------------------------------------------------------------------------------------
    def snapshot(self) -> RouteSnapshot:
        """Routes and example vectors as numpy, rebuilt only when either table's version changes."""
        key = (self.store.version("routes"), self.store.version("route_examples"))
        cached = self._cached
        if cached is not None and cached[0] == key:
            return cached[1]
        snap = build_route_snapshot(self.store.read("routes"), self.store.read("route_examples"), self.store.dim)
        self._cached = (key, snap)
        return snap

    def table(self) -> pa.Table:
        """All routes sorted by name: the stored columns without the embedding, plus ``examples`` (count) and
        ``target_registered`` (whether target_agent is a registered agent)."""
        snap = self.snapshot()
        return snap.table.drop_columns(["embedding"]).append_column(
            "examples", pa.array(snap.examples, pa.int64())).append_column(
            "target_registered", self._registered(snap))

    def _registered(self, snap: RouteSnapshot) -> pa.Array:
        agents = self.store.read("agents")["name"]
        return pc.is_in(snap.targets, value_set=agents.combine_chunks() if agents.num_chunks != 1
                        else agents.chunk(0))

    # -- writes -------------------------------------------------------------------------------------------------
    def create_route(self, name: str, description: str | None, target_agent: str, *, priority: int = 0,
                     embedding: Any = None, min_similarity: float | None = None, conditions: Any = None) -> bool:
        """Create or replace one route (see :meth:`create`)."""
        return self.create({"name": [name], "description": [description], "target_agent": [target_agent],
                            "priority": [priority], "embedding": None if embedding is None else [embedding],
                            "min_similarity": [min_similarity], "conditions": [conditions]}) == 1

    def create(self, columns: dict[str, Any]) -> int:
        """Validate and upsert routes given as columns (name, description, target_agent, priority, embedding,
        min_similarity, conditions); returns the number of distinct routes written. Later rows win on duplicate
        names. Every row is validated before anything is written.

        embedding : NULL means the description's embedding. min_similarity : NULL keeps a stored (e.g. fitted)
        threshold of an existing route, else none; pass -1 to remove one. Replacing a route keeps its examples.
        """
        names = check_names("name", as_list(columns["name"]))
        n = len(names)
        if n == 0:
            return 0
        targets = check_names("target_agent", as_column("target_agent", columns.get("target_agent"), n))
        descriptions = as_column("description", columns.get("description"), n)
        priority = as_float_column("priority", columns.get("priority"), n)
        bad = ~np.isnan(priority) & ((priority != np.round(priority)) | (np.abs(priority) > 2**31 - 1))
        if bad.any():
            raise InvalidArgument("priority", float(priority[bad][0]), "must be an integer")
        priority = np.where(np.isnan(priority), 0, priority).astype(np.int32)
        min_sim = as_float_column("min_similarity", columns.get("min_similarity"), n)
        bad = ~np.isnan(min_sim) & ~((min_sim >= -1) & (min_sim <= 1))
        if bad.any():
            raise InvalidArgument("min_similarity", float(min_sim[bad][0]), "must be within [-1, 1]")
        conditions = [parse_conditions(c) for c in as_column("conditions", columns.get("conditions"), n)]
        vectors = self._route_vectors(columns.get("embedding"), descriptions, n)

        keep = np.fromiter({name: i for i, name in enumerate(names)}.values(), dtype=np.int64)
        kept = [names[i] for i in keep]
        previous = self.snapshot()
        old = [previous.index.get(name, -1) for name in kept]
        old_min = np.array([previous.table["min_similarity"][i].as_py() if i >= 0 else None for i in old],
                           dtype=np.float64)
        fresh_min = min_sim[keep]
        now = datetime.now(timezone.utc)
        rows = pa.table({
            "name": kept,
            "description": [descriptions[i] for i in keep],
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors[keep].reshape(-1), pa.float32()),
                                                           self.store.dim),
            "target_agent": [targets[i] for i in keep],
            "priority": pa.array(priority[keep], pa.int32()),
            "min_similarity": pa.array(np.where(np.isnan(fresh_min), old_min, fresh_min), pa.float64(),
                                       from_pandas=True),
            "conditions": pa.array([conditions[i] for i in keep], pa.string()),
            "created_at": pa.array([previous.table["created_at"][i].as_py() if i >= 0 else now for i in old],
                                   pa.timestamp("us", tz="UTC")),
        })
        self.store.upsert("routes", rows)
        return len(keep)

    def _route_vectors(self, embedding: Any, descriptions: list[Any], n: int) -> np.ndarray:
        """float32 (n, D): the given embedding where present, else the description's."""
        given, present = _embeddings("embedding", embedding, n, self.store.dim)
        missing = np.flatnonzero(~present)
        for i in missing:
            if not isinstance(descriptions[i], str) or not descriptions[i].strip():
                raise InvalidArgument("description", descriptions[i],
                                      "must be a non-empty string when no embedding is given")
        if len(missing):
            given[missing] = self.embedder.embed([descriptions[i] for i in missing])
            blank = missing[np.abs(given[missing]).max(axis=1) == 0]
            if len(blank):
                raise InvalidArgument("description", descriptions[blank[0]], "has no known words to embed")
        return given

    def add_examples(self, names: Sequence[Any], texts: Sequence[Any] | pa.Array | None = None,
                     embeddings: Any = None) -> np.ndarray:
        """Add example utterances (texts, or precomputed embeddings) to existing routes.

        Returns bool (n,): whether each row is now an example (False for a NULL route or a NULL/blank example,
        which are skipped). A (route, text) pair already stored is not stored twice. Every named route must exist
        (nothing is written otherwise).
        """
        names = as_list(names)
        n = len(names)
        text_list = as_column("example", texts, n)
        vectors, present = _embeddings("example", embeddings, n, self.store.dim)
        snap = self.snapshot()
        for name in names:
            if name is not None and name not in snap.index:
                raise NotFound("route", name)
        use_text = np.array([not present[i] and isinstance(text_list[i], str) and bool(text_list[i].strip())
                             for i in range(n)], bool)
        if use_text.any():
            rows = np.flatnonzero(use_text)
            vectors[rows] = self.embedder.embed([text_list[i] for i in rows])
            present[rows] = np.abs(vectors[rows]).max(axis=1) > 0
        stored = self.store.read("route_examples")
        seen = set(zip(stored["route"].to_pylist(), stored["text"].to_pylist()))
        keep = []
        accepted = present & np.array([name is not None for name in names], bool)
        for i in np.flatnonzero(accepted):
            key = (names[i], text_list[i])
            if text_list[i] is not None and key in seen:
                continue
            seen.add(key)
            keep.append(i)
        if not keep:
            return accepted
        idx = np.asarray(keep, np.int64)
        self.store.append("route_examples", pa.table({
            "route": [names[i] for i in keep],
            "text": pa.array([text_list[i] for i in keep], pa.string()),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors[idx].reshape(-1), pa.float32()),
                                                           self.store.dim),
            "created_at": pa.array([datetime.now(timezone.utc)] * len(keep), pa.timestamp("us", tz="UTC")),
        }))
        return accepted

    def delete(self, names: Sequence[Any]) -> int:
        """Delete routes and their examples; every name must exist (nothing is deleted otherwise)."""
        names = check_names("name", as_list(names))
        snap = self.snapshot()
        for name in names:
            if name not in snap.index:
                raise NotFound("route", name)
        self.store.delete_keys("routes", "name", set(names))
        # examples of a deleted route are ignored by the snapshot even if this second write failed
        self.store.delete_keys("route_examples", "route", set(names))
        return len(set(names))

    def set_thresholds(self, thresholds: dict[str, float]) -> int:
        """Persist min_similarity for existing routes (used by fitting)."""
        snap = self.snapshot()
        if not thresholds:
            return 0
        rows = snap.table.take(pa.array([snap.index[name] for name in thresholds], pa.int64()))
        rows = rows.set_column(rows.schema.get_field_index("min_similarity"), "min_similarity",
                               pa.array(list(thresholds.values()), pa.float64()))
        self.store.upsert("routes", rows)
        return rows.num_rows

    # -- matching -----------------------------------------------------------------------------------------------
    def queries(self, queries: Any) -> tuple[np.ndarray, np.ndarray]:
        """(float32 (n, D) unit rows, bool (n,) valid) from texts or embeddings; NULL/blank rows are invalid."""
        if isinstance(queries, str):
            queries = [queries]
        if isinstance(queries, pa.ChunkedArray):
            queries = queries.combine_chunks() if queries.num_chunks != 1 else queries.chunk(0)
        if is_vector_input(queries) or (isinstance(queries, pa.Array) and not (
                pa.types.is_string(queries.type) or pa.types.is_large_string(queries.type))):
            return embedding_matrix(queries, self.store.dim, argument="query")  # other columns: its error names it
        x = self.embedder.embed(queries if isinstance(queries, pa.Array) else pa.array(list(queries), pa.string()))
        return x, nonzero_rows(x)

    def best(self, embeddings: np.ndarray, valid: np.ndarray, *, ts: Any = None, user_tier: Any = None
             ) -> BestRoutes:
        """The best route per row that passes its min_similarity and conditions (module docstring, step 5).

        embeddings : float32 (n, D) unit rows; valid : bool (n,); ts : per-row timestamps (Arrow timestamp or
        int64 µs since the epoch, numpy datetime64; NULL = now); user_tier : per-row tier strings or None.
        """
        snap = self.snapshot()
        result = self._run(snap, embeddings, valid, ts, user_tier, k=0)
        return BestRoutes(result[0], result[1], result[2], snap)

    def match(self, queries: Any, top_k: Any = 3, *, ts: Any = None, user_tier: Any = None) -> pa.ListArray:
        """LIST<STRUCT(route_name, similarity, target_agent, confidence, target_registered)> per query: the best
        route first, then the others by similarity, at most top_k, only routes passing threshold and conditions.
        A NULL or blank query gives an empty list."""
        x, valid = self.queries(queries)
        k = _top_k(top_k, len(valid))
        snap = self.snapshot()
        idx, sim, conf = self._run(snap, x, valid, ts, user_tier, k=k)
        listed = np.isfinite(sim)
        offsets = np.r_[0, np.cumsum(listed.sum(axis=1))].astype(np.int32)
        flat = idx[listed]
        take = pa.array(flat, pa.int64())
        registered = self._registered(snap) if snap.size else pa.array([], pa.bool_())
        values = pa.StructArray.from_arrays(
            [snap.names.take(take), pa.array(sim[listed].astype(np.float64)), snap.targets.take(take),
             pa.array(conf[listed].astype(np.float64)), registered.take(take)], fields=list(MATCH_TYPE))
        return pa.ListArray.from_arrays(pa.array(offsets), values)

    def _run(self, snap: RouteSnapshot, x: np.ndarray, valid: np.ndarray, ts: Any, user_tier: Any, *, k: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """k == 0: best route (route (n,), similarity (n,), confidence (n,)); k > 0: lists (n, k) of
        (route, similarity (-inf where absent), confidence), best first."""
        n = len(valid)
        ts_us = epoch_us(ts, n)
        tiers = snap.conditions.tier_codes(_strings("user_tier", user_tier, n), n)
        width = min(k, snap.size) if k else 0
        shape = (n, width) if k else (n,)
        out_idx = np.full(shape, -1, np.int64)
        out_sim = np.full(shape, -np.inf if k else np.nan)
        out_conf = np.full(shape, np.nan)
        if snap.size == 0 or n == 0:
            return out_idx, out_sim, out_conf
        carried: dict[tuple[int, int], int] = {}
        for lo in range(0, n, ROW_CHUNK):
            hi = min(lo + ROW_CHUNK, n)
            scores, eligible, choice = self._chunk(snap, x[lo:hi], valid[lo:hi], ts_us[lo:hi], tiers[lo:hi],
                                                   carried)
            rows = np.arange(hi - lo)
            if not k:
                sim = np.where(choice >= 0, eligible[rows, np.maximum(choice, 0)], np.nan)
                out_idx[lo:hi], out_sim[lo:hi] = choice, sim
                out_conf[lo:hi] = np.where(choice >= 0, _softmax_at(scores, np.nan_to_num(sim)[:, None],
                                                                     self.temperature)[:, 0], np.nan)
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
            out_conf[lo:hi] = _softmax_at(scores, np.where(np.isfinite(sim), sim, -np.inf), self.temperature)
        return out_idx, out_sim, out_conf

    def _chunk(self, snap: RouteSnapshot, x: np.ndarray, valid: np.ndarray, ts_us: np.ndarray, tiers: np.ndarray,
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
        eligible = np.where(scores >= snap.threshold, scores, -np.inf)
        choice = decide(eligible, snap.priority, self.priority_margin)
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
                choice = decide(eligible, snap.priority, self.priority_margin)
            for r in limited:
                _, exhausted = rate_limit_pass(choice, minute, int(r), int(cond.rate_limit[r]), carried)
                eligible[exhausted, r] = scores[exhausted, r] = -np.inf
                used, counts = np.unique(minute[choice == r], return_counts=True)
                for m, c in zip(used.tolist(), counts.tolist()):
                    carried[(int(r), m)] = carried.get((int(r), m), 0) + c
        return scores, eligible, choice

    # -- fitting ------------------------------------------------------------------------------------------------
    def fit(self, queries: Any, labels: Any, *, persist: bool = True, out_of_scope_weight: float = 1.0) -> Any:
        """Learn every route's min_similarity from labeled queries (label NULL = no route) and store it (persist);
        returns a :class:`~tinydancer_duck.semantic._fit.FitReport` (see :mod:`tinydancer_duck.semantic._fit`)."""
        from ._fit import fit_routes

        return fit_routes(self, queries, labels, persist=persist, out_of_scope_weight=out_of_scope_weight)


# -- argument helpers -------------------------------------------------------------------------------------------
def _strings(field: str, values: Any, n: int) -> pa.Array | None:
    if values is None:
        return None
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array([values] * n if isinstance(values, str) else as_column(field, values, n), pa.string())
    if len(values) != n:
        raise InvalidArgument(field, f"{len(values)} values", f"expected {n}")
    return values


def _embeddings(field: str, values: Any, n: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(float32 (n, D) with zero rows where absent, bool (n,) present); a given all-zero vector is an error."""
    if values is None:
        return np.zeros((n, dim), np.float32), np.zeros(n, bool)
    if isinstance(values, np.ndarray) and values.dtype != object:
        x, valid = embedding_matrix(values, dim, argument=field)
        given = np.ones(len(x), bool)
    else:
        if not isinstance(values, (pa.Array, pa.ChunkedArray)):
            rows = as_column(field, values, n)
            values = pa.array([None if v is None else np.asarray(v, np.float64).tolist() for v in rows],
                              pa.list_(pa.float64()))
        x, valid = embedding_matrix(values, dim, argument=field)
        given = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), bool)
    if len(x) != n:
        raise InvalidArgument(field, f"{len(x)} values", f"expected {n}")
    if (given & ~valid).any():
        raise InvalidArgument(field, "all zeros", "an embedding must have a non-zero norm")
    return x, given


def _top_k(top_k: Any, n: int) -> int:
    """One top_k for the batch: an integer >= 1 (a column must hold one value)."""
    values = as_list(top_k)
    distinct = {v for v in values if v is not None} if values else set()
    if not distinct and values and all(v is None for v in values):
        raise InvalidArgument("top_k", None, "must be an integer >= 1")
    if len(distinct) > 1:
        raise InvalidArgument("top_k", sorted(distinct)[:2], "must be the same for every row of a call")
    value = distinct.pop() if distinct else 3
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidArgument("top_k", value, "must be an integer >= 1")
    return int(value)
