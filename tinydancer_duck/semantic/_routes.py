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
4. routes scoring below their ``min_similarity`` are dropped, so an out-of-scope query can match no route; a route
   without one uses the calibrated default (:func:`~tinydancer_duck.semantic._kernels.calibrated`): its threshold,
   or a lower one when it leads every other route by the calibrated lead (:func:`~._match.leads`);
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

from tinydancer_duck._validate import as_column, as_float_column, as_list, check_names, check_text
from tinydancer_duck.embed import Embedder, background, embedding_matrix, is_vector_input, nonzero_rows
from tinydancer_duck.errors import InvalidArgument, NotFound
from tinydancer_duck.settings import Settings
from tinydancer_duck.store import Store

from ._conditions import parse_conditions
from ._fit import FitReport, fit_snapshot
from ._kernels import RouteSnapshot, build_route_snapshot, calibrated


# -- service ----------------------------------------------------------------------------------------------------
class SemanticRoutes:
    """Create, replace, delete, list and fit the semantic routes of one store; matching is
    :func:`~tinydancer_duck.semantic._match.match_routes` over :meth:`snapshot`."""

    def __init__(self, store: Store, embedder: Embedder, settings: Settings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self._cached: tuple[tuple[int, int], RouteSnapshot] | None = None

    # -- reads --------------------------------------------------------------------------------------------------
    def snapshot(self) -> RouteSnapshot:
        """Routes and example vectors as numpy, rebuilt only when either table's version changes."""
        key = (self.store.version("routes"), self.store.version("route_examples"))
        cached = self._cached
        if cached is not None and cached[0] == key:
            return cached[1]
        snap = calibrated(build_route_snapshot(self.store.read("routes"), self.store.read("route_examples"),
                                               self.store.dim), background(self.embedder))
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
        for description in descriptions:
            if description is not None and not isinstance(description, str):
                raise InvalidArgument("description", description, "must be text")
            if description is not None:
                check_text("description", description)
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
        for name, text in zip(names, text_list):
            if name is not None:
                check_names("route_name", [name])
            if text is not None and not isinstance(text, str):
                raise InvalidArgument("example", text, "must be text or an embedding")
            if text is not None:
                check_text("example", text)
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
        """Delete routes and their examples; every name must exist (nothing is deleted otherwise). Reads only the
        stored names, never the route snapshot, so no stored value can stand in the way of a deletion."""
        names = check_names("name", as_list(names), stored=True)
        stored = set(self.store.read("routes")["name"].to_pylist())
        for name in names:
            if name not in stored:
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

    # -- fitting ------------------------------------------------------------------------------------------------
    def fit(self, queries: Any, labels: Any, *, persist: bool = True, out_of_scope_weight: float = 1.0
            ) -> FitReport:
        """Learn every route's min_similarity from labeled queries (label NULL = no route) and store it (persist);
        returns the :class:`~tinydancer_duck.semantic._fit.FitReport` of those thresholds on the same queries."""
        x, valid = self.queries(queries)
        thresholds, report = fit_snapshot(self.snapshot(), x, valid, labels, out_of_scope_weight=out_of_scope_weight)
        if persist:
            self.set_thresholds(thresholds)
        return report


# -- argument helpers -------------------------------------------------------------------------------------------
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
