"""Injection: names and metadata full of quotes, backslashes, comments, wildcards, newlines and SQL keywords are
data. They round-trip verbatim and never touch other rows, at every place a user value reaches a LanceDB filter or
a generated SQL string (enumerated below from the source, so a new place fails this test until it is covered)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tinydancer_duck as td
from tinydancer_duck import cli
from tinydancer_duck.store import _literal as store_module

ROOT = Path(__file__).resolve().parents[1]
NASTY = [
    "o'brien",
    "a\"; DROP TABLE agents; --",
    "x' OR '1'='1",
    "back\\slash\\' OR name LIKE '%",
    "100% _wild_ %",
    "line\nbreak; DELETE FROM usage WHERE true; --",
    "SELECT * FROM agents",
    "'); DELETE FROM routes; --",
    "naïve ünïcödé ✓ 🤖",
    "name IN ('gpt-4')",
]
#: Every place in the package where a user value may reach a LanceDB filter or a generated SQL string, as
#: (file, pattern) -> how this test exercises it. The scan below fails when a new place appears.
SITES = {
    ("tinydancer_duck/store/_store.py", ".count_rows("): "store.count(where) with sql_literal-quoted values",
    ("tinydancer_duck/store/_store.py", ".merge_insert("): "register/create_route/set budget upserts by nasty key",
    ("tinydancer_duck/store/_store.py", ".delete("): "remove_agent, delete_route (routes + examples), remove_budget",
    ("tinydancer_duck/store/_repair.py", ".count_rows("): "a version's row count from its manifest, no filter",
    ("tinydancer_duck/_logs.py", ".count_rows("): "a pyarrow dataset's count_rows(), no filter",
    ("tinydancer_duck/cli/_main.py", 'sql(f"'): "tinydancer train on a file whose path has quotes",
    ("tinydancer_duck/cli/_demo.py", 'sql(f"'): "fixed column names only (no user value)",
    ("tinydancer_duck/sql/30_learn.sql", "query_table("): "ruvector_train_classifier(source := nasty)",
    ("tinydancer_duck/sql/40_semantic.sql", "query_table("): "ruvector_fit_routes(source := nasty)",
    ("tinydancer_duck/udfs/learn.py", "query_table("): "the macro body of ruvector_train_classifier (above)",
    ("tinydancer_duck/udfs/semantic.py", "query_table("): "the macro body of ruvector_fit_routes (above)",
}
PATTERNS = (".count_rows(", ".merge_insert(", ".delete(", 'sql(f"', 'execute(f"', "query_table(", ".where(")


def test_every_filter_and_generated_sql_site_is_listed():
    found = set()
    package = ROOT / "tinydancer_duck"
    for path in [*package.rglob("*.py"), *package.glob("sql/*.sql")]:
        text = path.read_text()
        for pattern in PATTERNS:
            for line in text.splitlines():
                if pattern == ".where(" and re.search(r"\bnp\.where\(", line):
                    continue  # numpy, not a filter
                if pattern in line and not line.lstrip().startswith(("#", "--", '"', "'")):
                    found.add((str(path.relative_to(ROOT)), pattern))
    # SemanticRoutes.delete(names): reaches store.delete_keys
    found.discard(("tinydancer_duck/udfs/semantic.py", ".delete("))
    assert found <= set(SITES), sorted(found - set(SITES))


def test_sql_literal_quotes_everything_as_data():
    for value in NASTY:
        literal = store_module.sql_literal(value)
        assert literal.startswith("'") and literal.endswith("'")
        assert literal[1:-1].replace("''", "") .count("'") == 0
    assert store_module.sql_literal("nul\x00byte") == "'nul' || chr(0) || 'byte'"


def test_a_name_with_nul_from_an_older_store_can_be_removed(tmp_path):
    """New names may not hold NUL; one a store written before that holds can still be removed (before: never)."""
    engine = td.Engine(tmp_path / "store", embedder="hashing")
    engine.register_agent("template", "llm", ["code"])
    row = engine.store.read("agents").set_column(0, "name", pa.array(["old\x00name"]))
    engine.store.upsert("agents", row)  # what an older version let through
    with pytest.raises(td.InvalidArgument, match="NUL"):
        engine.register_agent("new\x00name", "llm", ["code"])
    assert engine.remove_agent("old\x00name")
    assert engine.list_agents()["name"].to_pylist() == ["template"]


@pytest.fixture
def victim(tmp_path):
    engine = td.Engine(tmp_path / "store", embedder="hashing")
    engine.register_agent("gpt-4", "llm", ["code"], cost_per_1k_tokens=0.03, metadata={"keep": True})
    engine.routes.create_route("billing", "questions about invoices", "gpt-4")
    engine.routes.add_examples(["billing"], ["why was I charged twice"])
    engine.usage.record("gpt-4", 0.5, True, 10.0, request_id="victim-request")
    engine.budgets.set(100.0, "gpt-4")
    return engine


def victim_state(engine: td.Engine) -> dict:
    agent = {k: v for k, v in engine.get_agent("gpt-4").items() if k not in ("updated_at",)}
    routes = engine.store.read("routes")
    return {"agent": agent,
            "route": [r for r in routes.to_pylist() if r["name"] == "billing"],
            "examples": [r["text"] for r in engine.store.read("route_examples").to_pylist() if r["route"] == "billing"],
            "usage": [r for r in engine.store.read("usage").to_pylist() if r["request_id"] == "victim-request"],
            "budget": [r for r in engine.store.read("budgets").to_pylist() if r["agent"] == "gpt-4"]}


@pytest.mark.parametrize("nasty", NASTY)
def test_nasty_values_round_trip_through_python_and_touch_nothing_else(victim, nasty):
    engine = victim
    before = victim_state(engine)
    engine.register_agent(nasty, "llm", [nasty, "code"], metadata={"note": nasty})
    got = engine.get_agent(nasty)
    assert got["name"] == nasty and got["capabilities"] == [nasty, "code"]
    assert json.loads(got["metadata"]) == {"note": nasty}
    engine.routes.create_route(nasty, nasty, nasty, priority=1)
    engine.routes.add_examples([nasty], [nasty])
    routes = {r["name"]: r for r in engine.routes.table().to_pylist()}
    assert routes[nasty]["description"] == nasty and routes[nasty]["target_agent"] == nasty
    engine.usage.record(nasty, 0.25, True, 5.0, request_id=nasty, route=nasty, category=nasty)
    usage = [r for r in engine.store.read("usage").to_pylist() if r["agent"] == nasty]
    assert [(r["request_id"], r["route"], r["category"]) for r in usage] == [(nasty, nasty, nasty)]
    engine.budgets.set(5.0, nasty)
    assert engine.store.count("agents", f"name = {store_module.sql_literal(nasty)}") == 1
    assert engine.store.count("usage", f"agent = {store_module.sql_literal(nasty)}") == 1
    assert victim_state(engine) == before

    assert engine.budgets.remove(nasty)
    assert engine.routes.delete([nasty]) == 1
    assert engine.remove_agent(nasty)
    assert engine.get_agent(nasty) is None
    assert nasty not in engine.store.read("routes")["name"].to_pylist()
    assert nasty not in engine.store.read("route_examples")["route"].to_pylist()
    assert victim_state(engine) == before
    assert engine.store.read("agents").num_rows == 1 and engine.store.read("routes").num_rows == 1


def test_nasty_values_round_trip_through_sql(victim):
    engine = victim
    con = engine.connect()
    before = victim_state(engine)
    for nasty in NASTY:
        con.execute("SELECT ruvector_register_agent(?, 'tool', [?], cost_per_call := 0.01, metadata := ?)",
                    [nasty, nasty, json.dumps({"n": nasty})]).fetchall()
        con.execute("SELECT ruvector_create_route(?, ?, ?)", [nasty, "about " + nasty, nasty]).fetchall()
        con.execute("SELECT ruvector_record_usage(?, 0.1, true, 1.0, request_id := ?)", [nasty, nasty]).fetchall()
        row = con.execute("SELECT name, capabilities, metadata FROM ruvector_list_agents() WHERE name = ?",
                          [nasty]).fetchall()
        assert row == [(nasty, [nasty], json.dumps({"n": nasty}))]
        assert con.execute("SELECT ruvector_get_agent(?).name", [nasty]).fetchone()[0] == nasty
        assert con.execute("SELECT count(*) FROM ruvector_list_routes() WHERE name = ? AND target_agent = ?",
                           [nasty, nasty]).fetchone()[0] == 1
    assert engine.store.read("agents").num_rows == 1 + len(NASTY)
    for nasty in NASTY:
        assert con.execute("SELECT ruvector_delete_route(?)", [nasty]).fetchone()[0]
        assert con.execute("SELECT ruvector_remove_agent(?)", [nasty]).fetchone()[0]
    assert engine.store.read("agents")["name"].to_pylist() == ["gpt-4"]
    assert engine.store.read("routes")["name"].to_pylist() == ["billing"]
    assert engine.store.read("usage").num_rows == 1 + len(NASTY)
    assert victim_state(engine) == before


@pytest.mark.parametrize("nasty", [n for n in NASTY if "\n" not in n][:6])
def test_nasty_sources_in_table_macros_are_names_not_sql(victim, nasty):
    engine = victim
    con = engine.connect()
    before = victim_state(engine)
    for macro in ("ruvector_fit_routes", "ruvector_train_classifier"):
        with pytest.raises(duckdb.Error) as caught:
            con.execute(f"SELECT * FROM {macro}(source := ?)", [nasty]).fetchall()
        assert re.search(r"(?i)catalog|not exist|no files|not found|table", str(caught.value)), str(caught.value)
    assert victim_state(engine) == before


def test_cli_train_quotes_a_nasty_path(tmp_path, capsys):
    folder = tmp_path / "it's; DROP TABLE x; --"
    folder.mkdir()
    path = folder / "train'data.parquet"
    pq.write_table(pa.table({"text": ["write code", "fix my bill", "debug python", "refund please"] * 3,
                             "label": ["code", "billing", "code", "billing"] * 3}), path)
    store = str(tmp_path / "cli-store")  # the CLI uses the default (static) embedder
    code = cli.main(["train", str(path), "--store", store, "--epochs", "1", "--hidden-dim", "4"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "saved 'default' version 1" in out
    assert cli.main(["train", str(folder / "missing'; --.parquet"), "--store", store]) == 2
    assert "cannot be read" in capsys.readouterr().err
