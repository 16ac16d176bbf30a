"""The willingness-to-pay knob: live routing by it, the outcome router's calibration on training data, and the
curve and a live route agreeing on the same rows."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from tinydancer_duck.datasets.generate_log import AGENTS, agent_specs, generate_log
from tinydancer_duck.errors import InvalidArgument, ModelError
from tinydancer_duck.learn._calibrate import Calibration, calibrate, fold_ids
from tinydancer_duck.replay import curve, simulate

#: premium is only 60% right on math, so a learned router separates it from math-tutor with margin
SHARP = {**AGENTS, "premium": {**AGENTS["premium"], "correct": {"math": 0.6, "code": 0.9, "writing": 0.9}}}


@pytest.fixture
def trained(engine, tmp_path):
    engine.register_agents(agent_specs(SHARP))
    path = tmp_path / "log.parquet"
    pq.write_table(generate_log(900, seed=3, agents=SHARP), path)
    engine.outcomes.train_log(str(path))
    return engine, str(path)


def test_willingness_to_pay_runs_from_cheapest_to_best_quality(con):
    con.execute("SELECT ruvector_register_agent('cheap', 'llm', ['general'], cost_per_call := 0.001, "
                "quality_score := 0.5), ruvector_register_agent('mid', 'llm', ['general'], cost_per_call := 0.01, "
                "quality_score := 0.8), ruvector_register_agent('top', 'llm', ['general'], cost_per_call := 0.1, "
                "quality_score := 0.9)")

    def pick(w: str) -> tuple[str, str]:
        return con.execute(f"SELECT agent_name, reasoning FROM ruvector_route('a question', "
                           f"willingness_to_pay := {w})").fetchone()

    assert pick("0")[0] == "cheap"
    # 0.8 - 0.01/0.1 = 0.7 beats 0.5 - 0.01 = 0.49 and 0.9 - 1.0 = -0.1
    assert pick("0.1")[0] == "mid" and "expected quality - cost / willingness_to_pay" in pick("0.1")[1]
    assert pick("10")[0] == "top"  # 0.9 - 0.01 beats 0.8 - 0.001
    assert pick("'inf'::DOUBLE")[0] == "top"
    scalar = con.execute("SELECT ruvector_route(r, optimize_for := 'cost', willingness_to_pay := 10).agent_name "
                         "FROM (VALUES ('q1'), ('q2')) t(r)").fetchall()
    assert scalar == [("top",), ("top",)]  # the knob decides whatever optimize_for says
    with pytest.raises(Exception, match=r"willingness_to_pay=-1"):
        pick("-1")


def test_learned_needs_a_calibrated_outcome_router(engine, con):
    engine.register_agents(agent_specs(SHARP))
    with pytest.raises(InvalidArgument, match="optimize_for='learned'.*train"):
        engine.route(["What is 2 plus 2?"], optimize_for="learned")
    with pytest.raises(ModelError, match="no outcome router"):
        engine.outcomes.knob()


def test_learned_routes_at_the_calibrated_knob(trained):
    engine, _ = trained
    knob = engine.outcomes.knob()
    requests = ["What is 12 plus 30?", "Write a haiku about rain", "Fix this Python function"]
    learned = engine.route(requests, optimize_for="learned")["agent_name"].to_pylist()
    by_knob = engine.route(requests, willingness_to_pay=knob["willingness_to_pay"])["agent_name"].to_pylist()
    assert learned == by_knob
    assert knob["target"] == "quality_share" and knob["value"] == 0.95 and knob["folds"] == 5
    assert knob["cost_estimate"] == "the registered agents' prices"


def test_a_live_route_at_w_makes_the_curves_choices_on_the_same_rows(trained):
    """ruvector_route(willingness_to_pay := w) over the log's requests reproduces the curve's point at w."""
    engine, path = trained
    table, _ = curve(engine, path, points=12)
    router = [r for r in table.to_pylist() if r["series"] == "router"]
    con = engine.connect()
    log = pq.read_table(path)
    for point in router[1:-1:3]:
        w = point["willingness_to_pay"]
        live = con.execute("SELECT ruvector_route(request, willingness_to_pay := ?).agent_name FROM "
                           "read_parquet(?)", [w, path]).fetchall()
        agents = [a for (a,) in live]
        quality = np.mean([log[a][i].as_py() for i, a in enumerate(agents)])
        cost = np.mean([log[f"{a}|total_cost"][i].as_py() for i, a in enumerate(agents)])
        assert quality == pytest.approx(point["quality"], abs=1e-12)
        assert cost == pytest.approx(point["cost"], rel=1e-9)
        replayed, _ = simulate(engine, path, willingness_to_pay=w)
        assert replayed["agent_name"].to_pylist() == agents


def test_calibration_is_out_of_fold_and_stored_with_the_model(trained):
    engine, _ = trained
    model = engine.snapshot().outcome
    saved = json.loads(engine.store.read("models")["metrics"][0].as_py())
    assert saved["calibration"]["rows"] == 900 and saved["calibration"]["folds"] == 5
    curve_ = model.calibration
    assert curve_.strongest == "premium"  # the best single agent on the generated log
    assert curve_.grid[0] == 0 and np.isinf(curve_.grid[-1])
    points = engine.outcomes.curve_rows()
    assert sum(p["is_default"] for p in points) >= 1
    default = engine.outcomes.knob()
    assert default["reached"] and default["quality"] >= 0.95 * curve_.strongest_quality - 1e-12
    cheaper = [p for p in points if p["cost_per_1k"] < default["cost_per_1k"] - 1e-12]
    assert all(p["quality_share"] < 0.95 for p in cheaper)  # the cheapest point that reaches the target


def test_each_target_reads_the_curve_as_documented():
    grid = np.array([0.0, 0.1, 1.0, np.inf])
    curve_ = Calibration(grid, cost=np.array([0.001, 0.002, 0.004, 0.010]), quality=np.array([0.5, 0.7, 0.8, 0.9]),
                         strongest_share=np.array([0.0, 0.1, 0.3, 1.0]), strongest="top", strongest_quality=0.9,
                         strongest_cost=0.010, rows=100, folds=5, cost_estimate="test")
    assert curve_.knob("quality_share", 0.85)["willingness_to_pay"] == 1.0  # 0.8 >= 0.765, cheapest such
    assert curve_.knob("cost_per_1k", 2.5)["willingness_to_pay"] == 0.1  # best quality within $2.5 per 1k
    assert curve_.knob("strongest_share", 0.3)["willingness_to_pay"] == 1.0
    missed = curve_.knob("cost_per_1k", 0.5)
    assert not missed["reached"] and missed["willingness_to_pay"] == 0.0
    assert Calibration.from_json(curve_.to_json()).knob("quality_share", 0.85) == curve_.knob("quality_share", 0.85)
    with pytest.raises(InvalidArgument, match="target='best'"):
        curve_.knob("best", 1.0)
    with pytest.raises(InvalidArgument, match="quality_share=-0.1"):
        curve_.knob("quality_share", -0.1)


def test_folds_keep_equal_texts_together():
    rng = np.random.default_rng(0)
    hashes = np.array([5, 7, 5, 9, 7, 5], np.uint64)
    folds = fold_ids(hashes, 6, 2, rng)
    assert folds[0] == folds[2] == folds[5] and folds[1] == folds[4]


def test_calibrate_uses_rows_with_every_outcome_only():
    predicted = np.array([[0.9, 0.2], [0.1, 0.8], [0.5, 0.5]])
    outcomes = np.array([[1.0, 0.0], [0.0, 1.0], [np.nan, 1.0]])
    cost = np.array([[1.0, 0.1], [1.0, 0.1], [1.0, 0.1]])
    result = calibrate(predicted, outcomes, cost, cost, ["a", "b"], 2, "test")
    assert result.rows == 2
    # no row with every outcome (a production log): estimated over the rows with one, here the direct method
    bandit = calibrate(predicted[2:], outcomes[2:], cost[2:], cost[2:], ["a", "b"], 2, "test")
    assert bandit.rows == 1 and bandit.strongest == "b" and bandit.strongest_quality == 1.0  # b's observed 1
    assert bandit.quality[0] == 1.0  # the cheapest pick, b, is the one observed
    nothing = np.full((1, 2), np.nan)
    assert calibrate(predicted[2:], nothing, cost[2:], cost[2:], ["a", "b"], 2, "test") is None


def test_bad_knob_input(trained):
    engine, _ = trained
    with pytest.raises(InvalidArgument, match="strongest_share=0.2"):
        engine.outcomes.knob(quality_share=0.9, strongest_share=0.2)
    with pytest.raises(InvalidArgument, match="model='nope'"):
        engine.outcomes.knob(model="nope")
    with pytest.raises(InvalidArgument, match="willingness_to_pay=0.1"):
        engine.batch_route(["x"], budget=1.0, willingness_to_pay=0.1)
    with pytest.raises(InvalidArgument, match="folds=1"):
        engine.outcomes.train(["a", "b"], np.array([[1.0], [0.0]]), ["premium"], folds=1)
    before = engine.store.read("models").num_rows
    with pytest.raises(InvalidArgument, match="holdout=1.5"):
        engine.outcomes.train_log("unused.parquet", holdout=1.5)
    assert engine.store.read("models").num_rows == before
