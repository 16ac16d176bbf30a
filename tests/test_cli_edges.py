"""The rough edges a new user hit (issue 26), one test each: no file written unless asked, progress that ends at
the rows processed, every out-of-range option refused, empty logs refused, missing per-agent columns named, every
statement's result printed, errors that name the real function, the option and the file."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from tinydancer_duck.cli import main
from tinydancer_duck.cli._main import build_parser
from tinydancer_duck.datasets.generate_log import generate_log
from tinydancer_duck.options import SIGNATURES

ROWS = 150


@pytest.fixture
def log(tmp_path) -> str:
    path = tmp_path / "log.parquet"
    pq.write_table(generate_log(ROWS, seed=2), path)
    return str(path)


@pytest.fixture
def store(tmp_path, log, capsys) -> str:
    path = str(tmp_path / "store")
    assert main(["agents", "import", log, "--store", path]) == 0
    capsys.readouterr()
    return path


def test_whatif_prints_and_writes_nothing_unless_asked(tmp_path, log, store, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["whatif", log, "--budgets", "0.1,1", "--store", store]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2].startswith("actual (the log)") and "budget 0.1" in out and "budget 1" in out
    assert "written" not in out and list(work.iterdir()) == []  # no whatif.csv, no PNG
    assert main(["whatif", log, "--budgets", "0.1,1", "--store", store, "--output", "w.csv"]) == 0
    assert sorted(p.name for p in work.iterdir()) == ["w.csv"]


def test_progress_ends_at_the_rows_read_with_a_holdout(log, store, capsys):
    assert main(["simulate", log, "--holdout", "0.2", "--store", store]) == 0
    bars = [line for line in capsys.readouterr().err.splitlines() if line.startswith("simulating [")]
    assert f"{ROWS}/{ROWS}" in bars[-1] and "#" * 30 in bars[-1]  # was 29/150 and a bar at 20%


#: an out-of-range value of a declared flag, per command (the check is the declaration's, as in SQL and Python)
BAD_FLAGS = [(["calibrate"], "--quality-share", "2", "quality_share=2.0: must be within (0, 1]"),
             (["simulate", "LOG"], "--holdout", "1.5", "holdout=1.5"),
             (["curve", "LOG"], "--points", "1", "points=1: must be an integer within [3, 1000]"),
             (["whatif", "LOG", "--budgets", "1"], "--quality-threshold", "2", "quality_threshold=2.0"),
             (["route", "hi"], "--max-cost", "-1", "max_cost=-1.0: must be >= 0"),
             (["report", "LOG"], "--points", "0", "points=0"),
             (["train-outcomes", "LOG"], "--folds", "1", "folds=1"),
             (["agents", "import", "LOG"], "--agent-type", "robot", "agent_type='robot': must be one of")]


@pytest.mark.parametrize(("command", "flag", "value", "why"), BAD_FLAGS, ids=lambda x: str(x))
def test_every_out_of_range_option_is_refused_before_any_work(tmp_path, log, store, capsys, command, flag, value,
                                                              why):
    argv = [log if a == "LOG" else a for a in command]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main([*argv, flag, value, "--store", store]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"tinydancer: invalid {why}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_every_declared_flag_is_checked(tmp_path):
    """check_flags knows every generated flag of every command (they are recorded as they are added)."""
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    declared = {name: {p.name for p in sub.get_default("declared_params") or ()}
                for name, sub in action.choices.items()}
    assert {p.name for p in SIGNATURES["ruvector_calibrate"].params} <= declared["calibrate"]
    assert {"holdout", "budget", "optimize_for"} <= declared["simulate"]
    assert {"include_unobserved", "points"} <= declared["report"]


def test_a_log_without_rows_is_refused(tmp_path, store, capsys):
    empty = tmp_path / "empty.parquet"
    pq.write_table(generate_log(5).slice(0, 0), empty)
    for argv in (["simulate", str(empty)], ["whatif", str(empty), "--budgets", "1"],
                 ["report", str(empty), "-o", str(tmp_path / "r.html")], ["agents", "import", str(empty)],
                 ["train-outcomes", str(empty)]):
        assert main([*argv, "--store", store]) == 2
        assert capsys.readouterr().err.strip() == f"tinydancer: invalid log={str(empty)!r}: has no rows: nothing to " \
                                                  "replay, import or train on"


def test_agents_import_names_the_columns_it_could_not_pair(tmp_path, capsys):
    table = generate_log(60, seed=3)
    broken = table.drop_columns(["generalist|total_cost"]).append_column("helper|total_cost",
                                                                         table["premium|total_cost"])
    path = tmp_path / "broken.parquet"
    pq.write_table(broken, path)
    assert main(["agents", "import", str(path), "--store", str(tmp_path / "s")]) == 0
    captured = capsys.readouterr()
    assert "registered 2 agent(s)" in captured.out
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: 'generalist' has no cost column 'generalist|total_cost': that agent was not imported",
        "warning: 'helper|total_cost' has no outcome column 'helper': that agent was not imported"]


def test_sql_prints_every_statements_result(store, capsys):
    assert main(["sql", "SELECT 1 AS first; SELECT 2 AS second", "--store", store]) == 0
    out = capsys.readouterr().out
    assert "first" in out and "second" in out and out.index("first") < out.index("second")


def test_learned_routing_without_a_model_names_a_real_function_and_command(store, capsys):
    assert main(["route", "hi", "--optimize-for", "learned", "--store", store]) == 2
    err = capsys.readouterr().err
    assert "ruvector_train_outcome_router" in err and "tinydancer train-outcomes" in err
    assert "ruvector_train_outcome_router" in SIGNATURES and "ruvector_train_outcomes" not in err


def test_route_parquet_names_the_input_that_is_not_parquet(tmp_path, store, capsys):
    csv = tmp_path / "requests.csv"
    csv.write_text("request\nhello\n")
    assert main(["route-parquet", str(csv), str(tmp_path / "out"), "--store", store]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tinydancer: invalid input={str(csv)!r}: is not a Parquet file (Parquet magic bytes")
    assert "route-parquet reads Parquet only" in err and "ArrowInvalid" not in err
    assert not (tmp_path / "out").exists()
