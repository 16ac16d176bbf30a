"""Usage, analytics and health UDFs: record events, ingest a Parquet log, analytics, summary, circuit breakers."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import pyarrow as pa

from tinydancer_duck.usage import ANALYTICS_TYPE, DEFAULT_BATCH_ROWS, HEALTH_TYPE, INGEST_TYPE, STATS_TYPE

from ._spec import UDF, arrow_sql_type, as_list, epoch_us_to_ts, now_of, one_chunk

if TYPE_CHECKING:
    from tinydancer_duck.engine import Engine

RECORD_FIELDS = ("agent", "cost", "success", "latency_ms", "ts", "request_id", "route", "category", "tokens_in",
                 "tokens_out", "quality")
RECORD_TYPES = ("VARCHAR", "DOUBLE", "BOOLEAN", "DOUBLE", "BIGINT", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT",
                "BIGINT", "DOUBLE")
def udfs(engine: Engine) -> list[UDF]:
    def record_usage(agent, cost, success, latency_ms, ts, request_id, route, category, tokens_in, tokens_out,
                     quality) -> pa.Array:
        columns = (agent, cost, success, latency_ms, ts, request_id, route, category, tokens_in, tokens_out, quality)
        fields = {name: one_chunk(c) for name, c in zip(RECORD_FIELDS, columns)}
        fields["ts"] = epoch_us_to_ts(ts)
        return pa.array(engine.usage.record_columns(fields), pa.bool_())

    def ingest_usage(path: pa.ChunkedArray, columns: pa.ChunkedArray, batch_rows: pa.ChunkedArray,
                     ts: pa.ChunkedArray) -> pa.Array:
        reports = []
        for p, mapping, rows, stamp in zip(one_chunk(path).to_pylist(), one_chunk(columns).to_pylist(),
                                           one_chunk(batch_rows).to_pylist(), one_chunk(ts).to_pylist()):
            report = engine.usage.ingest(p, columns=mapping, batch_rows=DEFAULT_BATCH_ROWS if rows is None else rows,
                                         ts=stamp)
            reports.append(asdict(report))
        return pa.array(reports, INGEST_TYPE)

    def routing_analytics(time_range: pa.ChunkedArray, group_by: pa.ChunkedArray) -> pa.Array:
        results = [engine.analytics.analytics_struct(t, g) for t, g in
                   zip(one_chunk(time_range).to_pylist(), one_chunk(group_by).to_pylist())]
        return pa.concat_arrays([as_list(r, ANALYTICS_TYPE) for r in results]) if results \
            else pa.array([], pa.list_(ANALYTICS_TYPE))

    def routing_stats() -> pa.Array:
        return pa.array([engine.analytics.routing_stats()], STATS_TYPE)

    def agent_health(now: pa.ChunkedArray) -> pa.Array:
        table = engine.health.table(now_of(now)).to_arrow()
        return as_list(pa.StructArray.from_arrays([c.combine_chunks() for c in table.columns],
                                                  names=table.column_names), HEALTH_TYPE)

    return [
        UDF("_td_record_usage", record_usage, RECORD_TYPES, "BOOLEAN", side_effects=True),
        UDF("_td_ingest_usage", ingest_usage, ["VARCHAR", "VARCHAR", "BIGINT", "VARCHAR"], arrow_sql_type(INGEST_TYPE),
            side_effects=True),
        UDF("_td_routing_analytics", routing_analytics, ["VARCHAR", "VARCHAR"], arrow_sql_type(ANALYTICS_TYPE) + "[]",
            side_effects=True),
        UDF("_td_routing_stats", routing_stats, [], arrow_sql_type(STATS_TYPE), side_effects=True),
        UDF("_td_agent_health", agent_health, ["BIGINT"], arrow_sql_type(HEALTH_TYPE) + "[]", side_effects=True),
    ]
