"""Budget UDFs: set and remove budgets, their status, and the monthly allocation optimizer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from tinydancer_duck.budget import OPTIMIZE_TYPE, STATUS_TYPE

from ._spec import UDF, arrow_sql_type, as_list, now_of, one_chunk

if TYPE_CHECKING:
    from tinydancer_duck.engine import Engine

def _struct_rows(frame: pl.DataFrame) -> pa.StructArray:
    table = frame.to_arrow()
    return pa.StructArray.from_arrays([c.combine_chunks() for c in table.columns], names=table.column_names)


def udfs(engine: Engine) -> list[UDF]:
    budgets = engine.budgets

    def set_budget(amount: pa.ChunkedArray, agent: pa.ChunkedArray, period: pa.ChunkedArray) -> pa.Array:
        budgets.set(one_chunk(amount), one_chunk(agent), one_chunk(period))
        return pa.array([True] * len(amount), pa.bool_())

    def remove_budget(agent: pa.ChunkedArray) -> pa.Array:
        return pa.array([budgets.remove(a) for a in one_chunk(agent).to_pylist()], pa.bool_())

    def budget_status(now: pa.ChunkedArray) -> pa.Array:
        return as_list(_struct_rows(budgets.status(now_of(now))), STATUS_TYPE)

    def optimize_budget(monthly_budget, quality_threshold, latency_threshold_ms, demand, period_days) -> pa.Array:
        columns = [one_chunk(c).to_pylist() for c in
                   (monthly_budget, quality_threshold, latency_threshold_ms, demand, period_days)]
        names = ("quality_threshold", "latency_threshold_ms", "demand", "period_days")
        results = [budgets.optimize(b, **{k: v for k, v in zip(names, rest) if v is not None})  # NULL: the default
                   for b, *rest in zip(*columns)]
        return pa.concat_arrays([as_list(_struct_rows(r), OPTIMIZE_TYPE) for r in results]) if results \
            else pa.array([], pa.list_(OPTIMIZE_TYPE))

    return [
        UDF("_td_set_budget", set_budget, ["DOUBLE", "VARCHAR", "VARCHAR"], "BOOLEAN", side_effects=True),
        UDF("_td_remove_budget", remove_budget, ["VARCHAR"], "BOOLEAN", side_effects=True),
        UDF("_td_budget_status", budget_status, ["BIGINT"], arrow_sql_type(STATUS_TYPE) + "[]", side_effects=True),
        UDF("_td_optimize_budget", optimize_budget, ["DOUBLE", "DOUBLE", "DOUBLE", "VARCHAR", "DOUBLE"],
            arrow_sql_type(OPTIMIZE_TYPE) + "[]", side_effects=True),
    ]
