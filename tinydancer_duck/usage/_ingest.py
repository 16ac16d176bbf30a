"""Bulk ingest of a usage log: two passes over the file, both under the agents lock.

Pass 1 (:func:`plan_ingest`) validates every batch, skips the events whose request_id is stored already or appeared
earlier in the same log (the first one is kept; both counted in the report), folds the rest into per-agent stats,
and keeps a sample of the rows it will append (the journal recognizes the append by them,
:mod:`tinydancer_duck.store._journal`). Pass 2 (:meth:`Plan.appended`) reads the same rows again and streams them
into one commit: it stops at the rows pass 1 read (a log that grew meanwhile keeps its new rows for the next
ingest), and a batch that differs from pass 1's fails the ingest before anything is written.

**History is history.** A log's ``ts`` is when each event happened. Events without one (no ts column, or a NULL)
take the ``ts`` the caller chose: ``'now'``, or an ``as_of`` moment for a historical log; with no choice the ingest
is refused, naming ``ts``: stamped now, a month of history would count toward this period's budgets and its
failures would open circuit breakers. Events older than the breaker window or outside the current budget period do
neither (both read the events' own timestamps).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck._logs import read_batches
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.registry import AffineFold, fold_batch

from ._columns import in_time_order, timestamps, usage_batch
from ._log import batches

#: Rows at the start and at the end of an ingest the journal keeps to recognize its append.
SAMPLE_ROWS = 16

Progress = Callable[[int, int], None]


def missing_ts(ts: Any, has_column: bool, source: object) -> datetime | None:
    """The timestamp of events a log does not stamp: ``ts`` 'now' (this moment), a moment (datetime, date, ISO
    text, or µs since the epoch as text), or None when the log has a ts column (a NULL in it is then an error);
    InvalidArgument naming ``ts`` when the log has none and no choice was made."""
    if ts is None:
        if not has_column:
            raise InvalidArgument("ts", None, f"{source} has no ts column: say when its events happened, ts := "
                                  "'now' (this moment) or ts := an as_of timestamp (e.g. '2026-11-30T00:00:00Z'); "
                                  "events stamped now count toward this period's budgets and can open circuit "
                                  "breakers")
        return None
    if isinstance(ts, str) and ts.strip().lower() == "now":
        return datetime.now(timezone.utc)
    if isinstance(ts, str) and ts.strip().lstrip("-").isdigit():
        ts = int(ts)
    if isinstance(ts, int) and not isinstance(ts, bool):
        ts = pa.array([ts], pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    return timestamps([ts] if not isinstance(ts, pa.Array) else ts, 1, None)[0].as_py()


@dataclass
class Sample:
    """The rows at the start and the end of what an ingest appends (all of them when few)."""

    head: list[pa.Table] = field(default_factory=list)
    tail: pa.Table | None = None
    rows: int = 0

    def add(self, rows: pa.Table) -> None:
        if self.rows < 2 * SAMPLE_ROWS:
            self.head.append(rows.slice(0, 2 * SAMPLE_ROWS - self.rows))
        tail = rows if self.tail is None else pa.concat_tables([self.tail, rows])
        self.tail = tail.slice(max(tail.num_rows - SAMPLE_ROWS, 0))
        self.rows += rows.num_rows

    def table(self) -> pa.Table | None:
        if not self.rows:
            return None
        head = pa.concat_tables(self.head)
        return head if self.rows <= 2 * SAMPLE_ROWS else pa.concat_tables([head.slice(0, SAMPLE_ROWS), self.tail])


@dataclass
class Plan:
    """What an ingest will write (pass 1), and the checks pass 2 makes against it.

    stored : request_ids stored already; first : bool (log rows,) False for a request_id seen earlier in the log
    (None without request_ids); read : (log rows, rows kept, their cost) per batch; seen : log rows read.
    """

    stamp: datetime | None
    stored: pa.Array
    first: np.ndarray | None
    failure: InvalidArgument | None = None
    folds: dict[str, AffineFold] = field(default_factory=dict)
    rows: int = 0
    cost: float = 0.0
    unknown: set[str] = field(default_factory=set)
    spend: dict[str, tuple[float, int]] = field(default_factory=dict)
    read: list[tuple[int, int, float]] = field(default_factory=list)
    seen: int = 0
    duplicates: int = 0
    already_stored: int = 0
    sample: Sample = field(default_factory=Sample)

    def fresh(self, batch: Mapping[str, Any], offset: int) -> tuple[pa.Table, int, int]:
        """(the batch's events to append, in time order; how many were stored already; how many repeat a
        request_id earlier in the log). ``offset``: the batch's first row in the log."""
        rows = usage_batch(batch, now=self.stamp)
        ids = rows["request_id"]
        stored = pc.fill_null(pc.is_in(ids, value_set=self.stored), False).to_numpy(zero_copy_only=False) \
            if len(self.stored) else np.zeros(rows.num_rows, bool)
        repeat = ~self.first[offset + rows["_row"].to_numpy()] & ~stored if self.first is not None \
            else np.zeros(rows.num_rows, bool)
        keep = ~(stored | repeat)
        kept = rows if keep.all() else rows.filter(pa.array(keep))
        return in_time_order(kept), int(stored.sum()), int(repeat.sum())

    def appended(self, dataset: Callable[[], Any], selection: Mapping[str, str], batch_rows: int, source: object,
                 progress: Progress | None) -> Iterator[pa.RecordBatch]:
        """Pass 2: the rows to append, batch by batch, as pass 1 read them (see the module docstring); the log is
        opened again (``dataset()``), so a file rewritten longer is read as it is now. A failure is kept in
        :attr:`failure` too (LanceDB reports one inside a stream as its own error)."""
        offset, done = 0, 0
        try:
            for i, batch in enumerate(_log_batches(dataset(), selection, batch_rows, source, limit=self.seen)):
                rows = self.fresh(batch, offset)[0]
                n = len(next(iter(batch.values())))
                if i >= len(self.read) or self.read[i] != (n, rows.num_rows, _cost(rows)):
                    raise InvalidArgument("path", str(source), "changed while it was ingested (a batch differs "
                                          "from the one validated); nothing was written: ingest it again")
                offset, done = offset + n, done + rows.num_rows
                yield from rows.drop_columns(["_row"]).to_batches()
                if progress is not None:
                    progress(done, self.rows)
        except InvalidArgument as exc:
            self.failure = exc
            raise


def plan_ingest(dataset: Any, selection: Mapping[str, str], batch_rows: int, *, source: object,
                stamp: datetime | None, stored_ids: Callable[[], pa.ChunkedArray], known: pa.Array,
                alpha: float) -> Plan:
    """Pass 1 (see the module docstring). ``stored_ids()``: the request_ids in the usage table; ``known``: the
    registered agents' names."""
    first, stored = None, pa.array([], pa.string())
    if "request_id" in selection:
        with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError):  # the pass below names it
            ids = dataset.to_table(columns=[selection["request_id"]]).column(0).cast(pa.string())
            first = pl.from_arrow(ids).is_first_distinct().to_numpy() | ids.is_null().to_numpy(zero_copy_only=False)
            stored = _stored(stored_ids(), ids)
    plan = Plan(stamp, stored, first)
    limit = len(first) if first is not None else None  # a log that grows now: the rows whose ids were read
    for batch in _log_batches(dataset, selection, batch_rows, source, limit=limit):
        n = len(next(iter(batch.values())))
        rows, already, repeated = plan.fresh(batch, plan.seen)
        plan.seen += n
        plan.already_stored += already
        plan.duplicates += repeated
        mine = pc.is_in(rows["agent"], value_set=known).to_numpy(zero_copy_only=False)
        if not mine.all():
            plan.unknown.update(pc.unique(rows["agent"].filter(pa.array(~mine))).to_pylist())
        if mine.any():
            fold_batch(plan.folds, rows.filter(pa.array(mine)), alpha)
        plan.rows += rows.num_rows
        plan.cost += _cost(rows)
        plan.read.append((n, rows.num_rows, _cost(rows)))
        plan.sample.add(rows.drop_columns(["_row"]))
        for agent, (cost, count) in spend_by_agent(rows["agent"], rows["cost"]).items():
            old = plan.spend.get(agent, (0.0, 0))
            plan.spend[agent] = (old[0] + cost, old[1] + count)
    return plan


def _log_batches(dataset: Any, selection: Mapping[str, str], batch_rows: int, source: object, *,
                 limit: int | None = None) -> Iterator[dict[str, pa.ChunkedArray]]:
    """The log's batches (read failures named, :func:`read_batches`), cut at ``limit`` rows."""
    done = 0
    for batch in read_batches("path", source, batches(dataset, selection, batch_rows)):
        n = len(next(iter(batch.values())))
        if limit is not None and done + n > limit:
            batch, n = {name: column.slice(0, limit - done) for name, column in batch.items()}, limit - done
        if n:
            yield batch
        done += n
        if limit is not None and done >= limit:
            return


def _cost(rows: pa.Table) -> float:
    return float(pc.sum(rows["cost"]).as_py() or 0.0)


def spend_by_agent(agents: pa.ChunkedArray, costs: pa.ChunkedArray) -> dict[str, tuple[float, int]]:
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


def _stored(stored: pa.ChunkedArray, incoming: pa.ChunkedArray) -> pa.Array:
    """The request_ids of ``incoming`` (the log's) that ``stored`` holds already (NULL never matches)."""
    if not len(incoming) or not len(stored):
        return pa.array([], pa.string())
    wanted = pc.unique(incoming.drop_null())
    stored = stored.combine_chunks() if isinstance(stored, pa.ChunkedArray) else stored
    return pc.unique(stored.filter(pc.fill_null(pc.is_in(stored, value_set=wanted), False)))
