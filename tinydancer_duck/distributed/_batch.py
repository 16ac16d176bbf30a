"""Arrow batch in, Arrow batch out: routing, classification and semantic matching as pure functions of a snapshot.

These are what every engine maps over a log (Ray Data ``map_batches``, Spark ``mapInArrow``, a local loop, Daft,
Dask): they read nothing but the snapshot and the batch, import only numpy and pyarrow (and threadpoolctl, to run
BLAS at one thread: one worker per core is how engines parallelize), and decide each row on its own, so a row's
decision does not depend on where its batch starts (agents identical; floats within 1e-6, since BLAS sums
differently shaped products in another order).

Two things are not map-only, and route_batch refuses them with an error that says so (README "Beyond one
machine"): a semantic route with ``rate_limit_per_min`` (counts rows across the whole log, in order) and a batch
objective (``total_cost`` / ``budget``: one λ for the whole log).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa

from tinydancer_duck._decide import classify, decide, requests_from, semantic_matches
from tinydancer_duck.embed import embedding_matrix, is_vector_input, nonzero_rows
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.learn import TOP_K
from tinydancer_duck.options import BATCH_OBJECTIVES, EXPLAIN, NUM_FALLBACKS, OBJECTIVE_NAMES, RouteOptions
from tinydancer_duck.routing import ROUTE_FIELDS, OptionColumns
from tinydancer_duck.semantic import epoch_us
from tinydancer_duck.snapshot import RoutingSnapshot

#: Output columns of classify_batch and semantic_route_batch (route_batch's are ROUTE_FIELDS).
CLASSIFY_FIELDS = ("classifications", "top_category", "confidence")
SEMANTIC_FIELDS = ("routes",)
#: Objectives that decide a whole batch together: not map-only.
WHOLE_BATCH = tuple(o for o in BATCH_OBJECTIVES if o not in OBJECTIVE_NAMES)


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    from tinydancer_duck._blas import single_threaded_blas  # threadpoolctl: imported on first use

    with single_threaded_blas():
        yield


def check_route_options(snapshot: RoutingSnapshot, options: RouteOptions | None = None, **values: Any
                        ) -> RouteOptions:
    """The options route_batch will use, validated once (adapters call this on the driver, before any task starts):
    ``values`` applied over ``options``, exactly as ``Engine.route`` takes them.

    raises : InvalidArgument for a bad option, a batch objective or ``budget`` (one λ for the whole log), or a
        snapshot with rate-limited semantic routes (a limit counts rows across the whole log, in order)
    """
    if "budget" in values:
        raise InvalidArgument("budget", values["budget"], "is a batch objective: one λ for the whole log is not "
                              "map-only; route the log in one process with Engine.batch_route(requests, budget=B) "
                              "or ruvector_batch_route(..., budget := B)")
    objective = values.get("optimize_for")
    if isinstance(objective, str) and objective.strip().lower() in WHOLE_BATCH:
        raise InvalidArgument("optimize_for", objective, "is a batch objective (decides a whole log together), "
                              "not map-only; use Engine.batch_route in one process, or a per-request objective")
    limited = snapshot.routes.conditions.limited if snapshot.routes.size else np.zeros(0, np.int64)
    if len(limited):
        name = snapshot.route_names[int(limited[0])]
        raise InvalidArgument("snapshot", f"route {name!r} has rate_limit_per_min="
                              f"{int(snapshot.routes.conditions.rate_limit[limited[0]])}",
                              "rate limits count rows across the whole log in order, which independent batches "
                              "cannot; remove the limit (ruvector_create_route with conditions := NULL) or route "
                              "in one process (SQL counts a limit per 2048-row call)")
    return RouteOptions.of(options, **values)


#: route_batch's arguments that are not routing options.
BATCH_ARGUMENTS = ("request", "keep", "ts", "num_fallbacks", "explain")


def checked_arguments(snapshot: RoutingSnapshot, arguments: dict[str, Any]) -> dict[str, Any]:
    """route_batch's keyword arguments with the routing options validated once into one ``options`` value, so an
    engine's driver fails fast and its workers receive a checked RouteOptions."""
    values = {k: v for k, v in arguments.items() if k not in BATCH_ARGUMENTS and k != "options"}
    chosen = check_route_options(snapshot, arguments.get("options"), **values)
    return {**{k: v for k, v in arguments.items() if k in BATCH_ARGUMENTS}, "options": chosen}


def route_batch(snapshot: RoutingSnapshot, batch: pa.RecordBatch | pa.Table, request: str = "request",
                keep: Sequence[str] | None = None, *, options: RouteOptions | None = None, ts: str | None = None,
                num_fallbacks: int = NUM_FALLBACKS.default, explain: bool = False, **values: Any) -> pa.RecordBatch:
    """Route every row of ``batch``: the ``keep`` columns (default: all of them) and then ruvector_route's fields
    (agent_name, confidence, estimated_cost, estimated_latency_ms, candidates, reasoning, fallbacks, scores).

    request : the column holding the request text (or embedding: a list / fixed-size list of floats)
    ts : optional timestamp column; semantic-route time conditions are checked at it (else at the snapshot's as_of)
    options, values : ruvector_route's options (:class:`~tinydancer_duck.options.RouteOptions`, or its fields by
        name, applied over ``options``), exactly as ``Engine.route`` takes them
    """
    chosen = check_route_options(snapshot, options, **values)
    fallbacks, shown = NUM_FALLBACKS.value(num_fallbacks), EXPLAIN.value(explain)
    batch = as_record_batch(batch)
    kept = _kept(batch, keep, ROUTE_FIELDS)
    n = batch.num_rows
    times = None if ts is None else epoch_us(_column(batch, ts, "ts"), n, now_us=snapshot.as_of_us)
    with _one_blas_thread():
        requests = requests_from(snapshot, _column(batch, request, "request"))
        decided = decide(snapshot, requests, OptionColumns.of(chosen, n), now_us=snapshot.as_of_us, ts_us=times)
        struct = decided.to_arrow(snapshot.agents, num_fallbacks=fallbacks, explain=shown)
    return _joined(kept, struct)


def classify_batch(snapshot: RoutingSnapshot, batch: pa.RecordBatch | pa.Table, request: str = "request",
                   keep: Sequence[str] | None = None, *, top_k: int = TOP_K) -> pa.RecordBatch:
    """ruvector_classify_request per row: the ``keep`` columns, then classifications (top ``top_k`` (label,
    probability)), top_category and confidence; NULL for NULL/blank requests. ModelError without a classifier."""
    k = _check_count("top_k", top_k, 1 << 16, minimum=1)
    batch = as_record_batch(batch)
    kept = _kept(batch, keep, CLASSIFY_FIELDS)
    with _one_blas_thread():
        x, valid = _vectors(snapshot, _column(batch, request, "request"))
        struct = classify(snapshot, x, valid, top_k=k)
    return _joined(kept, struct)


def semantic_route_batch(snapshot: RoutingSnapshot, batch: pa.RecordBatch | pa.Table, request: str = "request",
                         keep: Sequence[str] | None = None, *, top_k: int = 3, ts: str | None = None
                         ) -> pa.RecordBatch:
    """ruvector_semantic_route per row: the ``keep`` columns, then ``routes``: LIST<STRUCT(route_name, similarity,
    target_agent, confidence, target_registered)>, best first. Refuses rate-limited routes (see route_batch)."""
    check_route_options(snapshot)
    batch = as_record_batch(batch)
    kept = _kept(batch, keep, SEMANTIC_FIELDS)
    times = None if ts is None else _column(batch, ts, "ts")
    with _one_blas_thread():
        x, valid = _vectors(snapshot, _column(batch, request, "request"))
        matches = semantic_matches(snapshot, x, valid, top_k=top_k, ts=times, now_us=snapshot.as_of_us)
    return pa.RecordBatch.from_arrays([*kept.columns, matches],
                                      schema=pa.schema([*kept.schema, pa.field("routes", matches.type)]))


# -- helpers ----------------------------------------------------------------------------------------------------
def as_record_batch(data: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
    """One RecordBatch from a batch or a table (its chunks combined)."""
    if isinstance(data, pa.RecordBatch):
        return data
    if isinstance(data, pa.Table):
        columns = [c.chunk(0) if c.num_chunks == 1 else (c.combine_chunks() if c.num_chunks else pa.array([], c.type))
                   for c in data.columns]
        return pa.RecordBatch.from_arrays(columns, schema=data.schema)
    raise InvalidArgument("batch", type(data).__name__, "must be a pyarrow RecordBatch or Table")


def _column(batch: pa.RecordBatch, name: str, argument: str) -> pa.Array:
    if not isinstance(name, str) or name not in batch.schema.names:
        raise InvalidArgument(argument, name, f"is not a column of the batch (it has {batch.schema.names})")
    return batch.column(name)


def _kept(batch: pa.RecordBatch, keep: Sequence[str] | None, fields: Sequence[str]) -> pa.RecordBatch:
    names = batch.schema.names if keep is None else list([keep] if isinstance(keep, str) else keep)
    for name in names:
        if name not in batch.schema.names:
            raise InvalidArgument("keep", name, f"is not a column of the batch (it has {batch.schema.names})")
        if name in fields:
            raise InvalidArgument("keep", name, f"clashes with an output column ({', '.join(fields)})")
    return batch.select(names)


def _joined(kept: pa.RecordBatch, struct: pa.StructArray) -> pa.RecordBatch:
    fields = list(struct.type)
    columns = [*kept.columns, *struct.flatten()]
    return pa.RecordBatch.from_arrays(columns, schema=pa.schema([*kept.schema, *fields]))


def _vectors(snapshot: RoutingSnapshot, column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 (n, D), valid bool (n,)) from a text or embedding column, as the SQL functions make them."""
    if is_vector_input(column):
        return embedding_matrix(column, snapshot.dim, argument="request")
    x = snapshot.embedder.embed(column)
    return x, nonzero_rows(x)


def _check_count(argument: str, value: Any, maximum: int, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not minimum <= value <= maximum:
        raise InvalidArgument(argument, value, f"must be an integer in [{minimum}, {maximum}]")
    return int(value)
