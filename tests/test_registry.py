"""The agent registry through SQL and Python: seed registration, upsert, persistence, reads, metrics, bad input."""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pytest
from conftest import SEED_AGENTS_SQL, rows

import tinydancer_duck as td

NASTY = "o'brien\"; DROP TABLE agents; -- \\ % _ \n SELECT 1;"


def agent_rows(con):
    return rows(con, "SELECT * EXCLUDE (created_at, updated_at) FROM ruvector_list_agents() ORDER BY name")


def test_seed_registration_runs_verbatim_and_lists_agents(seed_con):
    listed = {r["name"]: r for r in agent_rows(seed_con)}
    assert list(listed) == ["claude-3-haiku", "code-specialist", "gpt-4"]
    gpt4 = listed["gpt-4"]
    assert gpt4["agent_type"] == "llm"
    assert gpt4["capabilities"] == ["reasoning", "code", "analysis", "creative"]
    assert gpt4["cost_per_1k_tokens"] == 0.03 and gpt4["cost_per_call"] is None
    assert gpt4["avg_latency_ms"] == 2500 and gpt4["p99_latency_ms"] == 5000
    assert gpt4["quality_score"] == 0.95 and gpt4["success_rate"] == 1.0 and gpt4["total_requests"] == 0
    assert json.loads(gpt4["metadata"]) == {"provider": "openai", "context_window": 128000}
    assert listed["code-specialist"]["cost_per_call"] == 0.001
    assert all(r["active"] for r in listed.values())


def test_context_window_description_and_examples(seed_con, engine):
    """The seed's metadata context windows become the field; description and examples round-trip."""
    windows = {r["name"]: r["context_window"] for r in agent_rows(seed_con)}
    assert windows == {"claude-3-haiku": 200000, "code-specialist": None, "gpt-4": 128000}
    seed_con.execute("SELECT ruvector_register_agent('support', 'human', ['customer support'], "
                     "description := 'Resolves billing disputes and account problems', "
                     "examples := ['my card was charged twice', 'close my account'], context_window := 8000, "
                     "max_output_tokens := 1000, metadata := '{\"context_window\": 4000}')").fetchall()
    support = engine.get_agent("support")
    assert support["description"] == "Resolves billing disputes and account problems"
    assert support["examples"] == ["my card was charged twice", "close my account"]
    assert support["context_window"] == 8000 and support["max_output_tokens"] == 1000  # the field wins
    engine.update_agent_metrics("support", latency_ms=100, success=True)  # a stats rewrite keeps them
    assert engine.get_agent("support")["examples"] == ["my card was charged twice", "close my account"]


def test_a_store_from_before_the_new_agent_columns_gains_them(tmp_path):
    """An agents table written without description/examples/context_window/max_output_tokens/scope is migrated in
    place on open: its rows keep their values and read NULL in the new columns, and a NULL scope follows the agent
    type (an LLM is general) until the agent is registered again."""
    import lancedb

    store = tmp_path / "old"
    engine = td.Engine(store)
    engine.register_agents([{"name": "gpt-4", "agent_type": "llm", "capabilities": ["code"], "cost_per_call": 0.01},
                            {"name": "desk", "agent_type": "human", "capabilities": ["complaints"],
                             "cost_per_call": 1.0}])
    old = engine.store.read("agents").drop_columns(["description", "examples", "context_window",
                                                    "max_output_tokens", "scope"])
    db = lancedb.connect(str(store))
    db.drop_table("agents")
    db.create_table("agents", old)
    assert db.open_table("agents").schema.names[-1] == "updated_at"
    reopened = td.Engine(store)
    agent = reopened.get_agent("gpt-4")
    assert agent["cost_per_call"] == 0.01 and agent["context_window"] is None and agent["examples"] is None
    assert agent["scope"] is None
    assert reopened.snapshot().agents.general.tolist() == [False, True]  # desk, gpt-4
    assert reopened.route(["write code"])["agent_name"].to_pylist() == ["gpt-4"]
    reopened.register_agent("gpt-4", "llm", ["code"], context_window=1000)
    assert td.Engine(store).get_agent("gpt-4")["context_window"] == 1000


def test_reregistering_upserts_one_row_and_keeps_learned_stats(seed_con, engine):
    engine.update_agent_metrics("gpt-4", latency_ms=1000, success=False)
    before = engine.get_agent("gpt-4")
    seed_con.execute("SELECT ruvector_register_agent('gpt-4', 'llm', ['reasoning'], cost_per_1k_tokens := 0.01, "
                     "avg_latency_ms := 2000, quality_score := 0.9)").fetchall()
    after = engine.get_agent("gpt-4")
    assert len(engine.list_agents()) == 3
    assert after["cost_per_1k_tokens"] == 0.01 and after["capabilities"] == ["reasoning"]
    assert after["total_requests"] == 1 and after["success_rate"] == before["success_rate"] < 1.0
    assert after["created_at"] == before["created_at"] and after["updated_at"] > before["updated_at"]


def test_registry_persists_across_connections_and_is_shared(store):
    first = td.connect(store)
    first.execute(SEED_AGENTS_SQL).fetchall()
    second = td.connect(store)
    assert len(agent_rows(second)) == 3
    second.execute("SELECT ruvector_remove_agent('gpt-4')").fetchall()
    assert [r["name"] for r in agent_rows(first)] == ["claude-3-haiku", "code-specialist"]
    first.close(), second.close()
    assert [r["name"] for r in agent_rows(td.connect(store))] == ["claude-3-haiku", "code-specialist"]


def test_bulk_registration_from_a_table_is_one_write(con, engine):
    con.execute("""CREATE TABLE fleet AS SELECT 'agent-' || i AS name, 'api' AS kind, ['skill-' || (i % 7)] AS caps,
                   i / 1000.0 AS price, 100.0 + i AS latency FROM range(100) t(i)""")
    version = engine.store.version("agents")
    done = con.execute("SELECT bool_and(ruvector_register_agent(name, kind, caps, cost_per_call := price, "
                       "avg_latency_ms := latency)) FROM fleet").fetchone()[0]
    assert done is True
    assert len(engine.list_agents()) == 100
    assert engine.store.version("agents") - version <= 1  # one batch of 100 rows, one LanceDB write
    assert engine.get_agent("agent-42")["cost_per_call"] == pytest.approx(0.042)


def test_get_remove_activate_clear(seed_con, engine):
    got = rows(seed_con, "SELECT ruvector_get_agent('claude-3-haiku') AS a, ruvector_get_agent('nobody') AS b")[0]
    assert got["a"]["quality_score"] == 0.8 and got["b"] is None
    seed_con.execute("SELECT ruvector_set_agent_active('gpt-4', false)").fetchall()
    assert engine.get_agent("gpt-4")["active"] is False
    assert engine.get_agent("gpt-4")["cost_per_1k_tokens"] == 0.03  # the rest of the row is intact
    assert seed_con.execute("SELECT ruvector_remove_agent('code-specialist')").fetchone()[0] is True
    assert seed_con.execute("SELECT ruvector_clear_agents()").fetchone()[0] == 2
    assert engine.list_agents().num_rows == 0


def test_unknown_agent_is_an_error_and_changes_nothing(seed_con, engine):
    before = agent_rows(seed_con)
    for call in ("ruvector_remove_agent('ghost')", "ruvector_set_agent_active('ghost', true)",
                 "ruvector_update_agent_metrics('ghost', 10, true)"):
        with pytest.raises(duckdb.Error, match="agent 'ghost' not found"):
            seed_con.execute(f"SELECT {call}").fetchall()
    assert agent_rows(seed_con) == before


def test_find_agents_by_capability_ranks_exact_holders_first(seed_con):
    found = rows(seed_con, "SELECT * FROM ruvector_find_agents_by_capability('debugging', \"limit\" := 2)")
    assert found[0]["name"] == "code-specialist" and found[0]["exact_match"] is True
    assert len(found) == 2 and found[1]["exact_match"] is False
    everyone = rows(seed_con, "SELECT * FROM ruvector_find_agents_by_capability('code')")
    assert everyone[0]["name"] == "gpt-4" and len(everyone) == 3


def test_register_agent_full_from_json(con, engine):
    config = {"name": "triage", "agent_type": "human", "capabilities": ["escalation"], "cost_per_second": 0.02,
              "avg_latency_ms": 60000, "quality_score": 0.99, "avg_output_tokens": 50,
              "metadata": {"team": "ops"}}
    assert con.execute("SELECT ruvector_register_agent_full(?)", [json.dumps(config)]).fetchone()[0] is True
    agent = engine.get_agent("triage")
    assert agent["cost_per_second"] == 0.02 and agent["avg_output_tokens"] == 50
    assert json.loads(agent["metadata"]) == {"team": "ops"}
    with pytest.raises(duckdb.Error, match="invalid config='colour'"):
        con.execute("SELECT ruvector_register_agent_full('{\"name\": \"x\", \"colour\": 1}')").fetchall()


def test_update_agent_metrics_folds_an_ewma(seed_con, engine):
    seed_con.execute("SELECT ruvector_update_agent_metrics('claude-3-haiku', 1400, false, quality := 0.5)").fetchall()
    agent = engine.get_agent("claude-3-haiku")
    assert agent["avg_latency_ms"] == pytest.approx(0.9 * 400 + 0.1 * 1400)
    assert agent["success_rate"] == pytest.approx(0.9)
    assert agent["quality_score"] == pytest.approx(0.9 * 0.8 + 0.1 * 0.5)
    assert agent["total_requests"] == 1
    # a batch of observations equals the same observations one by one
    engine.register_agent("twin", "llm", ["x"], avg_latency_ms=400, quality_score=0.8)
    seed_con.execute("SELECT ruvector_update_agent_metrics('twin', l, s) FROM (VALUES (100.0, true), "
                     "(300.0, false), (900.0, true)) v(l, s)").fetchall()
    one_by_one = td.Engine(engine.store.path)
    one_by_one.register_agent("solo", "llm", ["x"], avg_latency_ms=400, quality_score=0.8)
    for latency, ok in ((100.0, True), (300.0, False), (900.0, True)):
        one_by_one.update_agent_metrics("solo", latency, ok)
    twin, solo = engine.get_agent("twin"), engine.get_agent("solo")
    assert twin["avg_latency_ms"] == pytest.approx(solo["avg_latency_ms"])
    assert twin["success_rate"] == pytest.approx(solo["success_rate"]) and twin["total_requests"] == 3


BAD_REGISTRATIONS = [
    ("cost_per_1k_tokens := -0.01", "cost_per_1k_tokens", "-0.01"),
    ("cost_per_call := 'NaN'::DOUBLE", "cost_per_call", "nan"),
    ("cost_per_second := 'inf'::DOUBLE", "cost_per_second", "inf"),
    ("quality_score := 1.5", "quality_score", "1.5"),
    ("quality_score := -0.1", "quality_score", "-0.1"),
    ("avg_latency_ms := -5", "avg_latency_ms", "-5.0"),
    ("metadata := '{not json'", "metadata", "'{not json'"),
    ("metadata := '[1, 2]'", "metadata", "'[1, 2]'"),
    ("context_window := 0", "context_window", "0"),
    ("max_output_tokens := -5", "max_output_tokens", "-5"),
    ("description := '   '", "description", "'   '"),
    ("examples := ['ok', '']", "examples", "''"),
    ("metadata := '{\"context_window\": \"big\"}'", "metadata.context_window", "'big'"),
]


@pytest.mark.parametrize(("argument", "name", "value"), BAD_REGISTRATIONS)
def test_bad_registration_names_the_argument_and_stores_nothing(seed_con, argument, name, value):
    before = agent_rows(seed_con)
    with pytest.raises(duckdb.Error) as caught:
        seed_con.execute(f"SELECT ruvector_register_agent('gpt-4', 'llm', ['x'], {argument})").fetchall()
    assert f"invalid {name}={value}" in str(caught.value)
    assert agent_rows(seed_con) == before


@pytest.mark.parametrize(("sql", "message"), [
    ("ruvector_register_agent('', 'llm', ['x'])", "invalid name=''"),
    ("ruvector_register_agent('   ', 'llm', ['x'])", "invalid name='   '"),
    ("ruvector_register_agent(NULL, 'llm', ['x'])", "invalid name=None"),
    ("ruvector_register_agent('a', 'robot', ['x'])", "invalid agent_type='robot'"),
    ("ruvector_register_agent('a', 'llm', ['x', ''])", "invalid capabilities=''"),
])
def test_bad_names_and_types(seed_con, sql, message):
    before = agent_rows(seed_con)
    with pytest.raises(duckdb.Error, match=message.replace("(", r"\(")):
        seed_con.execute(f"SELECT {sql}").fetchall()
    assert agent_rows(seed_con) == before


def test_python_api_raises_package_errors(engine):
    with pytest.raises(td.InvalidArgument) as caught:
        engine.register_agent("a", "llm", ["x"], quality_score=2.0)
    assert caught.value.argument == "quality_score" and caught.value.value == 2.0
    with pytest.raises(td.InvalidArgument, match="capabilities"):
        engine.register_agent("a", "llm", "code")
    with pytest.raises(td.NotFound):
        engine.remove_agent("a")
    assert engine.list_agents().num_rows == 0


def test_names_and_metadata_with_sql_in_them_round_trip_verbatim(seed_con, engine):
    metadata = json.dumps({"note": NASTY})
    before = agent_rows(seed_con)
    seed_con.execute("SELECT ruvector_register_agent(?, 'tool', [?], cost_per_call := 0.5, metadata := ?)",
                     [NASTY, NASTY, metadata]).fetchall()
    stored = engine.get_agent(NASTY)
    assert stored["name"] == NASTY and stored["capabilities"] == [NASTY] and stored["metadata"] == metadata
    assert [r for r in agent_rows(seed_con) if r["name"] != NASTY] == before
    seed_con.execute("SELECT ruvector_set_agent_active(?, false)", [NASTY]).fetchall()
    seed_con.execute("SELECT ruvector_remove_agent(?)", [NASTY]).fetchall()
    assert agent_rows(seed_con) == before


def test_store_refuses_another_embedder(store, engine):
    engine.register_agent("a", "llm", ["x"])
    with pytest.raises(td.StoreError, match="embedder"):
        td.Engine(store, embedder="hashing")
    assert td.Engine(store).get_agent("a")["name"] == "a"


def test_bulk_registration_from_python_table(engine):
    table = pa.table({"name": ["a", "b", "a"], "agent_type": ["llm", "api", "tool"],
                      "capabilities": [["x"], ["y"], ["z"]], "cost_per_call": [0.1, 0.2, 0.3]})
    assert engine.register_agents(table) == 2  # the later 'a' wins
    assert engine.get_agent("a")["agent_type"] == "tool" and engine.get_agent("a")["cost_per_call"] == 0.3
