"""One table format for every command: aligned plain text, "–" for a missing value (never None), no polars repr,
full agent names and mixes, units in the headers; simulate explains its figures and marks priors; whatif's first
row is the log's own policy."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tinydancer_duck.cli import main
from tinydancer_duck.cli._table import money, render

LONG_NAME = "provider-with-a-long-prefix/an-agent-name-longer-than-forty-four-characters"


def test_render_aligns_numbers_right_and_text_left():
    text = render(("agent", "cost ($)"), [("a", "0.5"), ("bbbb", None), ("cc", "12.25")])
    assert text.splitlines() == ["agent  cost ($)", "-----  --------", "a           0.5", "bbbb          –",
                                 "cc        12.25"]


def test_money_never_uses_an_exponent():
    assert [money(v) for v in (4.84e-05, 0.014481, 12.5, 0.0, None)] == ["0.0000484", "0.01448", "12.5", "0", "–"]


@pytest.fixture
def log(tmp_path):
    """A wide log with a logged choice of its own (agent, cost, quality): 3 agents, one with a very long name."""
    rng = np.random.default_rng(1)
    n = 80
    agents = (("big", 0.9, 0.01), ("small", 0.6, 0.001), (LONG_NAME, 0.3, 0.0001))
    table = {"request": [f"request {i} about subject {i % 5}" for i in range(n)],
             "agent": ["big"] * n, "cost": np.full(n, 0.01)}
    outcomes = {}
    for agent, accuracy, price in agents:
        outcomes[agent] = (rng.random(n) < accuracy).astype(float)
        table[agent] = outcomes[agent]
        table[f"{agent}|total_cost"] = np.full(n, price)
    table["quality"] = outcomes["big"]
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table(table), path)
    return path, float(outcomes["big"].mean())


@pytest.fixture
def store(tmp_path, log):
    path = str(tmp_path / "store")
    assert main(["agents", "import", str(log[0]), "--store", path]) == 0
    return path


def clean(out: str) -> None:
    assert "None" not in out and "shape:" not in out and "┌" not in out


def test_simulate_prints_one_table_with_sources_explanations_and_marks(log, store, capsys):
    path, actual_quality = log
    assert main(["simulate", str(path), "--store", store, "--optimize-for", "cost"]) == 0
    out = capsys.readouterr().out
    clean(out)
    figures = {line[:24].strip(): line[24:].split() for line in out.splitlines()[3:14]}
    assert figures["total cost ($)"][0] == "0.008"  # 80 requests to the cheapest agent at $0.0001, as logged
    assert figures["actual cost ($)"][0] == "0.8"
    assert float(figures["actual quality (0-1)"][0]) == pytest.approx(actual_quality, abs=1e-4)
    assert figures["savings ($)"][0] == "0.792" and figures["savings (%)"][0] == "99.0"
    assert figures["mean latency (ms)"][0].endswith("*")  # the registered prior, not measured
    measured = figures["measured quality (0-1)"]
    assert measured[2] == "–" and float(measured[1]) <= float(measured[0]) <= float(measured[3])  # its interval
    assert " ".join(measured[4:]) == "dm (propensities none); observed 100%"
    assert figures["total cost ($)"][1:4] == ["0.008", "–", "0.008"]  # logged: no uncertainty
    assert LONG_NAME in out  # the agent mix keeps full names
    for meaning in ("expected quality:", "measured quality:", "realized quality:", "mean latency:", "* assumed:"):
        assert any(line.startswith(meaning) for line in out.splitlines()), meaning


def test_whatif_has_the_actual_policy_as_its_baseline_row(log, store, capsys, tmp_path):
    path, actual_quality = log
    assert main(["whatif", str(path), "--store", store, "--budgets", "0.01,0.5", "--output",
                 str(tmp_path / "w.csv")]) == 0
    out = capsys.readouterr().out
    clean(out)
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["policy", "budget", "($)"]
    baseline = lines[2].split()
    assert baseline[:7] == ["actual", "(the", "log)", "–", "0.8", "–", "–"]
    assert float(baseline[7]) == pytest.approx(actual_quality, abs=1e-4)
    assert lines[0].split().count("interval") == 2  # beside spend and beside quality
    assert lines[3].split()[:2] == ["budget", "0.01"] and lines[4].split()[:2] == ["budget", "0.5"]
    mix = next(line for line in lines if line.startswith("  budget 0.5:"))
    assert "big" in mix or LONG_NAME in mix
    assert (tmp_path / "w.csv").exists()


def test_agents_list_and_import_are_tables(log, tmp_path, capsys):
    assert main(["agents", "import", str(log[0]), "--store", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    clean(out)
    assert out.splitlines()[2].split() == ["big", "0.01", "call", "–", "0.9000", "80"]
    assert main(["agents", "list", "--store", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    clean(out)
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:5]}
    assert set(rows) == {"big", "small", LONG_NAME}
    assert rows["big"] == ["big", "llm", "general", "–", "0.01", "–", "1000", "0.900", "0", "yes"]
