"""Usage, analytics, health and budgets: record events, ingest a log, analytics, the summary, circuit breakers; set
and remove budgets, their status, and the monthly allocation."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from tinydancer_duck.budget import OPTIMIZE_TYPE, STATUS_TYPE
from tinydancer_duck.options import SIGNATURES
from tinydancer_duck.store import USAGE_SCHEMA
from tinydancer_duck.usage import ANALYTICS_TYPE, HEALTH_TYPE, INGEST_TYPE, STATS_TYPE

from ._arrow import as_list, epoch_us_to_ts, now_of
from ._bind import TABLE_OF_ONE_ROW, TABLE_OF_ROWS, Adapter, Binding, Call

if TYPE_CHECKING:
    from tinydancer_duck.engine import Engine

TITLE = ("Usage, analytics and health (tinydancer_duck/udfs/usage.py -> tinydancer_duck/usage/). Timestamps reach the "
         "UDFs as µs since the epoch (UTC): TIMESTAMPTZ as is, TIMESTAMP/DATE read as UTC, text with an offset "
         "('...Z', '...+02:00') by its offset and text without one as UTC; NULL means now.")
BUDGET_TITLE = "Budgets (tinydancer_duck/udfs/usage.py -> tinydancer_duck/budget/)."
_GROUPED = ("SELECT COLUMNS(lambda c: c NOT IN ('agent', 'route', 'category', 'day', 'hour') OR c = "
            "lower(trim(group_by::VARCHAR))) FROM (" + TABLE_OF_ROWS + ")")

BINDINGS = (
    Binding(SIGNATURES["ruvector_record_usage"], scalar=Call("_td_record_usage", "BOOLEAN", side_effects=True)),
    Binding(SIGNATURES["ruvector_ingest_usage"],
            table=Call("_td_ingest_usage", INGEST_TYPE, TABLE_OF_ONE_ROW, side_effects=True)),
    Binding(SIGNATURES["ruvector_usage_events"],
            table=Call("_td_usage_events", pa.list_(pa.struct(list(USAGE_SCHEMA))), TABLE_OF_ROWS, side_effects=True)),
    Binding(SIGNATURES["ruvector_routing_analytics"],
            table=Call("_td_routing_analytics", pa.list_(ANALYTICS_TYPE), _GROUPED, side_effects=True)),
    Binding(SIGNATURES["ruvector_routing_stats"], scalar=Call("_td_routing_stats", STATS_TYPE, side_effects=True),
            table=Call("_td_routing_stats", STATS_TYPE, TABLE_OF_ONE_ROW, side_effects=True)),
    Binding(SIGNATURES["ruvector_agent_health"],
            table=Call("_td_agent_health", pa.list_(HEALTH_TYPE), TABLE_OF_ROWS, side_effects=True)),
)
BUDGET_BINDINGS = (
    Binding(SIGNATURES["ruvector_set_budget"], scalar=Call("_td_set_budget", "BOOLEAN", side_effects=True)),
    Binding(SIGNATURES["ruvector_remove_budget"], scalar=Call("_td_remove_budget", "BOOLEAN", side_effects=True)),
    Binding(SIGNATURES["ruvector_budget_status"],
            table=Call("_td_budget_status", pa.list_(STATUS_TYPE), TABLE_OF_ROWS, side_effects=True)),
    Binding(SIGNATURES["ruvector_optimize_budget"],
            table=Call("_td_optimize_budget", pa.list_(OPTIMIZE_TYPE), TABLE_OF_ROWS, side_effects=True)),
)


def _arrow(frame: pl.DataFrame) -> pa.Table:
    return frame.to_arrow()


def adapters(engine: Engine) -> dict[str, Adapter]:
    budgets = engine.budgets

    def record_usage(ts: pa.Array, **fields: pa.Array) -> pa.Array:
        return pa.array(engine.usage.record_columns({**fields, "ts": epoch_us_to_ts(ts)}), pa.bool_())

    def ingest_usage(path: str, columns: str | None, batch_rows: int, ts: str | None) -> dict[str, Any]:
        return asdict(engine.usage.ingest(path, columns=columns, batch_rows=batch_rows, ts=ts))

    def usage_events(time_range: str) -> pa.Table:
        return engine.analytics.usage_events(time_range)

    def routing_analytics(time_range: str, group_by: str) -> pa.Array:
        return as_list(engine.analytics.analytics_struct(time_range, group_by), ANALYTICS_TYPE)

    def routing_stats() -> dict[str, Any]:
        return engine.analytics.routing_stats()

    def agent_health(now: int | None) -> pa.Table:
        return _arrow(engine.health.table(now_of(now)))

    def set_budget(amount: pa.Array, agent: pa.Array, period: pa.Array) -> pa.Array:
        budgets.set(amount, agent, period)
        return pa.array([True] * len(amount), pa.bool_())

    def remove_budget(agent: pa.Array) -> pa.Array:
        return pa.array([budgets.remove(a) for a in agent.to_pylist()], pa.bool_())

    def budget_status(now: int | None) -> pa.Table:
        return _arrow(budgets.status(now_of(now)))

    def optimize_budget(monthly_budget: float, **thresholds: Any) -> pa.Table:
        return _arrow(budgets.optimize(monthly_budget, **thresholds))

    return {"_td_record_usage": record_usage, "_td_ingest_usage": ingest_usage,
            "_td_usage_events": usage_events, "_td_routing_analytics": routing_analytics, "_td_routing_stats": routing_stats,
            "_td_agent_health": agent_health, "_td_set_budget": set_budget, "_td_remove_budget": remove_budget,
            "_td_budget_status": budget_status, "_td_optimize_budget": optimize_budget}
