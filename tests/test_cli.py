"""The `tinydancer` command: every command has help text and a README entry; the demo runs; errors are clean."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tinydancer_duck.cli._main import build_parser, main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_has_help_and_is_in_the_readme():
    found = commands()
    assert {"demo", "sql", "route", "train"} <= set(found)
    for name, sub in found.items():
        assert sub.description, name
        assert f"tinydancer {name}" in README, name


def test_readme_keeps_its_two_commands():
    assert 'pip install . && tinydancer demo' in README
    assert 'pip install -e ".[test]" && pytest' in README


def test_demo_routes_a_parquet_log(tmp_path, capsys):
    assert main(["demo", "--rows", "400", "--store", str(tmp_path / "store")]) == 0
    out = capsys.readouterr().out
    assert "registered 8 agents" in out and "400 rows x 2 objectives" in out
    assert "optimize_for := 'cost'" in out and "optimize_for := 'quality'" in out


def test_demo_summary_values(tmp_path):
    from tinydancer_duck.cli._demo import run_demo

    summary = run_demo(tmp_path / "store", rows=300, echo=lambda line: None)
    assert summary["rows"] == 300
    for objective in ("by_cost", "by_quality"):
        assert sum(summary[objective]["mix"].values()) == 300
    assert 0 < summary["by_cost"]["total_cost"] < summary["by_quality"]["total_cost"]


def test_route_and_sql_commands(tmp_path, capsys):
    store = str(tmp_path / "store")
    assert main(["sql", "SELECT ruvector_register_agent('helper', 'llm', ['writing'], cost_per_call := 0.01)",
                 "--store", store]) == 0
    assert main(["route", "write a poem", "--store", store, "--optimize-for", "cost"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("#  request")))
    assert lines[header + 2].split() == ["1", "write", "a", "poem", "helper", "0.01", "1000", "1.00"]


def test_errors_are_one_clean_line(tmp_path, capsys):
    code = main(["route", "hi", "--store", str(tmp_path / "s"), "--optimize-for", "cheapest"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("tinydancer: invalid optimize_for='cheapest'") and "Traceback" not in err


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit) as caught:
        main(["nope"])
    assert caught.value.code == 2


def test_train_command_trains_and_activates_a_model(tmp_path, capsys):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    import tinydancer_duck as td

    data = json.loads((Path(__file__).resolve().parents[1] / "datasets" / "clinc150_train_val.json").read_text())
    picked = [row for row in data["train"] if row[1] in ("balance", "weather", "timer")]
    pq.write_table(pa.table({"q": [r[0] for r in picked], "intent": [r[1] for r in picked]}), tmp_path / "t.parquet")
    store = str(tmp_path / "store")
    assert main(["train", str(tmp_path / "t.parquet"), "--text-column", "q", "--label-column", "intent",
                 "--model", "three", "--epochs", "15", "--store", store]) == 0
    captured = capsys.readouterr()
    assert "training 'three' [" in captured.err and "saved 'three' version 1" in captured.out
    top = td.connect(store).execute("SELECT ruvector_classify_request('what is the weather in paris')"
                                    ".top_category").fetchone()[0]
    assert top == "weather"
    assert main(["train", str(tmp_path / "t.parquet"), "--store", store]) == 2
    assert "invalid column='text'" in capsys.readouterr().err


def test_reembed_moves_a_store_to_another_embedder(tmp_path, capsys):
    """A store made by one embedder is refused by another, with the command to move it; reembed recomputes every
    vector from its text, reports what had none, and keeps a backup."""
    import numpy as np

    import tinydancer_duck as td
    from tinydancer_duck.errors import StoreError

    store = tmp_path / "store"
    old = td.Engine(store, embedder="hashing")
    old.register_agent("coder", "llm", ["code"], description="writes and fixes code", cost_per_call=0.01)
    old.routes.create_route("billing", "billing questions", "coder")
    old.routes.create_route("vector-only", None, "coder", embedding=np.eye(old.dim)[0])
    old.routes.add_examples(["billing"], texts=["refund my order"])
    old.usage.record("coder", 0.01, True, 100.0)
    with pytest.raises(StoreError, match="tinydancer reembed --store"):
        td.Engine(store)
    assert main(["reembed", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "re-embedded 1 row(s) of agents" in out and "route 'vector-only'" in out and ".backup-" in out
    new = td.Engine(store)
    agent = new.get_agent("coder")
    assert agent["description"] == "writes and fixes code" and agent["total_requests"] == 1  # stats kept
    assert [r["name"] for r in new.routes.table().to_pylist()] == ["billing"]
    assert new.routes.table()["examples"].to_pylist() == [1]
    assert new.usage.frame().height == 1
    assert np.allclose(np.asarray(new.store.read("agents")["capability_embedding"][0].as_py()),
                       new.embed(["code"])[0], atol=1e-6)
    backups = list(tmp_path.glob("store.backup-*"))
    assert len(backups) == 1 and td.Engine(backups[0], embedder="hashing").get_agent("coder") is not None
