"""Stores are created on purpose: commands that only read refuse a path that holds no store (one line, exit 2,
nothing created), commands that write create one and say so once, `tinydancer init` makes an empty one; the Python
API still creates a store where there is none."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

import tinydancer_duck as td
from tinydancer_duck.cli import main
from tinydancer_duck.datasets.generate_log import generate_log


@pytest.fixture
def log(tmp_path) -> str:
    path = tmp_path / "log.parquet"
    pq.write_table(generate_log(80, seed=1), path)
    return str(path)


def message(path: Path | str) -> str:
    return f"tinydancer: no store at {path}; create one with `tinydancer init {path}` or any registering command"


#: every command that only reads a store, as argv after the command name (LOG and TMP filled in)
READING = [["agents", "list"], ["route", "hi"], ["simulate", "LOG"], ["whatif", "LOG", "--budgets", "1"],
           ["curve", "LOG"], ["report", "LOG", "-o", "TMP/r.html"], ["calibrate"], ["snapshot", "-o", "TMP/s.tds"],
           ["doctor"], ["reembed"], ["route-parquet", "LOG", "TMP/out"]]


@pytest.mark.parametrize("argv", READING, ids=lambda a: " ".join(a[:2]))
def test_reading_commands_refuse_a_path_without_a_store(tmp_path, log, capsys, argv):
    missing = tmp_path / "mistyped-store"
    argv = [log if a == "LOG" else a.replace("TMP", str(tmp_path)) for a in argv]
    assert main([*argv, "--store", str(missing)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [message(missing)]
    assert not missing.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.parquet"]  # nothing written


def test_the_default_store_is_refused_too_when_missing(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("TINYDANCER_HOME", str(home))
    assert main(["agents", "list"]) == 2
    assert capsys.readouterr().err.strip() == message(home)
    assert not home.exists()


def test_sql_needs_create_for_a_new_store(tmp_path, capsys):
    store = tmp_path / "s"
    assert main(["sql", "SELECT 1", "--store", str(store)]) == 2
    assert capsys.readouterr().err.strip() == message(store) + " (or sql --create)"
    assert not store.exists()
    register = "SELECT ruvector_register_agent('a', 'llm', ['x'], cost_per_call := 0.01)"
    assert main(["sql", register, "--store", str(store), "--create"]) == 0
    assert capsys.readouterr().err.strip() == f"created a new store at {store}"
    assert main(["sql", "SELECT count(*) AS n FROM ruvector_list_agents()", "--store", str(store)]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.splitlines()[4].split() == ["│", "1", "│"]


def test_writing_commands_create_a_store_and_say_so_once(tmp_path, log, capsys):
    store = tmp_path / "new"
    assert main(["agents", "import", log, "--store", str(store)]) == 0
    assert capsys.readouterr().err.strip().splitlines() == [f"created a new store at {store}"]
    assert main(["agents", "import", log, "--store", str(store)]) == 0
    assert "created" not in capsys.readouterr().err  # once: the second import finds the store
    assert main(["agents", "list", "--store", str(store)]) == 0
    assert "3 agent(s)" in capsys.readouterr().out


def test_a_bad_option_of_a_writing_command_creates_nothing(tmp_path, log, capsys):
    store = tmp_path / "new"
    assert main(["train-outcomes", log, "--folds", "1", "--store", str(store)]) == 2
    assert capsys.readouterr().err.strip().startswith("tinydancer: invalid folds=1: must be an integer")
    assert not store.exists()


def test_init_makes_an_empty_store_once(tmp_path, capsys):
    store = tmp_path / "made"
    assert main(["init", str(store)]) == 0
    assert capsys.readouterr().out.startswith(f"created an empty store at {store}")
    assert main(["init", str(store)]) == 0
    assert capsys.readouterr().out.strip() == f"{store} holds a store already (0 agent(s)); nothing changed"
    assert main(["agents", "list", "--store", str(store)]) == 0
    assert "0 agent(s)" in capsys.readouterr().out


def test_the_python_api_still_creates_a_store(tmp_path):
    td.Engine(tmp_path / "python")
    assert (tmp_path / "python" / "agents.lance").is_dir()
