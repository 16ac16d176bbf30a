"""Per-agent circuit breakers derived from the ``usage`` table (DESIGN §5 "Health").

The state is recomputed from recorded events, not kept in memory, so it survives restarts and every process on
the store agrees. Per agent, events in (ts, insertion) order drive this machine (thresholds from Settings: N =
breaker_failures, W = breaker_window_s, C = breaker_cooldown_s, M = breaker_recovery_successes):

- **closed**: the circuit opens at a failure that is the N-th failure within W seconds (failures in (t - W, t]),
  counting only failures since the circuit last closed;
- **open** (opened_at = that failure's ts): events with ts < opened_at + C are ignored (requests already in
  flight); from opened_at + C on the circuit is **half-open**, at ``now`` as well as for later events;
- **half-open**: events are probes; M consecutive successes close it (the failure count starts afresh), a failure
  opens it again (opened_at = the failure's ts).

States are int8 codes: 0 closed, 1 open, 2 half-open (:data:`STATE_NAMES`). The router skips open agents and lets
half-open ones through as probes. Per-agent events and breakers (:class:`BreakerBook`) are cached by the usage
table's version, and this process's own usage records extend them agent by agent; asking about a ``now`` earlier
than the newest event (a replay) runs the breakers over the events up to ``now``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from tinydancer_duck._validate import MAX_TS_US, MIN_TS_US, to_us
from tinydancer_duck.registry import Registry
from tinydancer_duck.settings import Settings

from ._events import Usage

CLOSED, OPEN, HALF_OPEN = 0, 1, 2
STATE_NAMES = ("closed", "open", "half_open")
_US = 1_000_000
HEALTH_TYPE = pa.struct([
    ("agent", pa.string()), ("state", pa.string()), ("recent_failures", pa.int64()), ("recent_requests", pa.int64()),
    ("opened_at", pa.timestamp("us", tz="UTC")), ("retry_at", pa.timestamp("us", tz="UTC")),
    ("probe_successes", pa.int64()), ("last_failure_at", pa.timestamp("us", tz="UTC")),
])


@dataclass(frozen=True)
class Breaker:
    """An agent's breaker after its last event: state code, opened_at (µs, or None) and consecutive successful
    probes while half-open."""

    state: int
    opened_at: int | None = None
    probes: int = 0


def run_breaker(ts: np.ndarray, ok: np.ndarray, *, failures: int, window_us: int, cooldown_us: int,
                recovery: int) -> Breaker:
    """The machine of the module docstring over one agent's events.

    ts : int64 (n,) µs, sorted ascending; ok : bool (n,). Cost: O(log n) per state change plus O(failures) per
    trip (vectorized), so a long healthy history costs one searchsorted.
    """
    fail_at = np.flatnonzero(~ok)  # event indices of failures
    fail_ts = ts[fail_at]
    first_in_window = np.searchsorted(fail_ts, fail_ts - window_us, side="right")
    n, pos = len(ts), 0
    while True:  # closed phase from event `pos`
        k0 = int(np.searchsorted(fail_at, pos))
        trip = _next_trip(first_in_window, k0, failures)
        if trip < 0:
            return Breaker(CLOSED)
        event = int(fail_at[trip])
        opened = int(ts[event])
        while True:  # open, then half-open probes
            probe = max(event + 1, int(np.searchsorted(ts, opened + cooldown_us, side="left")))
            if probe >= n:
                return Breaker(OPEN, opened)
            k = int(np.searchsorted(fail_at, probe))
            next_failure = int(fail_at[k]) if k < len(fail_at) else n
            if next_failure - probe >= recovery:
                pos = probe + recovery
                break
            if next_failure >= n:
                return Breaker(HALF_OPEN, opened, next_failure - probe)
            event, opened = next_failure, int(ts[next_failure])


def _next_trip(first_in_window: np.ndarray, k0: int, failures: int) -> int:
    """The first failure k >= k0 that is the ``failures``-th within the window counting from failure k0, or -1.

    Scans ahead in doubling chunks, so a trip costs O(distance to it), not O(all remaining failures).
    """
    k, span, total = k0, 64, len(first_in_window)
    while k < total:
        hi = min(total, k + span)
        counts = np.arange(k, hi) - np.maximum(first_in_window[k:hi], k0) + 1
        hits = np.flatnonzero(counts >= failures)
        if hits.size:
            return k + int(hits[0])
        k, span = hi, span * 2
    return -1


class Health:
    """Circuit-breaker states of agents, derived from recorded usage."""

    def __init__(self, usage: Usage, registry: Registry, settings: Settings) -> None:
        self.usage = usage
        self.registry = registry
        self.settings = settings
        self._replay: tuple[tuple[int, int], dict[str, Breaker]] | None = None

    def states(self, names: Sequence[str] | pa.Array, now: Any = None) -> np.ndarray:
        """int8 (A,) aligned with ``names``: 0 closed, 1 open, 2 half-open at ``now`` (default: the current time).

        An agent with no recorded events is closed.
        """
        now_us = to_us(now)
        breakers = self._breakers(now_us)
        if not breakers:  # the usual case: no agent ever failed often enough to trip
            return np.zeros(len(names), np.int8)
        names = names.to_pylist() if isinstance(names, (pa.Array, pa.ChunkedArray)) else list(names)
        return np.array([self._at(breakers.get(name), now_us)[0] for name in names], dtype=np.int8)

    def open_circuits(self, names: Sequence[str] | pa.Array, now_us: int) -> tuple[np.ndarray, int | None]:
        """For a routing snapshot at ``now_us``: bool (A,) aligned with ``names``, True where the circuit is open,
        and the µs at which the first of them turns half-open (None when none is open): until then the answer
        stands unless usage is recorded."""
        breakers = self._breakers(now_us)
        if not breakers:
            return np.zeros(len(names), bool), None
        names = names.to_pylist() if isinstance(names, (pa.Array, pa.ChunkedArray)) else list(names)
        cooldown = int(self.settings.breaker_cooldown_s * _US)
        opened = [breakers[n].opened_at if self._at(breakers.get(n), now_us)[0] == OPEN else None for n in names]
        is_open = np.array([o is not None for o in opened], bool)
        return is_open, min((o + cooldown for o in opened if o is not None), default=None)

    def table(self, now: Any = None) -> pl.DataFrame:
        """One row per registered agent (by name): agent, state, recent_failures and recent_requests (within the
        window before now), opened_at, retry_at (when an open circuit turns half-open), probe_successes,
        last_failure_at."""
        now_us = to_us(now)
        breakers = self._breakers(now_us)
        names = self.registry.snapshot().name_list()
        window = self.settings.breaker_window_s * _US
        frame = self.usage.frame().lazy().filter(pl.col("agent").is_in(names))
        start, end = _as_utc(now_us - window), _as_utc(now_us)
        recent = (frame.filter((pl.col("ts") > start) & (pl.col("ts") <= end)).group_by("agent")
                  .agg(pl.len().cast(pl.Int64).alias("recent_requests"),
                       (~pl.col("success")).sum().cast(pl.Int64).alias("recent_failures"))
                  .join(frame.filter(~pl.col("success") & (pl.col("ts") <= end)).group_by("agent")
                        .agg(pl.col("ts").max().alias("last_failure_at")), on="agent", how="full", coalesce=True)
                  .collect())
        rows = []
        for name in names:
            state, opened, probes = self._at(breakers.get(name), now_us)
            rows.append({"agent": name, "state": STATE_NAMES[state],
                         "opened_at": opened, "retry_at": None if opened is None
                         else opened + int(self.settings.breaker_cooldown_s * _US), "probe_successes": probes})
        frame = pl.DataFrame(rows, schema={"agent": pl.String, "state": pl.String, "opened_at": pl.Int64,
                                           "retry_at": pl.Int64, "probe_successes": pl.Int64})
        frame = frame.with_columns(pl.col("opened_at", "retry_at").cast(pl.Datetime("us", "UTC")))
        frame = frame.join(recent, on="agent", how="left").with_columns(
            pl.col("recent_failures", "recent_requests").fill_null(0))
        return frame.select(HEALTH_TYPE.names)

    # -- helpers ------------------------------------------------------------------------------------------------
    def _at(self, breaker: Breaker | None, now_us: int) -> tuple[int, int | None, int]:
        """(state, opened_at, probes) at ``now``: an open circuit past its cool-down is half-open."""
        if breaker is None or breaker.state == CLOSED:
            return CLOSED, None, 0
        if breaker.state == OPEN and now_us >= breaker.opened_at + int(self.settings.breaker_cooldown_s * _US):
            return HALF_OPEN, breaker.opened_at, 0
        return breaker.state, breaker.opened_at, breaker.probes

    def _breakers(self, now_us: int) -> dict[str, Breaker]:
        """Breakers after every event up to ``now`` (cached by usage version for the usual now >= newest event)."""
        book = self.usage.store.snapshot("usage", "breakers", lambda table: BreakerBook.build(table, self.settings),
                                         extend=lambda cached, rows: cached.extended(rows, self.settings))
        if book.latest_us is None or now_us >= book.latest_us:
            return book.breakers
        key = (self.usage.version(), now_us)
        if self._replay is None or self._replay[0] != key:
            self._replay = (key, book.until(now_us, self.settings))
        return self._replay[1]


@dataclass(frozen=True)
class BreakerBook:
    """Every agent's events in (ts, insertion) order, its breaker after them, and the newest event's time.

    events : agent -> (ts int64 (k,) µs ascending, ok bool (k,)); breakers : agents that ever had N failures (the
    others are closed). Built from the usage table once per version; this process's own appends extend it agent by
    agent (:meth:`extended`), so recording an event costs the next route one agent's breaker, not a full read.
    """

    latest_us: int | None
    events: dict[str, tuple[np.ndarray, np.ndarray]]
    breakers: dict[str, Breaker]

    @classmethod
    def build(cls, table: pa.Table, settings: Settings) -> BreakerBook:
        frame = _events(table).sort("t", maintain_order=True)  # stable: insertion order among equal timestamps
        events = {name: (group["t"].to_numpy(), group["success"].to_numpy())
                  for (name,), group in frame.partition_by("agent", as_dict=True, maintain_order=True).items()}
        latest = int(frame["t"].max()) if frame.height else None
        return cls(latest, events, _tripped(events, settings))

    def extended(self, rows: pa.Table, settings: Settings) -> BreakerBook:
        """The book after ``rows`` were appended to the usage table (the agents they name are re-run)."""
        added = _events(rows)
        if not added.height:
            return self
        events, touched = dict(self.events), []
        for (name,), group in added.partition_by("agent", as_dict=True, maintain_order=True).items():
            touched.append(name)
            new_ts, new_ok = group["t"].to_numpy(), group["success"].to_numpy()
            old_ts, old_ok = events.get(name, (new_ts[:0], new_ok[:0]))
            ts, ok = np.concatenate([old_ts, new_ts]), np.concatenate([old_ok, new_ok])
            in_order = (not len(old_ts) or new_ts[0] >= old_ts[-1]) and bool(np.all(new_ts[1:] >= new_ts[:-1]))
            if not in_order:  # a backfilled event: stable, so equal timestamps keep insertion order
                order = np.argsort(ts, kind="stable")
                ts, ok = ts[order], ok[order]
            events[name] = (ts, ok)
        breakers = {name: b for name, b in self.breakers.items() if name not in touched}
        breakers.update(_tripped({name: events[name] for name in touched}, settings))
        latest = int(added["t"].max()) if self.latest_us is None else max(self.latest_us, int(added["t"].max()))
        return BreakerBook(latest, events, breakers)

    def until(self, now_us: int, settings: Settings) -> dict[str, Breaker]:
        """Breakers after the events at or before ``now`` only (a replay of an earlier moment)."""
        cut = {name: (ts[:k], ok[:k]) for name, (ts, ok) in self.events.items()
               if (k := int(np.searchsorted(ts, now_us, side="right")))}
        return _tripped(cut, settings)


def _events(table: pa.Table) -> pl.DataFrame:
    """agent, t (µs since the epoch), success of usage rows, in table order."""
    frame = pl.from_arrow(table.select(["agent", "ts", "success"]))
    return frame.select("agent", pl.col("ts").dt.epoch("us").alias("t"), "success")


def _tripped(events: dict[str, tuple[np.ndarray, np.ndarray]], settings: Settings) -> dict[str, Breaker]:
    """Breakers of the agents with at least N failures (only they can ever have tripped)."""
    s = settings
    return {name: run_breaker(ts, ok, failures=s.breaker_failures, window_us=int(s.breaker_window_s * _US),
                              cooldown_us=int(s.breaker_cooldown_s * _US), recovery=s.breaker_recovery_successes)
            for name, (ts, ok) in events.items() if len(ok) - int(np.count_nonzero(ok)) >= s.breaker_failures}


def _as_utc(us: float) -> datetime:
    """A µs moment as a datetime, clamped to years 1-9999 (a window reaching before year 1 starts at year 1)."""
    us = min(max(int(us), MIN_TS_US), MAX_TS_US)
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)
