"""Agents from an outcome log: register every agent a log holds outcomes for, priced and scored by the log itself.

A replay of a RouterBench-style log needs its agents registered with what the log says about them; typing them in
by hand (or UNPIVOTing eleven columns in SQL) is where mistakes creep in. Per agent of the log (its wide per-agent
columns, or the distinct values of its ``agent`` column; :func:`tinydancer_duck._logs.log_agents`):

- price: with ``tokens_in`` and ``tokens_out`` columns (a long log), ``cost_per_1k_tokens`` = 1000 x its total logged
  cost / its total tokens; otherwise ``cost_per_call`` = its mean logged cost per request;
- ``avg_latency_ms``: its mean logged latency (a long log with ``latency_ms``), else left to the default;
- ``quality_score``: its mean observed outcome (the prior a replay falls back on where the log has none);
- ``metadata.imported_from``: the log and how many outcomes each figure rests on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

IMPORT_TYPE = pa.struct([("name", pa.string()), ("observed", pa.int64()), ("quality_score", pa.float64()),
                         ("cost_per_call", pa.float64()), ("cost_per_1k_tokens", pa.float64()),
                         ("avg_latency_ms", pa.float64())])


def agents_from_log(log: Any, *, columns: Any = None, agent_type: str = "llm",
                    capabilities: Sequence[str] = ("general",)) -> list[dict[str, Any]]:
    """One registration dict per agent of ``log`` (module docstring); an error names ``log`` when it holds no
    per-agent outcomes."""
    import polars as pl

    from tinydancer_duck._logs import log_agents, open_log, resolved_path
    from tinydancer_duck.errors import InvalidArgument

    spec = open_log(log, columns=columns)
    if not log_agents(spec):
        raise InvalidArgument("log", spec.path, "holds no agents: neither wide columns '<agent>' with "
                              "'<agent>|total_cost' nor a column agent")
    frame = pl.scan_pyarrow_dataset(spec.dataset)
    if spec.wide:
        stats = pl.concat([frame.select(
            pl.lit(agent).alias("name"), pl.col(column).cast(pl.Float64).alias("quality"),
            (pl.col(spec.outcome_cost[agent]).cast(pl.Float64) if agent in spec.outcome_cost
             else pl.lit(None, pl.Float64)).alias("cost"),
            pl.lit(None, pl.Float64).alias("latency_ms"), pl.lit(None, pl.Float64).alias("tokens"))
            for agent, column in spec.outcome.items()])
    else:
        fields = spec.fields
        names = set(spec.dataset.schema.names)
        number = (lambda field: pl.col(fields[field]).cast(pl.Float64) if field in fields else pl.lit(None, pl.Float64))
        tokens = (pl.col("tokens_in").cast(pl.Float64) + pl.col("tokens_out").cast(pl.Float64)
                  if {"tokens_in", "tokens_out"} <= names else pl.lit(None, pl.Float64))
        stats = frame.select(pl.col(fields["agent"]).cast(pl.String).alias("name"), number("quality").alias("quality"),
                             number("cost").alias("cost"), number("latency_ms").alias("latency_ms"),
                             tokens.alias("tokens"))
    summary = (stats.drop_nulls("name").group_by("name")
               .agg(pl.col("quality").count().alias("observed"), pl.col("quality").mean(),
                    pl.col("cost").mean().alias("cost_per_call"),
                    (1000.0 * pl.col("cost").filter(pl.col("tokens").is_not_null()).sum()
                     / pl.col("tokens").filter(pl.col("cost").is_not_null()).sum()).alias("per_1k"),
                    pl.col("tokens").count().alias("with_tokens"), pl.col("latency_ms").mean())
               .sort("name").collect())
    source = resolved_path(spec.path)
    out = []
    for row in summary.iter_rows(named=True):  # one row per agent
        by_tokens = row["with_tokens"] > 0 and row["per_1k"] is not None and row["per_1k"] == row["per_1k"]
        out.append({"name": row["name"], "agent_type": agent_type, "capabilities": list(capabilities),
                    "cost_per_call": None if by_tokens else row["cost_per_call"],
                    "cost_per_1k_tokens": row["per_1k"] if by_tokens else None,
                    "avg_latency_ms": row["latency_ms"], "quality_score": row["quality"],
                    "metadata": json.dumps({"imported_from": source, "observed_outcomes": row["observed"]}),
                    "observed": row["observed"]})
    return out
