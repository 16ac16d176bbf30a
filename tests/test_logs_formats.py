"""Logs in CSV, JSON (lines or one array) and Parquet, as files, folders or globs, give the same replays, training
and imports; RouterBench's column names are taken as the fields they mean, and the CLI says so."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import tinydancer_duck as td
from tinydancer_duck._logs import open_log
from tinydancer_duck.cli import main
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.replay import budget_whatif, simulate

MBPP = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "routerbench" / "mbpp_train.parquet"


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> dict[str, str]:
    """The same RouterBench log as .parquet, .csv, .jsonl, .json (one array), a folder of CSVs and a glob."""
    if not MBPP.exists():
        pytest.skip("the shared RouterBench logs are not beside the repo")
    folder = tmp_path_factory.mktemp("logs")
    table = pq.read_table(MBPP)
    rows = table.to_pylist()
    pq.write_table(table, folder / "log.parquet")
    pacsv.write_csv(table, folder / "log.csv")
    (folder / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (folder / "log.json").write_text(json.dumps(rows))
    (folder / "parts").mkdir()
    pacsv.write_csv(table.slice(0, 150), folder / "parts" / "a.csv")
    pacsv.write_csv(table.slice(150), folder / "parts" / "b.csv")
    return {"parquet": str(folder / "log.parquet"), "csv": str(folder / "log.csv"),
            "jsonl": str(folder / "log.jsonl"), "json": str(folder / "log.json"),
            "folder": str(folder / "parts"), "glob": str(folder / "parts" / "*.csv")}


@pytest.fixture(scope="module")
def engine(tmp_path_factory, logs):
    engine = td.Engine(tmp_path_factory.mktemp("store") / "store")
    engine.import_agents(logs["parquet"])
    return engine


FIGURES = ("rows", "routed", "total_cost", "mean_quality", "realized_quality", "observed_rows", "logged_cost_rows",
           "category_mean_rows", "quality_score_rows")


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json", "folder", "glob"])
def test_simulate_and_whatif_match_the_parquet_log(engine, logs, kind):
    _, expected = simulate(engine, logs["parquet"], optimize_for="cost", keep_rows=False)
    _, got = simulate(engine, logs[kind], optimize_for="cost", keep_rows=False)
    assert expected["rows"] == 299
    for name in FIGURES:
        assert got[name] == pytest.approx(expected[name]), name
    assert [(m["agent"], m["requests"]) for m in got["agent_mix"]] == [
        (m["agent"], m["requests"]) for m in expected["agent_mix"]]
    assert [m["cost"] for m in got["agent_mix"]] == pytest.approx([m["cost"] for m in expected["agent_mix"]])
    frontier = budget_whatif(engine, logs["parquet"], [0.05, 0.5]).to_pylist()
    other = budget_whatif(engine, logs[kind], [0.05, 0.5]).to_pylist()
    for a, b in zip(frontier, other):
        assert (b["spend"], b["quality"], b["served"]) == pytest.approx((a["spend"], a["quality"], a["served"]))


def test_sql_simulate_reads_a_csv_log(engine, logs):
    con = engine.connect()
    query = "SELECT total_cost, mean_quality FROM ruvector_simulate_summary(?, optimize_for := 'quality')"
    assert con.execute(query, [logs["csv"]]).fetchone() == pytest.approx(
        con.execute(query, [logs["parquet"]]).fetchone())


def test_train_outcomes_and_import_match_across_formats(tmp_path, logs, capsys):
    results = {}
    for kind in ("parquet", "csv", "jsonl"):
        store = str(tmp_path / kind)
        assert main(["agents", "import", logs[kind], "--store", store]) == 0
        assert main(["train-outcomes", logs[kind], "--store", store, "--folds", "3"]) == 0
        out = capsys.readouterr().out
        results[kind] = [line.replace(logs[kind], "LOG") for line in out.splitlines() if "version" not in line]
        assert "registered 11 agent(s)" in out
    assert results["csv"] == results["parquet"] == results["jsonl"]


def test_routerbench_columns_are_mapped_and_announced(logs, capsys, tmp_path):
    spec = open_log(logs["csv"])
    assert spec.fields["request_id"] == "sample_id" and spec.fields["category"] == "eval_name"
    assert spec.fields["request"] == "prompt"
    assert spec.aliased == {"prompt": "request", "sample_id": "request_id", "eval_name": "category"}
    assert main(["agents", "import", logs["csv"], "--store", str(tmp_path / "s")]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "columns: prompt → request, sample_id → request_id, eval_name → category",
        f"created a new store at {tmp_path / 's'}"]
    assert main(["simulate", logs["csv"], "--store", str(tmp_path / "s")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "columns: prompt → request, sample_id → request_id, eval_name → category"


def test_model_column_is_the_logged_agent_and_an_explicit_mapping_wins(tmp_path):
    path = tmp_path / "long.csv"
    pacsv.write_csv(pa.table({"prompt": ["a", "b"], "model": ["x", "y"], "agent_name": ["p", "q"],
                              "quality": [1.0, 0.0]}), path)
    spec = open_log(str(path))
    assert spec.fields["agent"] == "model" and spec.aliased["model"] == "agent"
    spec = open_log(str(path), columns={"agent": "agent_name"})
    assert spec.fields["agent"] == "agent_name" and "agent_name" not in spec.aliased


def test_bad_and_mixed_logs_name_the_log(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidArgument, match=r"invalid log='.*bad.json': cannot be read as JSON"):
        open_log(str(bad))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    pacsv.write_csv(pa.table({"request": ["a"]}), mixed / "a.csv")
    pq.write_table(pa.table({"request": ["b"]}), mixed / "b.parquet")
    with pytest.raises(InvalidArgument, match="mixes formats"):
        open_log(str(mixed))
    with pytest.raises(InvalidArgument, match="cannot be read"):
        open_log(str(tmp_path / "missing.csv"))
