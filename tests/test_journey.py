"""The README's journey runs as written, in order, in an empty folder, through the real command line, and its report
states what the README says it states (the README's figures are the code's)."""

from __future__ import annotations

import re

import pyarrow.parquet as pq
from _journey import blocks, expected_report, run_journey

from tinydancer_duck.datasets.example_data import FILES


def same_figures(got: list[str], want: list[str]) -> bool:
    """The same sentences with the same numbers, each within one unit of its last printed digit (a budget sum a
    few floating-point ulps from a rounding boundary prints either way on another machine)."""
    number = re.compile(r"\d+(?:\.\d+)?")
    for have, expect in zip(got, want, strict=True):
        if number.sub("#", have) != number.sub("#", expect):
            return False
        for a, b in zip(number.findall(have), number.findall(expect)):
            decimals = len(b.partition(".")[2])
            if abs(float(a) - float(b)) > 10.0 ** -decimals + 1e-12:
                return False
    return True


def test_same_figures_allows_one_unit_of_the_last_digit_only():
    assert same_figures(["cost $0.597, 83% less"], ["cost $0.596, 83% less"])
    assert not same_figures(["cost $0.598, 83% less"], ["cost $0.596, 83% less"])
    assert not same_figures(["cost $0.596, 83% more"], ["cost $0.596, 83% less"])


def test_the_journey_has_its_steps():
    found = blocks()
    assert len(found) == 9 and found[0].strip() == "tinydancer demo"
    assert all("--store ./my-store" in line for block in found[2:] for line in block.strip().splitlines())
    assert len(expected_report()) >= 4


def test_the_journey_runs_as_written_in_an_empty_folder(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    steps = run_journey(folder)
    for block in steps:
        for step in block:
            assert step.code == 0, f"{step.command}\n{step.stdout[-2000:]}\n{step.stderr[-2000:]}"
    assert len(steps) == len(blocks())
    ran = [step for block in steps for step in block]

    def output(prefix: str):
        return next(step for step in ran if step.command.startswith(prefix))

    assert "registered 8 agents" in output("tinydancer demo").stdout
    assert all((folder / name).exists() for name in FILES)
    imported = output("tinydancer agents import")
    assert "registered 3 agent(s)" in imported.stdout and "created a new store at ./my-store" in imported.stderr
    listed = output("tinydancer agents list").stdout
    assert all(name in listed for name in ("generalist", "helpdesk", "math-tutor", "premium"))
    assert pq.read_table(folder / "routed.parquet").num_rows == 500
    assert "saved outcome router 'outcomes' version 1" in output("tinydancer train-outcomes").stdout
    assert output("tinydancer simulate").stdout.startswith("replayed ")
    whatif = output("tinydancer whatif").stdout
    assert "actual (the log)" in whatif and "budget 0.5" in whatif
    assert sorted(p.name for p in folder.iterdir() if p.suffix in (".csv", ".png")) == []  # what-if wrote nothing
    report = output("tinydancer report")
    lines = report.stdout.splitlines()
    assert same_figures(lines[:len(expected_report())], expected_report())  # the README's figures are the code's
    assert lines[-1].startswith("report written to report.html") and (folder / "report.html").stat().st_size > 50_000
