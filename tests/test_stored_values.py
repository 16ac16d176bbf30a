"""Nothing stored can poison the store: a property test over every write function.

Hypothesis draws values for each write (register an agent, from columns and from a JSON config; update its stats;
(de)activate it; create a route with conditions; add an example; record usage; ingest a log; set a budget; train a
classifier and an outcome router) from far wider ranges than any test of behaviour would: arbitrary Unicode with
NUL and lone surrogates, floats from 5e-324 to inf and NaN, integers past int64, timestamps from year 1 to year
10000, nested JSON. A write either fails with one of the package's errors, or is accepted; and after every write,
accepted or not, every SQL function a user relies on still works: route (both forms), list, stats, analytics,
budget status, the budget optimizer, health, semantic routes, classification, multi-agent and batch routing. Then
what was written is deleted again through SQL, which must also work (before: a name with NUL could be registered
but never removed, and a route with a lone surrogate in its conditions could not even be deleted).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinydancer_duck as td


def mostly(good, wild):
    """Seven draws in eight from ``good`` (values that should be accepted, extremes included), else ``wild``: a
    write has several arguments, and most writes should be accepted so that what is stored is extreme."""
    return st.integers(0, 7).flatmap(lambda k: wild if k == 0 else good)


NASTY_TEXT = ["", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "o'brien\"; --", "é" * 300, "x" * 20_000, "🤖"]
GOOD_TEXT = st.one_of(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40),
                      st.sampled_from(["é" * 300, "x" * 20_000, "🤖", "o'brien\"; --", "line\nbreak"]))
TEXT = mostly(GOOD_TEXT, st.one_of(st.text(max_size=40), st.sampled_from(NASTY_TEXT),
                                   st.text(alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010),
                                           max_size=4)))
NAME = mostly(GOOD_TEXT.filter(lambda t: t.strip()), st.one_of(st.text(max_size=20), st.sampled_from(NASTY_TEXT)))
EXTREME = [-0.0, 1e12 + 1, 1e13, 1.7e308, -1.0, -5e-324, float("inf"), float("nan"), 2**63 - 1, 2**63, -(2**63),
           10**30]
WILD_NUMBER = st.one_of(st.floats(), st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from(EXTREME))
NUMBER = mostly(st.one_of(st.none(), st.floats(min_value=0, max_value=1e12),
                          st.sampled_from([0.0, 5e-324, 1e-300, 1e12, 0.5, 1])), WILD_NUMBER)
UNIT = mostly(st.one_of(st.none(), st.floats(min_value=0, max_value=1), st.sampled_from([0.0, 5e-324, 1.0])),
              WILD_NUMBER)
REQUIRED = mostly(st.one_of(st.floats(min_value=0, max_value=1e12), st.sampled_from([0.0, 5e-324, 1e12])),
                  st.one_of(st.none(), WILD_NUMBER))
SMALL_INT = mostly(st.one_of(st.none(), st.integers(min_value=0, max_value=10**12)),
                   st.one_of(st.integers(min_value=-5, max_value=-1), st.sampled_from([10**12 + 1, 2**63 - 1])))
BOOL = mostly(st.booleans(), st.one_of(st.none(), st.integers(), TEXT))
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.floats(), st.integers(min_value=-(2**64), max_value=2**64), TEXT)
JSON = st.recursive(JSON_LEAF, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(TEXT, inner, max_size=3)), max_leaves=8)
JSON_TEXT = st.one_of(JSON.map(lambda v: json.dumps(v, allow_nan=True)), st.sampled_from(
    ["[" * 5000, '{"a": ' * 40 + "1" + "}" * 40, '{"k": "\\ud800"}', '{"k": "\\u0000"}', "{", "null", "{}"]))
MOMENT = mostly(st.one_of(st.none(), st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                                                  timezones=st.just(timezone.utc))),
                st.sampled_from([np.datetime64("10000-01-01"), np.datetime64("0001-01-01"),
                                 np.datetime64("-5000-01-01"), "10000-01-01", "not a time"]))
GOOD_CONDITIONS = st.fixed_dictionaries({}, optional={
    "time_range": st.sampled_from([["09:00", "17:00"], ["0001-01-01", "9999-12-31"], ["22:00", "06:00"],
                                   ["00:00", "24:00"], ["2024-01-01T00:00:00Z", "2024-07-01"]]),
    "user_tiers": st.one_of(st.lists(GOOD_TEXT.filter(bool), min_size=1, max_size=3), GOOD_TEXT.filter(bool)),
    "rate_limit_per_min": st.integers(min_value=0, max_value=2**31 - 1)})
CONDITIONS = mostly(st.one_of(st.none(), GOOD_CONDITIONS, GOOD_CONDITIONS.map(json.dumps)), st.one_of(
    JSON_TEXT, st.fixed_dictionaries({}, optional={"time_range": st.lists(TEXT, max_size=3),
                                                   "user_tiers": st.one_of(st.lists(TEXT, max_size=3), TEXT),
                                                   "rate_limit_per_min": WILD_NUMBER})))
DESCRIPTION = mostly(st.text(st.characters(categories=("Ll", "Lu", "Lo")), min_size=1, max_size=30).map(
    lambda t: f"questions about {t}"), TEXT)

#: Every SQL function a user relies on: after any write, each must still run.
READS = [
    "SELECT * FROM ruvector_route('write some code')",
    "SELECT ruvector_route(x, optimize_for := 'cost') FROM (VALUES ('a'), (NULL), ('write code')) t(x)",
    "SELECT * FROM ruvector_list_agents()",
    "SELECT * FROM ruvector_list_routes()",
    "SELECT * FROM ruvector_routing_stats()",
    "SELECT * FROM ruvector_routing_analytics(time_range := 'all', group_by := 'category')",
    "SELECT * FROM ruvector_budget_status()",
    "SELECT * FROM ruvector_optimize_budget(100.0)",
    "SELECT * FROM ruvector_agent_health()",
    "SELECT * FROM ruvector_semantic_route('write some code', top_k := 5)",
    "SELECT ruvector_classify_request('write some code')",
    "SELECT * FROM ruvector_route_multi('write some code', num_agents := 2)",
    "SELECT * FROM ruvector_batch_route(['write code', 'answer a question'], budget := 1.0)",
    "SELECT * FROM ruvector_find_agents_by_capability('code')",
    "SELECT * FROM ruvector_list_models()",
]
WRITES: dict[str, list[int]] = {}  # write -> [accepted, rejected]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("stored")
    engine = td.Engine(root / "store", embedder="hashing")
    engine.register_agent("coder", "llm", ["code"], cost_per_call=0.01, quality_score=0.9)
    engine.usage.record("coder", 0.01, True, 100.0, category="chat")
    engine.classifier.train([f"text {i}" for i in range(12)], ["a", "b"] * 6, model="base", hidden_dim=4, epochs=1)
    con = engine.connect()
    yield engine, con, root
    con.close()


def _attempt(kind: str, write) -> bool:
    """Run a write: True if accepted, False if rejected with one of ours; anything else fails the test."""
    counts = WRITES.setdefault(kind, [0, 0])
    try:
        write()
    except td.TinydancerError as exc:
        counts[1] += 1
        if __import__("os").environ.get("TD_DEBUG"):
            print(kind, "REJECTED", str(exc)[:150])
        return False
    counts[0] += 1
    return True


def _everything_works(con) -> None:
    for query in READS:
        con.execute(query).fetchall()


def _agent_exists(con, name: str) -> bool:
    return con.execute("SELECT ruvector_get_agent(?) IS NOT NULL", [name]).fetchone()[0]


EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@EXAMPLES
@given(name=NAME, agent_type=st.sampled_from(["llm", "tool", "x"]), capabilities=st.lists(TEXT, max_size=4),
       prices=st.tuples(NUMBER, NUMBER, NUMBER), latency=NUMBER, quality=UNIT,
       metadata=mostly(st.one_of(st.none(), st.dictionaries(GOOD_TEXT, st.one_of(GOOD_TEXT, st.integers(
           min_value=-(2**64), max_value=2**64), st.floats(allow_nan=False, allow_infinity=False)), max_size=3)),
                       st.one_of(JSON_TEXT, st.dictionaries(TEXT, JSON, max_size=3))))
def test_register_agent(world, name, agent_type, capabilities, prices, latency, quality, metadata):
    engine, con, _ = world
    accepted = _attempt("register_agent", lambda: engine.register_agent(
        name, agent_type, capabilities, cost_per_1k_tokens=prices[0], cost_per_call=prices[1],
        cost_per_second=prices[2], avg_latency_ms=latency, quality_score=quality, metadata=metadata))
    _everything_works(con)
    if accepted and name != "coder":
        assert con.execute("SELECT ruvector_remove_agent(?)", [name]).fetchone()[0]
        assert not _agent_exists(con, name)
        _everything_works(con)


@EXAMPLES
@given(config=st.one_of(JSON_TEXT, st.fixed_dictionaries(
    {"name": NAME, "agent_type": st.just("llm")},
    optional={"capabilities": st.lists(TEXT, max_size=3), "p99_latency_ms": NUMBER, "success_rate": UNIT,
              "avg_output_tokens": NUMBER, "active": BOOL,
              "metadata": mostly(st.dictionaries(GOOD_TEXT, GOOD_TEXT, max_size=3), JSON)})))
def test_register_agent_full(world, config):
    engine, con, _ = world
    accepted = _attempt("register_agent_full", lambda: engine.register_agent_full(config))
    _everything_works(con)
    if accepted and isinstance(config, dict) and config["name"] != "coder":
        assert con.execute("SELECT ruvector_remove_agent(?)", [config["name"]]).fetchone()[0]
        _everything_works(con)


@EXAMPLES
@given(latency=REQUIRED, success=BOOL, quality=UNIT, active=BOOL)
def test_update_agent_metrics_and_set_active(world, latency, success, quality, active):
    engine, con, _ = world
    _attempt("update_agent_metrics", lambda: engine.update_agent_metrics("coder", latency, success, quality))
    _everything_works(con)
    _attempt("set_agent_active", lambda: engine.set_agent_active("coder", active))
    engine.set_agent_active("coder", True)
    _everything_works(con)


@EXAMPLES
@given(name=NAME, description=DESCRIPTION, target=NAME,
       priority=mostly(st.integers(min_value=-(2**31) + 1, max_value=2**31 - 1), WILD_NUMBER),
       min_similarity=mostly(st.one_of(st.none(), st.floats(min_value=-1, max_value=1)), WILD_NUMBER),
       conditions=CONDITIONS, example=TEXT)
def test_create_route_and_add_example(world, name, description, target, priority, min_similarity, conditions,
                                      example):
    engine, con, _ = world
    accepted = _attempt("create_route", lambda: engine.routes.create_route(
        name, description, target, priority=priority, min_similarity=min_similarity, conditions=conditions))
    _everything_works(con)
    if accepted:
        _attempt("add_route_example", lambda: engine.routes.add_examples([name], [example]))
        _everything_works(con)
        assert con.execute("SELECT ruvector_delete_route(?)", [name]).fetchone()[0]
        _everything_works(con)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(agent=st.one_of(st.just("coder"), NAME), cost=REQUIRED, success=BOOL, latency=REQUIRED, ts=MOMENT,
       request_id=st.one_of(st.none(), TEXT), route=st.one_of(st.none(), TEXT),
       category=st.one_of(st.none(), TEXT), tokens=st.tuples(SMALL_INT, SMALL_INT), quality=UNIT)
def test_record_usage(world, agent, cost, success, latency, ts, request_id, route, category, tokens, quality):
    engine, con, _ = world
    _attempt("record_usage", lambda: engine.usage.record(
        agent, cost, success, latency, ts=ts, request_id=request_id, route=route, category=category,
        tokens_in=tokens[0], tokens_out=tokens[1], quality=quality))
    _everything_works(con)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(rows=st.lists(st.tuples(st.one_of(st.just("coder"), NAME), REQUIRED, REQUIRED, MOMENT, TEXT), min_size=1,
                     max_size=6))
def test_ingest_usage(world, rows):
    engine, con, root = world
    path = root / "ingest.parquet"
    try:
        ts = pa.array([r[3] if isinstance(r[3], datetime) else None for r in rows], pa.timestamp("us", tz="UTC"))
        table = pa.table({"agent": [r[0] for r in rows], "cost": [r[1] for r in rows],
                          "latency_ms": [r[2] for r in rows], "success": [True] * len(rows), "ts": ts,
                          "category": [r[4] for r in rows]})
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError, TypeError):
        return  # not expressible as a Parquet log
    pq.write_table(table, path)
    _attempt("ingest_usage", lambda: engine.usage.ingest(path, ts="now"))
    _everything_works(con)


@EXAMPLES
@given(amount=REQUIRED, agent=mostly(st.one_of(st.none(), st.just("coder")), NAME),
       period=mostly(st.sampled_from(["day", "week", "month"]), TEXT))
def test_set_budget(world, amount, agent, period):
    engine, con, _ = world
    _attempt("set_budget", lambda: engine.budgets.set(amount, agent=agent, period=period))
    _everything_works(con)
    for who in (None, "coder"):
        engine.budgets.remove(who)
    _everything_works(con)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(model=NAME, labels=st.lists(TEXT, min_size=2, max_size=3, unique=True),
       hidden_dim=mostly(st.integers(min_value=1, max_value=6), st.sampled_from([0, -1, 30_000, 2**40])),
       epochs=mostly(st.integers(min_value=1, max_value=2), st.sampled_from([0, 2**31])),
       learning_rate=mostly(st.floats(min_value=1e-4, max_value=1.0), WILD_NUMBER))
def test_train_classifier(world, model, labels, hidden_dim, epochs, learning_rate):
    engine, con, _ = world
    texts = [f"example {i} about {labels[i % len(labels)]!r}" for i in range(12)]
    _attempt("train_classifier", lambda: engine.classifier.train(
        texts, [labels[i % len(labels)] for i in range(12)], model=model, hidden_dim=hidden_dim, epochs=epochs,
        learning_rate=learning_rate))
    _everything_works(con)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(model=NAME, agents=st.lists(NAME, min_size=1, max_size=2, unique=True), outcome=UNIT,
       hidden_dim=mostly(st.integers(min_value=0, max_value=4), st.sampled_from([-1, 30_000])),
       epochs=mostly(st.integers(min_value=1, max_value=3), st.sampled_from([0, 2**31])),
       learning_rate=mostly(st.floats(min_value=1e-4, max_value=1.0), WILD_NUMBER))
def test_train_outcome_router(world, model, agents, outcome, hidden_dim, epochs, learning_rate):
    engine, con, _ = world
    outcomes = np.full((12, len(agents)), np.nan if outcome is None else float(outcome) if abs(
        float(outcome)) < 1e300 else np.inf)
    outcomes[::3, 0] = 1.0  # some observed rows whatever was drawn: a wild value, when drawn, is what is rejected
    _attempt("train_outcome_router", lambda: engine.outcomes.train(
        [f"request {i}" for i in range(12)], outcomes, agents, model=model, kind="head", hidden_dim=hidden_dim,
        epochs=epochs, learning_rate=learning_rate))
    _everything_works(con)


def test_the_store_is_healthy_after_all_of_it(world):
    """Printed for the closing report (pytest -s): how many writes of each kind were accepted and rejected."""
    _, con, root = world
    from tinydancer_duck.cli._doctor import check_store

    _everything_works(con)
    assert check_store(root / "store").healthy, check_store(root / "store").text()
    print("\nwrites accepted/rejected: " + ", ".join(f"{k} {a}/{r}" for k, (a, r) in sorted(WRITES.items())))
    assert all(a > 0 for a, _ in WRITES.values()) and all(r > 0 for _, r in WRITES.values()), WRITES


def test_the_issue_cases_are_rejected_or_harmless(world):
    """The values issue 16 named: each is rejected now, and the store keeps working."""
    engine, con, _ = world
    for bad in ('{"rate_limit_per_min": 1e19}', '{"user_tiers": ["\\ud800"]}'):
        with pytest.raises(duckdb.Error, match="invalid conditions"):
            con.execute(f"SELECT ruvector_create_route('r', 'some words', 'coder', conditions := '{bad}')")
    with pytest.raises(duckdb.Error, match="invalid ts="):
        con.execute("SELECT ruvector_record_usage('coder', 0.1, true, 1.0, ts := '10000-01-01')")
    with pytest.raises(duckdb.Error, match="invalid name="):
        con.execute("SELECT ruvector_register_agent('a' || chr(0) || 'b', 'llm', ['code'])")
    with pytest.raises(duckdb.Error, match="invalid metadata=.*nested"):
        con.execute("SELECT ruvector_register_agent('deep', 'llm', ['code'], metadata := repeat('[', 100000))")
    with pytest.raises(duckdb.Error, match="invalid tokens_in="):
        con.execute("SELECT ruvector_record_usage('coder', 0.1, true, 1.0, tokens_in := 9223372036854775807)")
    _everything_works(con)
    assert not engine.store.read("usage").filter(pa.compute.equal(engine.store.read("usage")["agent"], "deep"))
