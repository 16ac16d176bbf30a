"""Routing analytics over the ``usage`` table, computed with polars on the cached frame (one read per version).

``routing_analytics(time_range, group_by)``: one row per group over the events with ts >= now - time_range:
total_requests, total_cost, avg_cost, avg_latency_ms, p50_latency_ms, p95_latency_ms (linear interpolation, as
numpy's default), success_rate and avg_quality (over events that reported a quality; NULL if none did).
Rows are sorted by the group key (NULL last). ``routing_stats()``: a one-row summary of agents and all usage.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import polars as pl
import pyarrow as pa

from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.registry import Registry
from tinydancer_duck.store import USAGE_SCHEMA

from ._events import Usage

#: group_by -> the polars expression of the group key (named after the group).
GROUPS: dict[str, pl.Expr] = {
    "agent": pl.col("agent"),
    "route": pl.col("route"),
    "category": pl.col("category"),
    "day": pl.col("ts").dt.date(),
    "hour": pl.col("ts").dt.truncate("1h"),
}
KEY_TYPES: dict[str, pa.DataType] = {
    "agent": pa.string(), "route": pa.string(), "category": pa.string(), "day": pa.date32(),
    "hour": pa.timestamp("us", tz="UTC"),
}
METRICS: dict[str, pa.DataType] = {
    "total_requests": pa.int64(), "total_cost": pa.float64(), "avg_cost": pa.float64(),
    "avg_latency_ms": pa.float64(), "p50_latency_ms": pa.float64(), "p95_latency_ms": pa.float64(),
    "success_rate": pa.float64(), "avg_quality": pa.float64(),
}
#: One analytics row as the SQL table returns it: every group key column (only the grouped one is filled; the SQL
#: macro keeps just that one) and the metrics.
ANALYTICS_TYPE = pa.struct([*KEY_TYPES.items(), *METRICS.items()])
STATS_TYPE = pa.struct([("agents", pa.int64()), ("active_agents", pa.int64()), ("total_requests", pa.int64()),
                        ("total_cost", pa.float64()), ("success_rate", pa.float64()),
                        ("avg_latency_ms", pa.float64()), ("agents_with_usage", pa.int64()),
                        ("first_ts", pa.timestamp("us", tz="UTC")), ("last_ts", pa.timestamp("us", tz="UTC"))])

_UNITS = {"second": 1, "sec": 1, "s": 1, "minute": 60, "min": 60, "m": 60, "hour": 3600, "hr": 3600, "h": 3600,
          "day": 86400, "d": 86400, "week": 604800, "wk": 604800, "w": 604800}
_RANGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+?)s?\s*$")


def parse_time_range(time_range: Any) -> timedelta | None:
    """'7 days', '24 hours', '30 minutes', '1 week', '90 s', '2h' ... -> timedelta; 'all' or NULL -> None (no limit).

    Anything else is an error naming time_range (months are refused: their length is ambiguous; say '30 days').
    """
    if time_range is None:
        return None
    if not isinstance(time_range, str):
        raise InvalidArgument("time_range", time_range, "must be text like '7 days', '24 hours' or 'all'")
    text = time_range.strip().lower()
    if text == "all":
        return None
    match = _RANGE.match(text)
    unit = match and (_UNITS.get(match.group(2)) or _UNITS.get(match.group(2) + "s"))
    if not match or not unit:
        raise InvalidArgument("time_range", time_range, "must be a number and a unit (seconds, minutes, hours, "
                              "days, weeks), e.g. '7 days', '24 hours', '30 minutes', '1 week', or 'all'")
    return timedelta(seconds=float(match.group(1)) * unit)


def check_group_by(group_by: Any) -> str:
    if isinstance(group_by, str) and group_by.strip().lower() in GROUPS:
        return group_by.strip().lower()
    raise InvalidArgument("group_by", group_by, f"must be one of {', '.join(GROUPS)}")


def aggregate(frame: pl.DataFrame | pl.LazyFrame, group_by: str) -> pl.DataFrame:
    """The analytics metrics of ``frame`` (usage columns) per ``group_by`` key, sorted by the key (NULL last)."""
    latency = pl.col("latency_ms")
    return (
        frame.lazy()
        .group_by(GROUPS[group_by].alias(group_by))
        .agg(
            pl.len().cast(pl.Int64).alias("total_requests"),
            pl.col("cost").sum().alias("total_cost"),
            pl.col("cost").mean().alias("avg_cost"),
            latency.mean().alias("avg_latency_ms"),
            latency.quantile(0.5, "linear").alias("p50_latency_ms"),
            latency.quantile(0.95, "linear").alias("p95_latency_ms"),
            pl.col("success").cast(pl.Float64).mean().alias("success_rate"),
            pl.col("quality").mean().alias("avg_quality"),
        )
        .sort(group_by, nulls_last=True)
        .collect()
    )


class Analytics:
    """Analytics and the summary over one store's usage and agents."""

    def __init__(self, usage: Usage, registry: Registry) -> None:
        self.usage = usage
        self.registry = registry

    def routing_analytics(self, time_range: Any = "7 days", group_by: Any = "agent", *,
                          now: datetime | None = None) -> pl.DataFrame:
        """Metrics per agent, route, category, day or hour over the events since ``now - time_range``.

        Returns a polars frame: the group key column (named like group_by) then the metrics (module docstring).
        """
        span = parse_time_range(time_range)
        group = check_group_by(group_by)
        frame = self.usage.frame()
        if span is not None:
            now = now or datetime.now(timezone.utc)
            frame = frame.filter(pl.col("ts") >= (now - span))
        return aggregate(frame, group)

    def usage_events(self, time_range: Any = "all", *, now: datetime | None = None) -> pa.Table:
        """The recorded events since ``now - time_range`` in time order (USAGE_SCHEMA columns): what a replay of
        the store's own traffic reads once joined with the requests' text (README "Replaying a production log")."""
        span = parse_time_range(time_range)
        frame = self.usage.frame()
        if span is not None:
            frame = frame.filter(pl.col("ts") >= ((now or datetime.now(timezone.utc)) - span))
        return frame.select(USAGE_SCHEMA.names).sort("ts", maintain_order=True).to_arrow().cast(USAGE_SCHEMA)

    def analytics_struct(self, time_range: Any = "7 days", group_by: Any = "agent") -> pa.StructArray:
        """The rows of :meth:`routing_analytics` as ANALYTICS_TYPE structs (every key column, one filled)."""
        result = self.routing_analytics(time_range, group_by).to_arrow()
        n = result.num_rows
        columns = [result[name].cast(typ) if name in result.column_names else pa.nulls(n, typ)
                   for name, typ in [*KEY_TYPES.items(), *METRICS.items()]]
        arrays = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in columns]
        return pa.StructArray.from_arrays(arrays, fields=list(ANALYTICS_TYPE))

    def routing_stats(self) -> dict[str, Any]:
        """agents, active_agents, total_requests, total_cost, success_rate, avg_latency_ms, agents_with_usage,
        first_ts, last_ts (rates and times NULL when nothing was recorded)."""
        snap = self.registry.snapshot()
        frame = self.usage.frame()
        totals = frame.select(
            pl.len().cast(pl.Int64).alias("total_requests"),
            pl.col("cost").sum().alias("total_cost"),
            pl.col("success").cast(pl.Float64).mean().alias("success_rate"),
            pl.col("latency_ms").mean().alias("avg_latency_ms"),
            pl.col("agent").n_unique().cast(pl.Int64).alias("agents_with_usage"),
            pl.col("ts").min().alias("first_ts"),
            pl.col("ts").max().alias("last_ts"),
        ).row(0, named=True)
        return {"agents": snap.size, "active_agents": int(snap.active.sum()), **totals}
