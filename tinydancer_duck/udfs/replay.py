"""Simulation UDFs: replay a log, its summary, cost-quality curves, budget what-if, train the outcome router.

Each takes its (constant) arguments as one-row columns and returns one LIST(STRUCT) value that the table macros in
sql/60_replay.sql unnest; the work is done by tinydancer_duck.replay._simulate, curves, whatif and outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tinydancer_duck.learn import CALIBRATION_TYPE, KNOB_TYPE, METRICS_TYPE
from tinydancer_duck.replay import CURVE_TYPE, ROW_TYPE, SUMMARY_TYPE, WHATIF_TYPE, budget_whatif, curve, simulate
from tinydancer_duck.routing import CONSTRAINT_OPTIONS

from ._spec import UDF, arrow_sql_type, as_list, one_chunk

if TYPE_CHECKING:
    from tinydancer_duck.engine import Engine

POLICY = ("VARCHAR", "VARCHAR", "VARCHAR[]", "DOUBLE", "DOUBLE", "DOUBLE", "VARCHAR[]", "DOUBLE", "VARCHAR", "DOUBLE",
          "BOOLEAN", "DOUBLE")


def _rows(columns: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The Python values of each input row (the macros pass constants: one row)."""
    return list(zip(*[one_chunk(c).to_pylist() for c in columns]))


def _table_list(table: pa.Table, typ: pa.DataType) -> pa.Array:
    rows = pa.StructArray.from_arrays([c.combine_chunks() for c in table.columns], names=table.column_names) \
        if table.num_rows else pa.array([], typ)
    return as_list(rows, typ)


def _constraints(values: tuple[Any, ...]) -> dict[str, Any]:
    return {k: v for k, v in zip(CONSTRAINT_OPTIONS, values) if v is not None}


def udfs(engine: Engine) -> list[UDF]:
    """The area's UDFs bound to ``engine``. Long because it declares one small adapter per SQL function of the
    area, side by side with its registration."""

    def run_simulation(log, optimize_for, *rest, summary: bool) -> list[pa.Array]:
        out = []
        for log_, objective, caps, max_cost, max_latency, min_quality, excluded, budget, columns, price, observed, \
                holdout in _rows((log, optimize_for, *rest)):
            table, result = simulate(engine.snapshot(), log_, optimize_for=objective, budget=budget, columns=columns,
                                     willingness_to_pay=price, observed_only=bool(observed), holdout=holdout,
                                     keep_rows=not summary,
                                     **_constraints((caps, max_cost, max_latency, min_quality, excluded)))
            out.append(as_list(pa.array([result], SUMMARY_TYPE), SUMMARY_TYPE) if summary
                       else _table_list(table, ROW_TYPE))
        return out

    def simulate_rows(log, optimize_for, caps, max_cost, max_latency, min_quality, excluded, budget, columns,
                      willingness_to_pay, observed_only, holdout) -> pa.Array:
        parts = run_simulation(log, optimize_for, caps, max_cost, max_latency, min_quality, excluded, budget, columns,
                               willingness_to_pay, observed_only, holdout, summary=False)
        return pa.concat_arrays(parts) if parts else pa.array([], pa.list_(ROW_TYPE))

    def simulate_summary(log, optimize_for, caps, max_cost, max_latency, min_quality, excluded, budget, columns,
                         willingness_to_pay, observed_only, holdout) -> pa.Array:
        parts = run_simulation(log, optimize_for, caps, max_cost, max_latency, min_quality, excluded, budget, columns,
                               willingness_to_pay, observed_only, holdout, summary=True)
        return pa.concat_arrays(parts) if parts else pa.array([], pa.list_(SUMMARY_TYPE))

    def cost_quality_curve(log, points, columns, caps, max_cost, max_latency, min_quality, excluded, observed_only,
                           holdout) -> pa.Array:
        parts = []
        for log_, points_, columns_, *constraint, observed, holdout_ in _rows(
                (log, points, columns, caps, max_cost, max_latency, min_quality, excluded, observed_only, holdout)):
            table, _ = curve(engine.snapshot(), log_, points=40 if points_ is None else points_, columns=columns_,
                             observed_only=bool(observed), holdout=holdout_, **_constraints(tuple(constraint)))
            parts.append(_table_list(table, CURVE_TYPE))
        return pa.concat_arrays(parts) if parts else pa.array([], pa.list_(CURVE_TYPE))

    def whatif(log, budgets, quality_threshold, latency_threshold_ms, columns, caps, max_cost, min_quality,
               excluded, observed_only, holdout) -> pa.Array:
        parts = []
        for log_, budgets_, threshold, latency, columns_, caps_, cost_, quality_, excluded_, observed, holdout_ in \
                _rows((log, budgets, quality_threshold, latency_threshold_ms, columns, caps, max_cost, min_quality,
                       excluded, observed_only, holdout)):
            table = budget_whatif(engine.snapshot(), log_, budgets_, quality_threshold=threshold,
                                  latency_threshold_ms=latency, columns=columns_, observed_only=bool(observed),
                                  holdout=holdout_, **_constraints((caps_, cost_, None, quality_, excluded_)))
            parts.append(_table_list(table, WHATIF_TYPE))
        return pa.concat_arrays(parts) if parts else pa.array([], pa.list_(WHATIF_TYPE))

    def train_outcome_router(source, model, columns, kind, hidden_dim, epochs, learning_rate, weight_decay,
                             validation_fraction, calibration, random_state, folds, holdout) -> pa.Array:
        parts = []
        for source_, model_, columns_, kind_, hidden, epochs_, rate, decay, fraction, calibration_, seed, folds_, \
                holdout_ in _rows((source, model, columns, kind, hidden_dim, epochs, learning_rate, weight_decay,
                                   validation_fraction, calibration, random_state, folds, holdout)):
            table = engine.outcomes.train_log(source_, columns=columns_, model=model_, kind=kind_,
                                              hidden_dim=hidden, epochs=epochs_, learning_rate=rate,
                                              weight_decay=decay, validation_fraction=fraction,
                                              calibration=calibration_, random_state=seed, folds=folds_,
                                              holdout=holdout_)
            parts.append(_table_list(table, METRICS_TYPE))
        return pa.concat_arrays(parts) if parts else pa.array([], pa.list_(METRICS_TYPE))

    def calibrate(quality_share, cost_per_1k, strongest_share, model) -> pa.Array:
        knobs = [engine.outcomes.knob(quality_share=q, cost_per_1k=c, strongest_share=s, model=m)
                 for q, c, s, m in _rows((quality_share, cost_per_1k, strongest_share, model))]
        return pa.array(knobs, KNOB_TYPE)

    def calibration_curve(model) -> pa.Array:
        return pa.array([engine.outcomes.curve_rows(m) for (m,) in _rows((model,))], pa.list_(CALIBRATION_TYPE))

    constraints = ["VARCHAR[]", "DOUBLE", "DOUBLE", "DOUBLE", "VARCHAR[]"]
    return [
        UDF("_td_simulate", simulate_rows, list(POLICY), arrow_sql_type(ROW_TYPE) + "[]", side_effects=True),
        UDF("_td_simulate_summary", simulate_summary, list(POLICY), arrow_sql_type(SUMMARY_TYPE) + "[]",
            side_effects=True),
        UDF("_td_cost_quality_curve", cost_quality_curve, ["VARCHAR", "BIGINT", "VARCHAR", *constraints, "BOOLEAN",
                                                           "DOUBLE"],
            arrow_sql_type(CURVE_TYPE) + "[]", side_effects=True),
        UDF("_td_budget_whatif", whatif, ["VARCHAR", "DOUBLE[]", "DOUBLE", "DOUBLE", "VARCHAR", "VARCHAR[]", "DOUBLE",
                                          "DOUBLE", "VARCHAR[]", "BOOLEAN", "DOUBLE"],
            arrow_sql_type(WHATIF_TYPE) + "[]", side_effects=True),
        UDF("_td_calibrate", calibrate, ["DOUBLE", "DOUBLE", "DOUBLE", "VARCHAR"], arrow_sql_type(KNOB_TYPE),
            side_effects=True),
        UDF("_td_calibration_curve", calibration_curve, ["VARCHAR"], arrow_sql_type(CALIBRATION_TYPE) + "[]",
            side_effects=True),
        UDF("_td_train_outcome_router", train_outcome_router, ["VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT",
                                                               "BIGINT", "DOUBLE", "DOUBLE", "DOUBLE", "VARCHAR",
                                                               "BIGINT", "BIGINT", "DOUBLE"],
            arrow_sql_type(METRICS_TYPE) + "[]", side_effects=True),
    ]
