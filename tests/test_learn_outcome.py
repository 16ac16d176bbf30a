"""The outcome router: training (wide and long logs), versioned storage, predicted quality in routing, metrics."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from tinydancer_duck.datasets.generate_log import agent_specs, generate_log, to_long
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.learn._outcome_metrics import auc
from tinydancer_duck.learn._outcomes import KIND


@pytest.fixture
def log_path(tmp_path):
    path = tmp_path / "train.parquet"
    pq.write_table(generate_log(1200, seed=7), path)
    return str(path)


def test_train_saves_a_versioned_model_and_reports_metrics(engine, log_path):
    report = engine.outcomes.train_log(log_path, model="o").to_pylist()
    agents = [r for r in report if r["kind"] == "agent"]
    assert [r["name"] for r in agents] == ["premium", "math-tutor", "generalist"]
    tutor = next(r for r in agents if r["name"] == "math-tutor")
    assert tutor["auc"] > 0.99 and tutor["accuracy"] > 0.97  # right exactly on math, learnable from the text
    routing = {r["name"]: r for r in report if r["kind"] == "routing"}
    assert routing["oracle"]["quality"] >= routing["router (argmax predicted quality)"]["quality"]
    assert all(r["version"] == 1 for r in report)
    assert engine.outcomes.train_log(log_path, model="o", kind="head", epochs=5)["version"][0].as_py() == 2
    models = engine.store.read("models").to_pylist()
    assert [m["kind"] for m in models] == [KIND, KIND]
    assert models[0]["labels"] == ["premium", "math-tutor", "generalist"]
    saved = json.loads(models[0]["metrics"])
    assert saved["n_train"] == 1200 and saved["folds"] == 5
    assert tutor["n"] == 1200  # every metric is out-of-fold, over every row


def test_predicted_quality_replaces_quality_score_in_routing(engine, log_path):
    engine.register_agents(agent_specs())
    x = engine.embed(["What is 12 plus 30?", "Write a short poem about the river at dawn"])
    assert engine.snapshot().outcome is None  # no model yet
    before = engine.route(["What is 12 plus 30?"], optimize_for="quality")["agent_name"][0].as_py()
    assert before == "premium"  # by quality_score: premium 0.9 vs math-tutor 0.33
    engine.outcomes.train_log(log_path)
    q = expected_quality(engine.snapshot(), x)
    assert q.shape == (2, 3) and q.dtype == np.float64
    tutor = engine.snapshot().agents.index["math-tutor"]
    assert q[0, tutor] > 0.9 and q[1, tutor] < 0.1
    assert engine.route(["What is 12 plus 30?"], optimize_for="quality")["agent_name"][0].as_py() == "math-tutor"


def test_agents_the_model_does_not_know_keep_their_quality_score(engine, log_path):
    engine.register_agents(agent_specs() + [{"name": "newcomer", "agent_type": "llm", "capabilities": ["general"],
                                             "quality_score": 0.42}])
    engine.outcomes.train_log(log_path)
    snapshot = engine.snapshot()
    q = expected_quality(snapshot, engine.embed(["What is 1 plus 2?"]))
    assert q[0, snapshot.agents.index["newcomer"]] == 0.42
    engine.clear_agents()
    engine.register_agent("stranger", "llm", ["general"], quality_score=0.5)
    assert engine.snapshot().outcome is None  # it knows none of the agents: quality_score decides


def test_long_format_log_trains_with_unobserved_pairs_masked(engine, tmp_path):
    long = to_long(generate_log(1200, seed=8), observe=0.5, seed=1)
    path = tmp_path / "long.parquet"
    pq.write_table(long, path)
    report = engine.outcomes.train_log(str(path)).to_pylist()
    tutor = next(r for r in report if r["name"] == "math-tutor")
    assert tutor["auc"] > 0.99
    assert sorted(r["name"] for r in report if r["kind"] == "agent") == ["generalist", "math-tutor", "premium"]


def test_sql_training_returns_metrics(con, log_path):
    rows = con.execute("SELECT kind, name, n FROM ruvector_train_outcome_router(source := ?, model := 'sql') "
                       "WHERE kind <> 'agent'", [log_path]).fetchall()
    assert rows[0] == ("overall", "all agents", 3600) and rows[1][0] == "routing"  # 1200 rows x 3 agents, out of fold


def test_auc_matches_a_hand_computation():
    # positives score 0.9, 0.4; negatives 0.5, 0.1, 0.4: pairs won 3 + (1 + 0.5 tie) = 4.5 of 6
    assert auc(np.array([0.9, 0.4, 0.5, 0.1, 0.4]), np.array([1, 1, 0, 0, 0])) == pytest.approx(4.5 / 6)
    assert np.isnan(auc(np.array([0.2, 0.3]), np.array([1, 1])))


def test_bad_input(engine, tmp_path, log_path):
    with pytest.raises(InvalidArgument, match="log='/missing.parquet'"):
        engine.outcomes.train_log("/missing.parquet")
    bare = tmp_path / "bare.parquet"
    pq.write_table(generate_log(20).select(["request"]), bare)
    with pytest.raises(InvalidArgument, match="no per-agent outcomes"):
        engine.outcomes.train_log(str(bare))
    with pytest.raises(InvalidArgument, match="epochs=0"):
        engine.outcomes.train_log(log_path, kind="head", epochs=0)
    with pytest.raises(InvalidArgument, match="outcomes"):
        engine.outcomes.train(["a", "b"], np.array([[2.0], [0.0]]), ["x"])


def expected_quality(snapshot, x):
    """The outcome router's expected quality per (request, agent), as the router sees it."""
    return snapshot.outcome.expected_quality(x, snapshot.outcome_columns, snapshot.agents.quality)
