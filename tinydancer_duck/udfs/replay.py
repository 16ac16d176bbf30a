"""Replays and the outcome router: simulate a log (per row, or a summary), the cost-quality curve, budget what-if,
train the outcome router, calibrate its willingness to pay. Each takes constant arguments and returns one table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tinydancer_duck.learn import CALIBRATION_TYPE, KNOB_TYPE, METRICS_TYPE
from tinydancer_duck.options import SIGNATURES
from tinydancer_duck.replay import CURVE_TYPE, ROW_TYPE, SUMMARY_TYPE, WHATIF_TYPE, budget_whatif, curve, simulate

from ._bind import TABLE_OF_ONE_ROW, TABLE_OF_ROWS, Adapter, Binding, Call

if TYPE_CHECKING:
    from tinydancer_duck.engine import Engine

TITLE = ("Simulation, cost-quality curves, budget what-if and the outcome router (tinydancer_duck/udfs/replay.py -> "
         "tinydancer_duck/replay/, tinydancer_duck/learn/). log: a Parquet, CSV or JSON file (by extension), or a "
         "folder or glob of them; columns maps log fields (request, request_id, category, agent, cost, quality, "
         "latency_ms, and the per-agent column patterns agent_quality, default '{agent}', and agent_cost, default "
         "'{agent}|total_cost') to its columns. holdout := f replays only the requests "
         "ruvector_train_outcome_router(holdout := f) kept out of training; observed_only := true chooses only among "
         "agents whose outcome the log holds.")


def _rows(typ: pa.DataType, udf: str) -> Call:
    return Call(udf, pa.list_(typ), TABLE_OF_ROWS, side_effects=True)


BINDINGS = (
    Binding(SIGNATURES["ruvector_simulate"], table=_rows(ROW_TYPE, "_td_simulate")),
    Binding(SIGNATURES["ruvector_simulate_summary"], table=_rows(SUMMARY_TYPE, "_td_simulate_summary")),
    Binding(SIGNATURES["ruvector_cost_quality_curve"], table=_rows(CURVE_TYPE, "_td_cost_quality_curve")),
    Binding(SIGNATURES["ruvector_budget_whatif"], table=_rows(WHATIF_TYPE, "_td_budget_whatif")),
    Binding(SIGNATURES["ruvector_train_outcome_router"], table=_rows(METRICS_TYPE, "_td_train_outcome_router")),
    Binding(SIGNATURES["ruvector_calibrate"],
            table=Call("_td_calibrate", KNOB_TYPE, TABLE_OF_ONE_ROW, side_effects=True)),
    Binding(SIGNATURES["ruvector_calibration_curve"], table=_rows(CALIBRATION_TYPE, "_td_calibration_curve")),
)


def adapters(engine: Engine) -> dict[str, Adapter]:
    def simulate_rows(log: str, columns: str | None, **policy: Any) -> pa.Table:
        return simulate(engine.snapshot(), log, columns=columns, **policy)[0]

    def simulate_summary(log: str, columns: str | None, **policy: Any) -> list[dict[str, Any]]:
        return [simulate(engine.snapshot(), log, columns=columns, keep_rows=False, **policy)[1]]

    def cost_quality_curve(log: str, points: int, columns: str | None, **policy: Any) -> pa.Table:
        return curve(engine.snapshot(), log, points=points, columns=columns, **policy)[0]

    def whatif(log: str, budgets: list[float], quality_threshold: float | None, columns: str | None,
               **policy: Any) -> pa.Table:
        return budget_whatif(engine.snapshot(), log, budgets, quality_threshold=quality_threshold, columns=columns,
                             **policy)

    def train_outcome_router(source: str, model: str, columns: str | None, holdout: float | None,
                             **config: Any) -> pa.Table:
        return engine.outcomes.train_log(source, columns=columns, model=model, holdout=holdout, **config)

    def calibrate(**target: Any) -> dict[str, Any]:
        return engine.outcomes.knob(**target)

    def calibration_curve(model: str | None) -> pa.Array:
        return pa.array([engine.outcomes.curve_rows(model)], pa.list_(CALIBRATION_TYPE))

    return {"_td_simulate": simulate_rows, "_td_simulate_summary": simulate_summary,
            "_td_cost_quality_curve": cost_quality_curve, "_td_budget_whatif": whatif,
            "_td_train_outcome_router": train_outcome_router, "_td_calibrate": calibrate,
            "_td_calibration_curve": calibration_curve}
