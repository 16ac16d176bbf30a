"""Budgets: spending limits per calendar period (global and per agent), spend tracked from ``usage``, and the
monthly allocation optimizer (:mod:`tinydancer_duck.budget._allocate`).

A budget is (scope, agent, amount, period) in the ``budgets`` table: scope 'global' (every agent's spend counts)
or 'agent'; period 'day', 'week' (ISO, from Monday) or 'month', calendar periods in UTC. Setting a budget again
replaces it (one budget per scope and agent). Spend in the current period is the sum of ``usage.cost`` with
period_start <= ts < period_end.

For the router, :meth:`Budgets.blocked` returns which agents are at or over their own budget and what is left of
the global one. Spend per period is summed once per usage version and period, and this process's own usage records
add to it (:mod:`tinydancer_duck.store._cache`) instead of summing the whole table again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from tinydancer_duck._validate import as_float_column, as_list, check_nonnegative, check_number, check_stored, to_us
from tinydancer_duck.errors import InvalidArgument, NotFound
from tinydancer_duck.options import PERIODS, SIGNATURES, per_row_values
from tinydancer_duck.registry import AgentSnapshot, Registry
from tinydancer_duck.settings import Settings
from tinydancer_duck.store import Store
from tinydancer_duck.usage import Usage

from . import _allocate

_SET = SIGNATURES["ruvector_set_budget"]
STATUS_TYPE = pa.struct([
    ("scope", pa.string()), ("agent", pa.string()), ("period", pa.string()), ("budget", pa.float64()),
    ("spent", pa.float64()), ("remaining", pa.float64()), ("period_start", pa.timestamp("us", tz="UTC")),
    ("period_end", pa.timestamp("us", tz="UTC")),
])
STATUS_SCHEMA = pl.from_arrow(pa.schema(list(STATUS_TYPE)).empty_table()).schema
_UTC = timezone.utc


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the calendar period (UTC) containing ``now``."""
    now = now.astimezone(_UTC) if now.tzinfo else now.replace(tzinfo=_UTC)
    day = datetime(now.year, now.month, now.day, tzinfo=_UTC)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=now.weekday())
        return start, start + timedelta(days=7)
    start = datetime(now.year, now.month, 1, tzinfo=_UTC)
    return start, datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=_UTC)


def period_spend(rows: pa.Table, bounds: Mapping[str, tuple[datetime, datetime]]
                 ) -> dict[tuple[str, str | None], float]:
    """Sum of ``cost`` of usage rows with start <= ts < end, per (period, agent) and per (period, None) over every
    agent. numpy, not polars: it also runs on the one row a live record appends, where a polars group-by's fixed
    cost (~2 ms) would dominate."""
    ts = rows["ts"].cast(pa.int64()).to_numpy()  # µs since the epoch (the column is timestamp[us, UTC])
    cost = rows["cost"].to_numpy()
    agents = rows["agent"].combine_chunks().dictionary_encode()
    names, index = agents.dictionary.to_pylist(), agents.indices.to_numpy()
    spend: dict[tuple[str, str | None], float] = {}
    for period, (start, end) in bounds.items():
        inside = (ts >= to_us(start)) & (ts < to_us(end))
        per_agent = np.bincount(index[inside], weights=cost[inside], minlength=len(names))
        spend.update({(period, name): float(total) for name, total in zip(names, per_agent)})
        spend[(period, None)] = float(cost[inside].sum())
    return spend


def _added(spend: Mapping[tuple[str, str | None], float], more: Mapping[tuple[str, str | None], float]
           ) -> dict[tuple[str, str | None], float]:
    return {key: spend.get(key, 0.0) + more.get(key, 0.0) for key in {*spend, *more}}


class Budgets:
    """Set, remove and track budgets; allocate a monthly budget across agents."""

    def __init__(self, store: Store, usage: Usage, registry: Registry, settings: Settings) -> None:
        self.store = store
        self.usage = usage
        self.registry = registry
        self.settings = settings

    # -- writes -------------------------------------------------------------------------------------------------
    def set(self, amount: Any, agent: Any = None, period: Any = "month") -> int:
        """Set (replace) budgets: scalars for one, or equal-length columns for many; agent None = global.

        amount >= 0 and finite; agent must be registered; period day, week or month. Returns budgets written.
        """
        n = max(len(as_list(value)) for value in (agent, amount, period))
        agents = per_row_values(_SET.param("agent"), agent, n)
        amounts = as_float_column("amount", amount, n)
        check_nonnegative("amount", amounts, required=True)
        check_stored("amount", amounts)
        periods = per_row_values(_SET.param("period"), period, n)
        known = self.registry.snapshot().index
        for name in agents:
            if name is not None and (not isinstance(name, str) or name not in known):
                raise NotFound("agent", name) if isinstance(name, str) else InvalidArgument(
                    "agent", name, "must be an agent name or NULL (global)")
        last = {("agent", a) if a is not None else ("global", ""): i for i, a in enumerate(agents)}
        rows = pa.table({
            "scope": [scope for scope, _ in last], "agent": [name for _, name in last],
            "amount": pa.array([amounts[i] for i in last.values()], pa.float64()),
            "period": [periods[i] for i in last.values()],
            "created_at": pa.array([datetime.now(_UTC)] * len(last), pa.timestamp("us", tz="UTC")),
        })
        self.store.upsert("budgets", rows, key=["scope", "agent"])
        return len(last)

    def remove(self, agent: str | None = None) -> bool:
        """Remove the agent's budget (None: the global one); False if there was none."""
        scope, name = ("agent", agent) if agent is not None else ("global", "")
        stored = self.budgets()
        present = stored.filter((pl.col("scope") == scope) & (pl.col("agent") == name)).height > 0
        if present:
            # agent '' is only ever the global row, and agent names are never blank: the agent column is a key
            self.store.delete_keys("budgets", "agent", [name])
        return present

    # -- reads --------------------------------------------------------------------------------------------------
    def budgets(self) -> pl.DataFrame:
        return self.store.snapshot("budgets", "polars", lambda t: pl.from_arrow(t.combine_chunks()))

    def status(self, now: Any = None) -> pl.DataFrame:
        """One row per budget (global first, then agents by name): scope, agent (NULL for global), period,
        budget, spent, remaining (budget - spent; negative when overspent), period_start, period_end."""
        return pl.DataFrame(self._status_rows(now), schema=STATUS_SCHEMA, orient="row")

    def blocked(self, snapshot_names: Sequence[str] | pa.Array, now: Any = None
                ) -> tuple[np.ndarray, float, int | None]:
        """For the router: (bool (A,) aligned with ``snapshot_names``, True where the agent's own budget has
        nothing left in its current period (spent >= budget); global_remaining: the global budget minus spend
        in its period (may be negative), NaN when no global budget is set; the µs at which the first budget
        period ends (None without budgets): until then the answer stands unless usage or budgets change)."""
        left, remaining, until = self.left(snapshot_names, now)
        return left <= 0, remaining, until

    def left(self, snapshot_names: Sequence[str] | pa.Array, now: Any = None) -> tuple[np.ndarray, float, int | None]:
        """:meth:`blocked` with each agent's own budget left in its period (float (A,), +inf without one) instead
        of whether it is exhausted."""
        rows = self._status_rows(now)
        left = {row[1]: row[5] for row in rows if row[0] == "agent"}
        remaining = next((row[5] for row in rows if row[0] == "global"), float("nan"))
        names = snapshot_names.to_pylist() if isinstance(snapshot_names, (pa.Array, pa.ChunkedArray)) \
            else list(snapshot_names)
        until = min((to_us(row[7]) for row in rows), default=None)
        return (np.fromiter((left.get(name, np.inf) for name in names), dtype=np.float64, count=len(names)),
                remaining, until)

    def _status_rows(self, now: Any) -> list[tuple]:
        """:meth:`status` as tuples in STATUS_SCHEMA order (the router reads them without building a frame)."""
        stored = self.store.snapshot("budgets", "sorted", lambda table: pl.from_arrow(table).sort(
            ["scope", "agent"], descending=[True, False]).select("scope", "agent", "period", "amount").rows())
        if not stored:  # no budget set: nothing to sum
            return []
        now_dt = _as_datetime(now)
        bounds = {p: period_bounds(p, now_dt) for p in PERIODS}
        spend = self._spend(bounds)
        rows = []
        for scope, agent, period, amount in stored:
            agent = agent if scope == "agent" else None
            spent = spend.get((period, agent), 0.0)
            rows.append((scope, agent, period, amount, spent, amount - spent, *bounds[period]))
        return rows

    def _spend(self, bounds: Mapping[str, tuple[datetime, datetime]]) -> dict[tuple[str, str | None], float]:
        """Spend in each period containing now, per (period, agent) and (period, None) for all agents: computed
        once per usage version and these periods, then extended by this process's own appends (a live loop that
        records every request would otherwise sum the whole usage table before every route)."""
        kind = "spend:" + ",".join(f"{p}={start.isoformat()}" for p, (start, _) in bounds.items())
        return self.store.snapshot("usage", kind, lambda table: period_spend(table, bounds),
                                   extend=lambda spend, rows: _added(spend, period_spend(rows, bounds)))

    # -- allocation ---------------------------------------------------------------------------------------------
    def optimize(self, monthly_budget: Any, quality_threshold: Any = 0.8, latency_threshold_ms: Any = 5000.0, *,
                 demand: Any = None, period_days: Any = 30) -> pl.DataFrame:
        """Allocate ``monthly_budget`` across agents (see :mod:`tinydancer_duck.budget._allocate` for the algorithm
        and the output shape).

        demand : None (from usage: requests per category in the last ``period_days`` days before the newest
            event, scaled to 30 days, avg_tokens = mean tokens_in; with no usage recorded, an equal demand over the
            agents' capabilities that the ``basis`` column states as an assumption), a Parquet/CSV/JSON path, or a
            polars/Arrow table / list of dicts with category, requests[, avg_tokens] (avg input tokens per request).
        """
        _allocate.check_thresholds(monthly_budget, quality_threshold, latency_threshold_ms)
        snapshot = self.registry.snapshot()
        if not snapshot.size:
            raise InvalidArgument("agents", "none registered", "register agents before optimizing a budget")
        table, basis = self._demand(demand, period_days, snapshot)
        return _allocate.optimize(table, snapshot, float(monthly_budget), float(quality_threshold),
                                  float(latency_threshold_ms), basis)

    def _demand(self, demand: Any, period_days: Any, snapshot: AgentSnapshot) -> tuple[pl.DataFrame, str]:
        if demand is not None:
            return _clean_demand(_read_demand(demand)), "demand given"
        check_number("period_days", period_days, above=0, maximum=36_500)
        frame = self.usage.frame()
        newest = frame["ts"].max() if frame.height else None
        if newest is None:
            table, basis = _allocate.assumed_demand(snapshot)
            return _clean_demand(table), basis
        recent = frame.filter(pl.col("ts") > newest - timedelta(days=float(period_days)))
        table = recent.group_by("category").agg(
            (pl.len() * (30.0 / float(period_days))).alias("requests"),
            pl.col("tokens_in").mean().alias("avg_tokens"))
        return _clean_demand(table), f"recorded usage of the last {float(period_days):g} days, scaled to 30"


def _read_demand(demand: Any) -> pl.DataFrame:
    try:
        if isinstance(demand, (str, Path)):
            path = str(demand)
            if path.endswith(".csv"):
                return pl.read_csv(path)
            if path.endswith((".json", ".ndjson", ".jsonl")):
                return pl.read_ndjson(path) if not path.endswith(".json") else pl.read_json(path)
            return pl.read_parquet(path)
        if isinstance(demand, pl.DataFrame):
            return demand
        if isinstance(demand, (pa.Table, pa.RecordBatch)):
            return pl.from_arrow(demand)
        if isinstance(demand, Mapping):
            return pl.DataFrame(dict(demand))
        return pl.DataFrame(list(demand))
    except (OSError, pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise InvalidArgument("demand", demand if isinstance(demand, (str, Path)) else type(demand).__name__,
                              f"cannot be read as a demand table ({exc})") from None


def _clean_demand(table: pl.DataFrame) -> pl.DataFrame:
    """category (NULL -> 'uncategorized'), requests >= 0 finite, avg_tokens >= 0 (NULL -> 0); one row per category."""
    for column in ("category", "requests"):
        if column not in table.columns:
            raise InvalidArgument("demand", table.columns, f"needs a {column!r} column (category, requests"
                                  "[, avg_tokens])")
    if "avg_tokens" not in table.columns:
        table = table.with_columns(pl.lit(None, pl.Float64).alias("avg_tokens"))
    try:
        table = table.select(pl.col("category").cast(pl.String).fill_null("uncategorized"),
                             pl.col("requests").cast(pl.Float64), pl.col("avg_tokens").cast(pl.Float64))
    except pl.exceptions.PolarsError:
        raise InvalidArgument("demand", table.schema, "requests and avg_tokens must be numbers") from None
    for column in ("requests", "avg_tokens"):
        values = table[column].drop_nulls().to_numpy()
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            raise InvalidArgument(f"demand.{column}", float(values[bad][0]), "must be a finite number >= 0")
    if table["requests"].null_count():
        raise InvalidArgument("demand.requests", None, "is required for every category")
    table = (table.with_columns(pl.col("avg_tokens").fill_null(0.0))
             .group_by("category").agg(pl.col("requests").sum(),
                                       (pl.col("avg_tokens") * pl.col("requests")).sum().alias("weighted"))
             .with_columns((pl.col("weighted") / pl.when(pl.col("requests") > 0).then(pl.col("requests")))
                           .fill_null(0.0).alias("avg_tokens"))
             .drop("weighted").filter(pl.col("requests") > 0).sort("category"))
    if table.height == 0:
        raise InvalidArgument("demand", "no requests", "has no category with requests > 0: record usage or pass "
                              "demand with category, requests[, avg_tokens]")
    return table


def _as_datetime(now: Any) -> datetime:
    return datetime(1970, 1, 1, tzinfo=_UTC) + timedelta(microseconds=to_us(now))
