"""The `tinydancer` command: every command has help text and a README entry; the demo runs; errors are clean."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tinydancer_duck.cli import build_parser, main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_has_help_and_is_in_the_readme():
    found = commands()
    assert {"demo", "sql", "route"} <= set(found)
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
    from tinydancer_duck.demo import run_demo

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
    assert "'write a poem' -> helper" in capsys.readouterr().out


def test_errors_are_one_clean_line(tmp_path, capsys):
    code = main(["route", "hi", "--store", str(tmp_path / "s"), "--optimize-for", "cheapest"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("tinydancer: invalid optimize_for='cheapest'") and "Traceback" not in err


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit) as caught:
        main(["nope"])
    assert caught.value.code == 2
