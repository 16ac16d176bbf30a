"""`tinydancer doctor`: a healthy store exits 0; each kind of damage is named in plain words and exits 1."""

from __future__ import annotations

from datetime import datetime, timezone

import lancedb
import pyarrow as pa

import tinydancer_duck as td
from tinydancer_duck import cli
from tinydancer_duck.cli import _doctor as doctor
from tinydancer_duck.store import _schemas, save_model

NOW = datetime(2026, 3, 2, tzinfo=timezone.utc)


def healthy_engine(path) -> td.Engine:
    engine = td.Engine(path, embedder="hashing")
    engine.register_agent("gpt-4", "llm", ["code"], cost_per_1k_tokens=0.03)
    engine.routes.create_route("billing", "questions about invoices", "gpt-4")
    engine.routes.add_examples(["billing"], ["why was I charged twice"])
    engine.usage.record("gpt-4", 0.01, True, 100.0)
    return engine


def test_healthy_store_exits_zero_and_lists_tables(tmp_path, capsys):
    healthy_engine(tmp_path / "s")
    assert cli.main(["doctor", "--store", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "healthy: no problems found" in out
    assert "embedder: hashing:" in out and "agents: 1 rows" in out and "usage: 1 rows" in out


def test_missing_store_is_refused_in_one_line(tmp_path, capsys):
    nowhere = tmp_path / "nowhere"
    assert cli.main(["doctor", "--store", str(nowhere)]) == 2
    assert capsys.readouterr().err.strip().startswith(f"tinydancer: no store at {nowhere}; create one with")
    assert not nowhere.exists()


def test_each_kind_of_damage_is_reported(tmp_path, capsys, monkeypatch):
    engine = healthy_engine(tmp_path / "s")
    store = engine.store
    agents = store.read("agents")
    store.append("agents", agents)  # a duplicated key (append bypasses the upsert)
    store.append("route_examples", store.read("route_examples").set_column(
        0, "route", pa.array(["deleted-route"], pa.string())))  # an orphaned example
    save_model(store, {"name": "broken", "kind": "route_classifier", "weights": b"not an npz archive",
                      "labels": ["a"], "metrics": "{}"})
    for i in range(4):
        store.append("usage", store.read("usage").slice(0, 1))
    monkeypatch.setattr(doctor, "COMPACT_FRAGMENTS", 2)

    report = doctor.check_store(tmp_path / "s")
    text = "\n".join(report.problems)
    assert not report.healthy
    assert "1 name(s) appear more than once in 'agents': 'gpt-4'" in text
    assert "1 route example(s) belong to 1 route(s) that no longer exist: 'deleted-route'" in text
    assert "model 'broken' version 1 (route_classifier) fails to load" in text
    assert "table 'usage' has 5 small fragments, so reads are slow" in text
    assert cli.main(["doctor", "--store", str(tmp_path / "s")]) == 1
    assert "problem(s):" in capsys.readouterr().out

    store.compact("usage")  # the remedy the doctor names works
    assert "'usage'" not in "\n".join(doctor.check_store(tmp_path / "s").problems)


def test_mixed_embedders_and_wrong_schemas_are_reported(tmp_path):
    healthy_engine(tmp_path / "s")
    db = lancedb.connect(str(tmp_path / "s"))
    db.drop_table("routes")
    db.create_table("routes", schema=_schemas.routes_schema(256, "static:other-model:256"))
    db.drop_table("budgets") if "budgets" in db.list_tables().tables else None
    db.create_table("budgets", schema=pa.schema([pa.field("scope", pa.string()), pa.field("amount", pa.int32())]))
    text = "\n".join(doctor.check_store(tmp_path / "s").problems)
    assert "vector tables were made by different embedders" in text and "static:other-model:256" in text
    assert "table 'budgets' lacks column(s) agent, period, created_at" in text
    assert "column budgets.amount has type int32, expected double" in text


def test_warnings_name_what_routing_may_not_do_as_meant(tmp_path, capsys):
    """Issue 13 item 6: each warning names the things to look at; a store with warnings only is still healthy."""
    import numpy as np

    engine = healthy_engine(tmp_path / "s")
    engine.register_agent("idle-bot", "tool", ["weather"], cost_per_call=0.001)
    engine.routes.create_route("refunds", "refund requests", "nobody-registered")
    for _ in range(3):
        engine.usage.record("ghost", 0.5, True, 10.0)
    engine.usage.record(["gpt-4"] * 120, [0.01] * 120, [True] * 120, [100.0] * 120)
    rng = np.random.default_rng(0)
    engine.outcomes.train([f"request {i}" for i in range(40)], rng.integers(0, 2, (40, 2)).astype(float),
                          ["gpt-4", "retired-model"], model="router")

    assert cli.main(["doctor", "--store", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "healthy: no problems found" in out
    assert "2 semantic route(s) have no fitted threshold" in out and "'billing', 'refunds'" in out
    assert "'refunds' -> 'nobody-registered'" in out
    assert "3 usage row(s) name 1 agent(s) that are not registered: 'ghost'" in out
    assert "1 active agent(s) received none of the 124 recorded requests: 'idle-bot'" in out
    assert "outcome model 'router' (version 1) predicts for 2 agents, 1 of 2 of them registered" in out
    assert "'retired-model'" in out


def test_a_fitted_store_has_no_warnings(tmp_path):
    engine = td.Engine(tmp_path / "s", embedder="hashing")
    engine.register_agent("gpt-4", "llm", ["code"], cost_per_1k_tokens=0.03)
    engine.usage.record("gpt-4", 0.01, True, 100.0)
    assert doctor.check_store(tmp_path / "s").warnings == []
