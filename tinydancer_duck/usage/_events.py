"""Usage events: record one batch, or ingest a Parquet log, into the ``usage`` table; each event updates its agent.

A usage event is (ts, request_id, agent, route, category, tokens_in, tokens_out, cost, latency_ms, success,
quality). agent, cost, success and latency_ms are required; ts defaults to now (UTC); the rest may be NULL.
Validation runs on the whole batch before anything is written: cost, latency_ms and tokens >= 0, finite and at most
1e12, quality within [0, 1], ts within years 1-9999, text valid UTF-8 without NUL; a NULL
agent/cost/success/latency_ms is an error naming the argument.

**Unknown agents.** An event for an agent that is not registered is stored (a log may name retired agents, and
analytics should still count their spend) but updates no running stats; :meth:`Usage.record` returns False for
such rows and :meth:`Usage.ingest` lists them in its report.

**Running stats.** Events are folded into the agent's EWMA latency, success rate and quality and its p99 estimate
(:mod:`tinydancer_duck.registry._stats`), in timestamp order within each batch. :meth:`Usage.record` goes through
:meth:`Registry.update_metrics` once per batch (one agents write per batch). :meth:`Usage.ingest` folds the whole file
per agent as an affine map ``x -> decay * x + offset`` (an EWMA over k events is affine in its starting value) and
applies it to the stored stats in one write, so the file costs one agents write however long it is.
avg_latency_ms, success_rate, quality_score and total_requests equal those of the same events recorded one by one;
p99 is a streaming estimate whose value depends on the batch size.

**All or nothing.** The events and their agents' stats are two commits (usage, then agents), tied by an intent
journal (:mod:`tinydancer_duck.store._journal`) under the agents lock: a process killed between them leaves an intent
the next writer (or the next Engine) finishes, so usage and stats never disagree. An ingest is one streamed usage
commit plus the agents commit, and skips events whose request_id is stored already, so re-running an interrupted
(or finished) ingest stores each request once. Recording settles the budget reservations routing made for the events
(:mod:`tinydancer_duck.store._ledger`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck._validate import (
    MAX_TS_US,
    MIN_TS_US,
    as_float_column,
    check_int,
    check_nonnegative,
    check_stored,
    check_text_column,
    check_unit_interval,
)
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.registry import AffineFold, Registry, fold_batch
from tinydancer_duck.settings import Settings
from tinydancer_duck.store import MAX_CHUNKS, USAGE_SCHEMA, Step, Store, settle

from ._log import FIELDS, batches, column_mapping, open_log

_TS = pa.timestamp("us", tz="UTC")
DEFAULT_BATCH_ROWS = 100_000
MAX_BATCH_ROWS = 10_000_000

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class IngestReport:
    """What :meth:`Usage.ingest` wrote: rows and their cost sum, agents whose stats changed, unregistered agents."""

    rows: int
    total_cost: float
    agents_updated: list[str] = field(default_factory=list)
    unknown_agents: list[str] = field(default_factory=list)
    seconds: float = 0.0


#: The STRUCT ruvector_ingest_usage returns: the fields of :class:`IngestReport`.
INGEST_TYPE = pa.struct([("rows", pa.int64()), ("total_cost", pa.float64()),
                         ("agents_updated", pa.list_(pa.string())), ("unknown_agents", pa.list_(pa.string())),
                         ("seconds", pa.float64())])


class Usage:
    """The ``usage`` table of one store: validated appends, bulk ingest, and a cached polars view for analytics."""

    def __init__(self, store: Store, registry: Registry, settings: Settings) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings

    # -- reads --------------------------------------------------------------------------------------------------
    def frame(self) -> pl.DataFrame:
        """Every usage event as a polars frame (USAGE_SCHEMA columns), cached until the table version changes;
        after this process's own appends, extended by their rows rather than read again."""
        return self.store.snapshot("usage", "polars", pl.from_arrow, extend=_extended_frame)

    def version(self) -> int:
        return self.store.version("usage")

    # -- writes -------------------------------------------------------------------------------------------------
    def record(self, agent: Any, cost: Any, success: Any, latency_ms: Any, *, ts: Any = None,
               request_id: Any = None, route: Any = None, category: Any = None, tokens_in: Any = None,
               tokens_out: Any = None, quality: Any = None) -> np.ndarray:
        """Record events given as scalars (one event) or equal-length columns; one append, one agents write. Takes
        many parameters because they are ruvector_record_usage's declared fields, keyword for keyword.

        Returns bool (n,): True where the agent is registered and its stats were updated.
        """
        columns = {"agent": agent, "cost": cost, "success": success, "latency_ms": latency_ms, "ts": ts,
                   "request_id": request_id, "route": route, "category": category, "tokens_in": tokens_in,
                   "tokens_out": tokens_out, "quality": quality}
        return self.record_columns(columns)

    def record_columns(self, columns: Mapping[str, Any]) -> np.ndarray:
        """:meth:`record` with the fields as a mapping of columns (missing optional fields are NULL).

        The events and their agents' new stats are committed all-or-nothing (:meth:`Store.transact`): a process
        killed between the two commits leaves an intent that the next writer finishes.
        """
        batch = usage_batch(columns, now=datetime.now(timezone.utc))
        if batch.num_rows == 0:
            return np.zeros(0, bool)
        batch = _in_time_order(batch)
        with self.store.locked("agents"):  # which agents exist, and their stats, cannot change meanwhile
            known = self._known(batch["agent"])
            if known.any():
                rows = batch.filter(pa.array(known))
                self.registry.update_metrics(rows["agent"], rows["latency_ms"], rows["success"], rows["quality"],
                                             usage=batch)
            else:
                self.store.transact([Step("usage", "append", batch)])
        if self.store.ledger.exists():  # routing reserved under a budget: settle
            self._settle(_spend_by_agent(batch["agent"], batch["cost"]))
        order = pc.sort_indices(batch["_row"]).to_numpy()  # back to the caller's row order
        return known[order]

    def ingest(self, source: str | Path, *, columns: Mapping[str, str] | str | None = None,
               batch_rows: int = DEFAULT_BATCH_ROWS, progress: Progress | None = None) -> IngestReport:
        """Append a Parquet log (a file, a directory or a glob of files) to ``usage`` and fold it into agent stats,
        all or nothing, skipping events whose request_id is stored already.

        columns : our field -> the log's column name, for logs that name columns differently (JSON text or a
            mapping), e.g. ``{"agent": "model", "cost": "usd"}``. Unmapped fields use their own name; an optional
            field missing from the log is NULL.
        batch_rows : rows per read batch; memory stays bounded by a few batches.
        progress : called as ``progress(rows_done, rows_total)`` after validation (0) and after every batch.

        The file is read twice under the agents lock (other writers of usage and agents wait): a validation pass
        that also folds the events into per-agent stats, so a bad row anywhere fails the call before anything is
        written; then one streamed append (a single commit), and the stats in one agents write, both committed
        all-or-nothing. Re-running an ingest (after a kill, or twice) stores no request_id twice; events without a
        request_id cannot be recognized and are stored again.
        """
        started = time.perf_counter()
        check_int("batch_rows", batch_rows, minimum=1, maximum=MAX_BATCH_ROWS)
        dataset, selection = open_log(source, column_mapping(columns))
        total = dataset.count_rows()
        now = datetime.now(timezone.utc)
        with self.store.locked("agents"):
            plan = self._plan_ingest(dataset, selection, batch_rows, now)
            if progress is not None:
                progress(0, total)
            done = [0]

            def appended() -> Iterator[pa.RecordBatch]:
                for batch in batches(dataset, selection, batch_rows):
                    rows = _in_time_order(plan.fresh(usage_batch(batch, now=now))).drop_columns(["_row"])
                    done[0] += rows.num_rows
                    yield from rows.to_batches()
                    if progress is not None:
                        progress(done[0], total)

            stream = pa.RecordBatchReader.from_batches(USAGE_SCHEMA, appended())
            updated = self.registry.apply_folds(
                plan.folds, usage=Step("usage", "append", stream, count=plan.rows) if plan.rows else None)
        self._settle(plan.spend)
        return IngestReport(rows=plan.rows, total_cost=plan.cost, agents_updated=updated,
                            unknown_agents=sorted(plan.unknown), seconds=time.perf_counter() - started)

    def _plan_ingest(self, dataset: Any, selection: Mapping[str, str], batch_rows: int, now: datetime) -> _Plan:
        """Pass 1 of an ingest: validate every batch, find the request_ids stored already, fold the new events."""
        plan = _Plan(pa.array([], pa.string()))
        if "request_id" in selection:
            ids = dataset.to_table(columns=[selection["request_id"]]).column(0)
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):  # the pass below names it
                plan.duplicates = _stored_duplicates(self.store.read("usage")["request_id"], ids.cast(pa.string()))
        names = self.registry.snapshot().names
        for batch in batches(dataset, selection, batch_rows):
            rows = _in_time_order(plan.fresh(usage_batch(batch, now=now)))
            known = pc.is_in(rows["agent"], value_set=names).to_numpy(zero_copy_only=False)
            if not known.all():
                plan.unknown.update(pc.unique(rows["agent"].filter(pa.array(~known))).to_pylist())
            if known.any():
                fold_batch(plan.folds, rows.filter(pa.array(known)), self.settings.latency_ewma_alpha)
            plan.rows += rows.num_rows
            plan.cost += float(pc.sum(rows["cost"]).as_py() or 0.0)
            for agent, (cost, count) in _spend_by_agent(rows["agent"], rows["cost"]).items():
                old = plan.spend.get(agent, (0.0, 0))
                plan.spend[agent] = (old[0] + cost, old[1] + count)
        return plan

    # -- helpers ------------------------------------------------------------------------------------------------
    def _settle(self, spend: Mapping[str, tuple[float, int]]) -> None:
        """Settle the budget reservations of the recorded events (store/_ledger.py): from now on they count as
        recorded spend. Only when routing ever reserved (the ledger exists)."""
        if spend and self.store.ledger.exists():
            now_us = time.time_ns() // 1000
            with self.store.ledger.open(now_us) as state:
                settle(state, spend, self.store.version("usage"), now_us)

    def _known(self, agents: pa.ChunkedArray | pa.Array) -> np.ndarray:
        return pc.is_in(agents, value_set=self.registry.snapshot().names).to_numpy(zero_copy_only=False)


@dataclass
class _Plan:
    """What an ingest will write: the stored request_ids it skips, per-agent folds, rows, cost, unknown agents."""

    duplicates: pa.Array
    folds: dict[str, AffineFold] = field(default_factory=dict)
    rows: int = 0
    cost: float = 0.0
    unknown: set[str] = field(default_factory=set)
    spend: dict[str, tuple[float, int]] = field(default_factory=dict)

    def fresh(self, rows: pa.Table) -> pa.Table:
        """``rows`` without the events whose request_id is stored already."""
        if not len(self.duplicates):
            return rows
        return rows.filter(pc.invert(pc.fill_null(pc.is_in(rows["request_id"], value_set=self.duplicates), False)))


def _spend_by_agent(agents: pa.ChunkedArray, costs: pa.ChunkedArray) -> dict[str, tuple[float, int]]:
    """agent -> (sum of cost, events)."""
    if len(agents) <= 16:  # a live record: a group-by's fixed cost (~1 ms) would dominate
        spend: dict[str, tuple[float, int]] = {}
        for agent, cost in zip(agents.to_pylist(), costs.to_pylist()):
            total, count = spend.get(agent, (0.0, 0))
            spend[agent] = (total + cost, count + 1)
        return spend
    grouped = pa.table({"agent": agents, "cost": costs}).group_by("agent").aggregate([("cost", "sum"),
                                                                                      ("cost", "count")])
    return {a: (float(c), int(k)) for a, c, k in zip(grouped["agent"].to_pylist(), grouped["cost_sum"].to_pylist(),
                                                       grouped["cost_count"].to_pylist())}


def _stored_duplicates(stored: pa.ChunkedArray, incoming: pa.ChunkedArray) -> pa.Array:
    """The request_ids of ``incoming`` (the log's) that ``stored`` holds already (NULL never matches)."""
    if not len(incoming) or not len(stored):
        return pa.array([], pa.string())
    wanted = pc.unique(incoming.drop_null())
    stored = stored.combine_chunks() if isinstance(stored, pa.ChunkedArray) else stored
    return pc.unique(stored.filter(pc.fill_null(pc.is_in(stored, value_set=wanted), False)))


# -- validation -------------------------------------------------------------------------------------------------
def usage_batch(columns: Mapping[str, Any] | pa.Table | pa.RecordBatch, *, now: datetime) -> pa.Table:
    """Validate usage fields given as columns and return them as a USAGE_SCHEMA table plus a ``_row`` column
    (the input row number). Raises InvalidArgument naming the field and the first bad value."""
    if isinstance(columns, (pa.Table, pa.RecordBatch)):
        columns = {name: columns.column(name) for name in columns.column_names}
    n = _length(columns)
    if n == 0:
        return USAGE_SCHEMA.empty_table().append_column("_row", pa.array([], pa.int64()))
    out: dict[str, pa.Array] = {}
    out["ts"] = _timestamps(columns.get("ts"), n, now)
    for name in ("request_id", "route", "category"):
        out[name] = _strings(name, columns.get(name), n)
    out["agent"] = _strings("agent", columns.get("agent"), n)
    if out["agent"].null_count:
        raise InvalidArgument("agent", None, f"is required (row {_first(out['agent'].is_null())} is NULL)")
    blank = pc.equal(pc.utf8_trim_whitespace(out["agent"]), "")
    if pc.any(blank).as_py():
        raise InvalidArgument("agent", out["agent"].filter(blank)[0].as_py(), "must be a non-empty string")
    for name in ("tokens_in", "tokens_out"):
        values = as_float_column(name, _plain(columns.get(name)), n)
        check_nonnegative(name, values)
        check_stored(name, values)
        out[name] = pa.array(np.rint(values), pa.float64(), mask=np.isnan(values)).cast(pa.int64())
    for name in ("cost", "latency_ms"):
        values = as_float_column(name, _plain(columns.get(name)), n)
        check_nonnegative(name, values, required=True)
        check_stored(name, values)
        out[name] = pa.array(values, pa.float64())
    out["success"] = _booleans(columns.get("success"), n)
    quality = as_float_column("quality", _plain(columns.get("quality")), n)
    check_unit_interval("quality", quality)
    out["quality"] = pa.array(quality, pa.float64(), mask=np.isnan(quality))
    table = pa.table({name: out[name] for name in FIELDS}).cast(USAGE_SCHEMA)
    return table.append_column("_row", pa.array(np.arange(n, dtype=np.int64)))


def _in_time_order(batch: pa.Table) -> pa.Table:
    """Rows sorted by ts (stable), the order events are folded into running stats."""
    order = pc.sort_indices(batch, sort_keys=[("ts", "ascending"), ("_row", "ascending")])
    return batch.take(order)


def _length(columns: Mapping[str, Any]) -> int:
    lengths = {len(v) for v in columns.values() if _is_column(v)}
    if len(lengths) > 1:
        raise InvalidArgument("columns", sorted(lengths), "all usage columns must have the same length")
    return lengths.pop() if lengths else 1


def _is_column(value: Any) -> bool:
    return isinstance(value, (pa.Array, pa.ChunkedArray, np.ndarray, list, tuple))


def _plain(values: Any) -> Any:
    """Arrow columns as Arrow arrays; a NULL-typed column is 'not given'."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array) and pa.types.is_null(values.type):
        return None
    return values


def _broadcast(values: Any, n: int) -> pa.Array:
    values = _plain(values)
    if values is None:
        return pa.nulls(n)
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, np.ndarray):
        return pa.array(values)
    return pa.array(list(values) if _is_column(values) else [values] * n)


def _strings(name: str, values: Any, n: int) -> pa.Array:
    try:
        column = _broadcast(values, n)
        column = column.cast(pa.string()) if not pa.types.is_string(column.type) else column
    except UnicodeEncodeError:
        raise InvalidArgument(name, values, "is not valid UTF-8 text (it holds a lone surrogate)") from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, OverflowError):
        raise InvalidArgument(name, values if not _is_column(values) else type(values).__name__,
                              "must be text") from None
    try:
        column.validate(full=True)  # a Parquet file may declare invalid UTF-8 bytes as strings
    except pa.ArrowInvalid:
        raise InvalidArgument(name, "<invalid UTF-8>", "must be valid UTF-8 text") from None
    check_text_column(name, column)
    return column


def _booleans(values: Any, n: int) -> pa.Array:
    try:
        column = _broadcast(values, n)
        if not (pa.types.is_boolean(column.type) or pa.types.is_integer(column.type) or pa.types.is_null(column.type)):
            raise TypeError
        column = column.cast(pa.bool_())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
        shown = values if not _is_column(values) else str(_broadcast(values, n).type)
        raise InvalidArgument("success", shown, "must be true or false") from None
    if column.null_count:
        raise InvalidArgument("success", None, f"is required (row {_first(column.is_null())} is NULL)")
    return column


def _timestamps(values: Any, n: int, now: datetime) -> pa.Array:
    """UTC µs timestamps; NULL (or no column) means ``now``. Naive timestamps and ISO texts without an offset are
    read as UTC."""
    try:
        column = _broadcast(values, n)
        if pa.types.is_null(column.type):
            column = pa.nulls(n, _TS)
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            try:
                column = column.cast(_TS)
            except pa.ArrowInvalid:  # no offset in the text
                column = pc.assume_timezone(column.cast(pa.timestamp("us")), "UTC")
        elif pa.types.is_date(column.type):
            column = pc.assume_timezone(column.cast(pa.timestamp("us")), "UTC")
        elif pa.types.is_timestamp(column.type):
            if column.type.tz is None:
                column = pc.assume_timezone(column, "UTC")
        else:
            raise TypeError
        column = column.cast(_TS)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError, OverflowError):
        shown = values if not _is_column(values) else type(values).__name__
        raise InvalidArgument("ts", shown, "must be a timestamp within years 1-9999 (NULL means now)") from None
    micros = column.cast(pa.int64()).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(column.is_valid().to_numpy(zero_copy_only=False) & ((micros < MIN_TS_US) | (micros > MAX_TS_US)))
    if len(bad):
        raise InvalidArgument("ts", f"{int(micros[bad[0]])} µs since 1970", "must fall within years 1-9999")
    return column.fill_null(pa.scalar(now, _TS))


def _first(mask: pa.Array) -> int:
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0])


def _extended_frame(frame: pl.DataFrame, rows: pa.Table) -> pl.DataFrame:
    """``frame`` followed by appended ``rows`` (same schema), made contiguous again past MAX_CHUNKS chunks."""
    extended = pl.concat([frame, pl.from_arrow(rows)], how="vertical", rechunk=False)
    return extended.rechunk() if extended.n_chunks() > MAX_CHUNKS else extended
