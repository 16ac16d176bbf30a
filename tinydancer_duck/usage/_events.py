"""Usage events: record one batch, or ingest a Parquet log, into the ``usage`` table; each event updates its agent.

A usage event is (ts, request_id, agent, route, category, tokens_in, tokens_out, cost, latency_ms, success,
quality). agent, cost, success and latency_ms are required; a recorded event's ts defaults to now (UTC), an
ingested log's must be given or chosen (:mod:`._ingest`); the rest may be NULL. Validation (:mod:`._columns`) runs
on the whole batch before anything is written.

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
commit plus the agents commit, and skips events whose request_id is stored already (or repeats one earlier in the
same log), so re-running an interrupted (or finished) ingest stores each request once. Recording settles the
budget reservations routing made for the events (:mod:`tinydancer_duck.store._ledger`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck._validate import check_int
from tinydancer_duck.errors import StoreError
from tinydancer_duck.registry import Registry
from tinydancer_duck.settings import Settings
from tinydancer_duck.store import MAX_CHUNKS, USAGE_SCHEMA, Step, Store, settle

from ._columns import in_time_order, usage_batch
from ._ingest import Progress, missing_ts, plan_ingest, spend_by_agent
from ._log import column_mapping, open_log

DEFAULT_BATCH_ROWS = 100_000
MAX_BATCH_ROWS = 10_000_000


@dataclass(frozen=True)
class IngestReport:
    """What :meth:`Usage.ingest` wrote: rows and their cost sum, agents whose stats changed, unregistered agents,
    events skipped as repeats of a request_id earlier in the log (the first is kept) or stored already."""

    rows: int
    total_cost: float
    agents_updated: list[str] = field(default_factory=list)
    unknown_agents: list[str] = field(default_factory=list)
    duplicates: int = 0
    already_stored: int = 0
    seconds: float = 0.0


#: The STRUCT ruvector_ingest_usage returns: the fields of :class:`IngestReport`.
INGEST_TYPE = pa.struct([("rows", pa.int64()), ("total_cost", pa.float64()),
                         ("agents_updated", pa.list_(pa.string())), ("unknown_agents", pa.list_(pa.string())),
                         ("duplicates", pa.int64()), ("already_stored", pa.int64()), ("seconds", pa.float64())])


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
               tokens_out: Any = None, quality: Any = None, propensity: Any = None, policy: Any = None) -> np.ndarray:
        """Record events given as scalars (one event) or equal-length columns; one append, one agents write. Takes
        many parameters because they are ruvector_record_usage's declared fields, keyword for keyword.

        Returns bool (n,): True where the agent is registered and its stats were updated.
        """
        columns = {"agent": agent, "cost": cost, "success": success, "latency_ms": latency_ms, "ts": ts,
                   "request_id": request_id, "route": route, "category": category, "tokens_in": tokens_in,
                   "tokens_out": tokens_out, "quality": quality, "propensity": propensity, "policy": policy}
        return self.record_columns(columns)

    def record_columns(self, columns: Mapping[str, Any]) -> np.ndarray:
        """:meth:`record` with the fields as a mapping of columns (missing optional fields are NULL).

        The events and their agents' new stats are committed all-or-nothing (:meth:`Store.transact`): a process
        killed between the two commits leaves an intent that the next writer finishes.
        """
        batch = usage_batch(columns, now=datetime.now(timezone.utc))
        if batch.num_rows == 0:
            return np.zeros(0, bool)
        batch = in_time_order(batch)
        with self.store.locked("agents"):  # which agents exist, and their stats, cannot change meanwhile
            known = self._known(batch["agent"])
            if known.any():
                rows = batch.filter(pa.array(known))
                self.registry.update_metrics(rows["agent"], rows["latency_ms"], rows["success"], rows["quality"],
                                             usage=batch)
            else:
                self.store.transact([Step("usage", "append", batch)])
        if self.store.ledger.exists():  # routing reserved under a budget: settle
            self._settle(spend_by_agent(batch["agent"], batch["cost"]))
        order = pc.sort_indices(batch["_row"]).to_numpy()  # back to the caller's row order
        return known[order]

    def ingest(self, source: str | Path, *, ts: Any = None, columns: Mapping[str, str] | str | None = None,
               batch_rows: int = DEFAULT_BATCH_ROWS, progress: Progress | None = None) -> IngestReport:
        """Append a log (a Parquet, CSV or JSON file, a directory or a glob) to ``usage`` and fold it into agent
        stats, all or nothing, skipping events whose request_id is stored already or appeared earlier in the log.

        ts : when the events without a timestamp happened (no ts column, or a NULL): 'now', or an as_of moment
            (datetime or ISO text) for a historical log. Required when the log has no ts column (see
            :mod:`._ingest`: history stamped now would open breakers and fill this period's budgets).
        columns : our field -> the log's column name, for logs that name columns differently (JSON text or a
            mapping), e.g. ``{"agent": "model", "cost": "usd"}``. Unmapped fields use their own name; an optional
            field missing from the log is NULL.
        batch_rows : rows per read batch; memory stays bounded by a few batches.
        progress : called as ``progress(rows_done, rows_total)`` after validation (0) and after every batch.

        The file is read twice under the agents lock (other writers of usage and agents wait): a validation pass
        that also folds the events into per-agent stats, so a bad row anywhere fails the call before anything is
        written; then one streamed append (a single commit) of the same rows, and the stats in one agents write,
        both committed all-or-nothing. Re-running an ingest (after a kill, or twice) stores no request_id twice;
        events without a request_id cannot be recognized and are stored again.
        """
        started = time.perf_counter()
        check_int("batch_rows", batch_rows, minimum=1, maximum=MAX_BATCH_ROWS)
        mapping = column_mapping(columns)
        dataset, selection = open_log(source, mapping)
        stamp = missing_ts(ts, "ts" in selection, source)
        with self.store.locked("agents"):
            plan = plan_ingest(dataset, selection, batch_rows, source=source, stamp=stamp,
                               stored_ids=lambda: self.store.read("usage")["request_id"],
                               known=self.registry.snapshot().names, alpha=self.settings.latency_ewma_alpha)
            if progress is not None:
                progress(0, plan.rows)
            stream = pa.RecordBatchReader.from_batches(USAGE_SCHEMA, plan.appended(
                lambda: open_log(source, mapping)[0], selection, batch_rows, source, progress))
            step = Step("usage", "append", stream, identity=plan.sample.table())
            try:
                updated = self.registry.apply_folds(plan.folds, usage=step if plan.rows else None)
            except StoreError:
                if plan.failure is not None:  # the log, not the store: say so as the log's error
                    raise plan.failure from None
                raise
        self._settle(plan.spend)
        return IngestReport(rows=plan.rows, total_cost=plan.cost, agents_updated=updated,
                            unknown_agents=sorted(plan.unknown), duplicates=plan.duplicates,
                            already_stored=plan.already_stored, seconds=time.perf_counter() - started)

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


def _extended_frame(frame: pl.DataFrame, rows: pa.Table) -> pl.DataFrame:
    """``frame`` followed by appended ``rows`` (same schema), made contiguous again past MAX_CHUNKS chunks."""
    extended = pl.concat([frame, pl.from_arrow(rows)], how="vertical", rechunk=False)
    return extended.rechunk() if extended.n_chunks() > MAX_CHUNKS else extended
