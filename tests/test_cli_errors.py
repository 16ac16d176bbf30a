"""`tinydancer` errors: one line on stderr naming the argument and the value, exit code 2, no traceback (--debug
shows it); output paths are checked before any work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tinydancer_duck.cli import main

REPO = Path(__file__).resolve().parents[1]


def one_error_line(capsys, code: int) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.fixture
def log(tmp_path) -> Path:
    """A small wide outcome log: 3 agents' outcomes and costs per request."""
    rng = np.random.default_rng(0)
    n = 60
    table = {"request": [f"question number {i} about topic {i % 7}" for i in range(n)]}
    for agent, accuracy, price in (("big", 0.9, 0.01), ("small", 0.6, 0.001), ("tiny", 0.3, 0.0001)):
        table[agent] = (rng.random(n) < accuracy).astype(float)
        table[f"{agent}|total_cost"] = np.full(n, price)
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table(table), path)
    return path


@pytest.fixture
def store(tmp_path, log, capsys) -> str:
    path = str(tmp_path / "store")
    assert main(["agents", "import", str(log), "--store", path]) == 0
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"created a new store at {path}"
    return path


def test_sql_syntax_error_is_one_line_naming_the_query(tmp_path, capsys):
    line = one_error_line(capsys, main(["sql", "SELEC 1", "--create", "--store", str(tmp_path / "s")]))
    assert line.startswith("tinydancer: invalid query='SELEC 1': Parser Error: syntax error at or near \"SELEC\"")


def test_bad_optimize_for_inside_sql_prints_our_message(store, capsys):
    code = main(["sql", "SELECT ruvector_route('hi', optimize_for := 'cheapest')", "--store", store])
    line = one_error_line(capsys, code)
    assert line.startswith("tinydancer: invalid optimize_for='cheapest': must be one of cost, latency")
    assert "Python exception" not in line and "--debug" not in line


def test_missing_file_in_sql_names_it(store, capsys):
    line = one_error_line(capsys, main(["sql", "SELECT * FROM 'nope.parquet'", "--store", store]))
    assert "invalid query=" in line and "nope.parquet" in line and "IO Error" in line


def test_debug_shows_the_traceback_in_either_position(tmp_path, capsys):
    for argv in (["--debug", "sql", "SELEC 1"], ["sql", "SELEC 1", "--debug"]):
        assert main([*argv, "--create", "--store", str(tmp_path / "s")]) == 2
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "ParserException" in err
        assert err.strip().splitlines()[-1].startswith("tinydancer: invalid query='SELEC 1'")


def test_usage_error_is_one_line_naming_the_option(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["demo", "--rows", "many"])
    assert caught.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["tinydancer demo: argument --rows: invalid int value: 'many' (see tinydancer demo --help)"]


def test_unreadable_log_is_one_line(tmp_path, capsys, store):
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet at all")
    line = one_error_line(capsys, main(["simulate", str(bad), "--store", store]))
    assert "invalid log=" in line and "bad.parquet" in line


def test_foreign_error_is_one_line_with_a_hint(store, capsys, monkeypatch):
    from tinydancer_duck import engine

    def broken(*args, **kwargs):
        raise OSError("disk on fire\nsecond line")

    monkeypatch.setattr(engine.Engine, "route", broken)
    line = one_error_line(capsys, main(["route", "hi", "--store", store]))
    assert line == "tinydancer: OSError: disk on fire (--debug shows the traceback)"


def test_a_subprocess_error_has_no_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tinydancer_duck.cli", "sql", "SELEC 1", "--create", "--store",
                           str(tmp_path / "s")], check=False, capture_output=True, text=True, cwd=REPO,
                          timeout=120, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "tinydancer: invalid query='SELEC 1': Parser Error: syntax error at or near \"SELEC\""]
    assert done.stdout == ""


@pytest.mark.parametrize(("argv", "argument", "value", "why"), [
    (["simulate", "LOG", "--output", "/nonexistent/x.parquet"], "--output", "/nonexistent/x.parquet",
     "its folder '/nonexistent' does not exist"),
    (["simulate", "LOG", "--output", "decisions.csv"], "--output", "decisions.csv", "must end in .parquet"),
    (["whatif", "LOG", "--budgets", "1", "--output", "/nonexistent/w.csv"], "--output", "/nonexistent/w.csv",
     "does not exist"),
    (["whatif", "LOG", "--budgets", "1", "--output", "w.txt"], "--output", "w.txt", "must end in .csv or .parquet"),
    (["whatif", "LOG", "--budgets", "1", "--chart", "/nonexistent/c.png"], "--chart", "/nonexistent/c.png",
     "does not exist"),
    (["report", "LOG", "-o", "/nonexistent/r.html"], "--output", "/nonexistent/r.html", "does not exist"),
    (["report", "LOG", "-o", "r.pdf"], "--output", "r.pdf", "must end in .html or .htm"),
    (["curve", "LOG", "--output", "/nonexistent/c.csv"], "--output", "/nonexistent/c.csv", "does not exist"),
    (["curve", "LOG", "--chart", "c.jpg"], "--chart", "c.jpg", "must end in .svg or .png"),
    (["route-parquet", "LOG", "/nonexistent/out", "--store", "STORE"], "output", "/nonexistent/out",
     "does not exist"),
    (["snapshot", "--store", "STORE", "-o", "/nonexistent/s.tds"], "--output", "/nonexistent/s.tds",
     "does not exist"),
])
def test_output_paths_fail_before_any_work(tmp_path, capsys, monkeypatch, log, store, argv, argument, value, why):
    from tinydancer_duck import distributed, engine, replay, report

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the output path was checked")

    for module, name in ((replay, "simulate"), (replay, "budget_whatif"), (replay, "curve"),
                         (distributed, "route_parquet"), (engine.Engine, "snapshot"),
                         (report, "write_report")):
        monkeypatch.setattr(module, name, no_work)
    monkeypatch.chdir(tmp_path)
    argv = [str(log) if a == "LOG" else store if a == "STORE" else a for a in argv]
    argv += [] if "--store" in argv else ["--store", store]
    line = one_error_line(capsys, main(argv))
    assert line.startswith(f"tinydancer: invalid {argument}={value!r}: ") and why in line
    assert not any(p.suffix in (".parquet", ".csv", ".png", ".svg", ".html", ".tds") and p != log
                   for p in tmp_path.rglob("*"))
