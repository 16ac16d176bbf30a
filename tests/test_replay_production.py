"""Replaying a production log (one agent's outcome per request, with the logging policy's propensity): estimators,
intervals, counterfactual cost and learning from it, end to end on a real store; bad propensities fail clearly."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tinydancer_duck.cli._main import main
from tinydancer_duck.datasets.generate_log import AGENTS, generate_log
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.learn._outcome_models import _agent_mean
from tinydancer_duck.replay import budget_whatif, curve, simulate

NAMES = list(AGENTS)
HOLDOUT = 0.25


def production(wide: pa.Table, seed: int = 0) -> tuple[pa.Table, np.ndarray]:
    """A log of ``wide``'s requests, each served by one agent drawn with context-dependent probabilities (math
    prefers the generalist), keeping only that agent's outcome and cost and the probability it had."""
    rng = np.random.default_rng(seed)
    category = np.array(wide["category"].to_pylist())
    p = np.where((category == "math")[:, None], [0.2, 0.2, 0.6], [0.4, 0.3, 0.3])
    chosen = (rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    rows = np.arange(len(p))
    quality = np.column_stack([wide[a].to_numpy() for a in NAMES])
    cost = np.column_stack([wide[f"{a}|total_cost"].to_numpy() for a in NAMES])
    log = pa.table({"request_id": wide["request_id"], "category": wide["category"], "request": wide["request"],
                    "agent": pa.array(np.array(NAMES, dtype=object)[chosen].tolist()),
                    "quality": quality[rows, chosen], "cost": cost[rows, chosen], "propensity": p[rows, chosen]})
    return log, quality


@pytest.fixture
def store_and_log(engine, tmp_path):
    wide = generate_log(1500, seed=11, actual=None)
    log, quality = production(wide)
    path = tmp_path / "production.parquet"
    pq.write_table(log, path)
    engine.import_agents(str(path))
    engine.outcomes.train_log(str(path), holdout=HOLDOUT, folds=3)
    return engine, str(path), quality


def test_a_production_log_replays_with_an_estimator_and_intervals(store_and_log):
    engine, path, quality = store_and_log
    rows, summary = simulate(engine, path, optimize_for="learned", holdout=HOLDOUT, estimator="dr")
    assert summary["quality_estimator"] == "dr (propensities logged)" and summary["propensities"] == "logged"
    assert summary["warnings"] == [] and summary["untried_decisions"] == 0
    chosen = np.array([NAMES.index(a) for a in rows["agent_name"].to_pylist()])
    truth = quality[np.array(rows["row"].to_pylist()), chosen].mean()
    assert summary["mean_quality_low"] <= truth <= summary["mean_quality_high"]
    assert summary["mean_quality_high"] - summary["mean_quality_low"] < 0.25
    for figure in ("mean_quality", "mean_cost", "total_cost", "savings", "savings_pct"):
        assert summary[f"{figure}_low"] <= summary[figure] <= summary[f"{figure}_high"], figure
    assert 0 < summary["effective_sample_size"] <= summary["routed"]
    _, dm = simulate(engine, path, optimize_for="learned", holdout=HOLDOUT)  # the default
    assert dm["quality_estimator"] == "dm (propensities logged)"
    assert dm["mean_quality_low"] <= truth <= dm["mean_quality_high"]
    assert dm["mean_quality_high"] - dm["mean_quality_low"] < summary["mean_quality_high"] - summary[
        "mean_quality_low"]  # DR's correction costs width


def test_whatif_rows_and_curve_points_carry_intervals(store_and_log):
    engine, path, _ = store_and_log
    frontier = budget_whatif(engine, path, [0.05, 5.0], holdout=HOLDOUT, estimator="dr").to_pylist()
    for row in frontier:
        assert row["quality_low"] <= row["quality"] <= row["quality_high"]
        assert row["spend_low"] <= row["spend"] <= row["spend_high"]
        assert row["quality_estimator"] == "dr (propensities logged)"
    table, _ = curve(engine, path, points=5, holdout=HOLDOUT, estimator="dr")
    for point in table.to_pylist():
        assert point["quality_low"] <= point["quality"] <= point["quality_high"], point["label"]
        assert point["cost_low"] <= point["cost"] <= point["cost_high"], point["label"]


def test_counterfactual_cost_is_fitted_from_the_log_for_imported_agents(store_and_log):
    """generate_log prices each agent per token of the request; the imported agents are priced per call (the mean),
    so only a cost fitted on the request's tokens gets a short request's cost right."""
    engine, path, _ = store_and_log
    rows, summary = simulate(engine, path, optimize_for="quality", holdout=HOLDOUT)
    assert summary["fitted_from_log_cost_rows"] + summary["logged_cost_rows"] == summary["routed"]
    sources = set(rows["cost_source"].to_pylist())
    assert sources <= {"logged", "fitted_from_log"} and "fitted_from_log" in sources
    wide = generate_log(1500, seed=11, actual=None)
    true_cost = np.column_stack([wide[f"{a}|total_cost"].to_numpy() for a in NAMES])
    chosen = np.array([NAMES.index(a) for a in rows["agent_name"].to_pylist()])
    truth = true_cost[np.array(rows["row"].to_pylist()), chosen]
    assert np.abs(np.array(rows["cost"].to_pylist()) - truth).max() < 0.05 * truth.max()
    assert summary["total_cost_low"] <= truth.sum() <= summary["total_cost_high"]


def test_the_outcome_router_learns_from_a_production_log(store_and_log):
    engine, _, _ = store_and_log
    knob = engine.outcomes.knob()
    assert knob["reached"] and knob["rows"] > 1000  # calibrated over every training request, not full rows only
    decided = engine.route(["What is 12 plus 30?", "Write a haiku about rain"], optimize_for="learned")
    assert decided["agent_name"].to_pylist()[0] == "math-tutor"


def test_propensity_weights_give_each_agent_its_mean_over_every_request():
    # one agent seen on 3 requests chosen with probabilities 0.9, 0.9 and 0.1: the 1/p-weighted mean
    y = np.array([[1.0], [1.0], [0.0]])
    weighted = _agent_mean(y, np.array([[1 / 0.9], [1 / 0.9], [1 / 0.1]]))
    assert weighted[0] == pytest.approx((2 / 0.9) / (2 / 0.9 + 10), abs=1e-9)
    assert _agent_mean(y)[0] == pytest.approx(2 / 3)


@pytest.mark.parametrize(("bad", "text"), [(0.0, "0.0"), (1.5, "1.5"), (float("nan"), "nan")])
def test_a_bad_propensity_names_the_column_and_row(engine, tmp_path, bad, text):
    log, _ = production(generate_log(30, seed=1, actual=None))
    values = log["propensity"].to_pylist()
    values[7] = bad
    log = log.set_column(log.schema.get_field_index("propensity"), "p", pa.array(values))
    path = tmp_path / "bad.parquet"
    pq.write_table(log, path)
    engine.import_agents(str(path))
    with pytest.raises(InvalidArgument, match=rf"column 'p' row 7 holds {text}; a propensity must lie within \(0, 1\]"):
        simulate(engine, str(path), columns={"propensity": "p"})
    with pytest.raises(InvalidArgument, match=rf"column 'p' row 7 holds {text}"):
        engine.outcomes.train_log(str(path), columns={"propensity": "p"}, folds=2)


def test_bad_evaluation_arguments_name_the_argument(engine, tmp_path):
    log, _ = production(generate_log(60, seed=2, actual=None))
    path = tmp_path / "log.parquet"
    pq.write_table(log.drop(["propensity"]), path)
    engine.import_agents(str(path))
    with pytest.raises(InvalidArgument, match="estimator='dr'.*no propensity column"):
        simulate(engine, str(path), estimator="dr")
    with pytest.raises(InvalidArgument, match="columns='chance'.*no column 'chance' for 'propensity'"):
        simulate(engine, str(path), columns={"propensity": "chance"})
    with pytest.raises(InvalidArgument, match="estimator='best'"):
        budget_whatif(engine, str(path), [1.0], estimator="best")
    with pytest.raises(InvalidArgument, match="confidence=1.5"):
        curve(engine, str(path), confidence=1.5)
    _, summary = simulate(engine, str(path))  # without propensities: the direct method, and it says so
    assert summary["quality_estimator"].startswith("dm") and summary["propensities"] == "none"


def test_simulate_prints_each_interval_and_the_estimator(store_and_log, capsys):
    engine, path, _ = store_and_log
    store = str(engine.store.path)
    assert main(["simulate", path, "--store", store, "--holdout", str(HOLDOUT), "--optimize-for", "cost",
                 "--confidence", "0.9", "--estimator", "dr"]) == 0
    out = capsys.readouterr().out
    assert "90% interval" in out and "dr (propensities logged)" in out
    measured = next(line for line in out.splitlines() if line.startswith("measured quality"))
    low, high = (float(v) for v in measured.split()[4:7:2])
    assert low < high
