"""Bad input everywhere: every ruvector_* SQL function and the Engine's public methods, under hypothesis.

Every call either succeeds (a per-row NULL with a reason where the row is bad) or fails with one of the package's
errors whose text names the argument ("invalid max_cost=-1.0: ..."), or with a DuckDB error of its own (a cast or
a bind error). Never a Python exception from deep inside (IndexError, TypeError, ArrowInvalid, ...), never a dead
DuckDB, and a rejected call leaves every table exactly as it was (versions and rows compared).
"""

from __future__ import annotations

import math
import re

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinydancer_duck as td
from tinydancer_duck.store import TABLES, USAGE_SCHEMA

OURS = ("InvalidArgument", "NotFound", "StoreError", "ModelError")
BIG = "repeat('x', 1048576)"  # a 1 MB string
NASTY = "'o''brien\"; DROP TABLE agents; -- \\ % _'"
DIM = 512  # the hashing embedder's dimension

POOLS = {
    "text": ["NULL", "''", "'   '", BIG, "'bogus'", NASTY, "'gpt-4'", "'Write a Python function'", "chr(0)",
             "'a' || chr(0) || 'b'"],
    "request": ["NULL", "''", BIG, "'How do I reset my password?'", NASTY, "[1, 2, 3]::FLOAT[]",
                f"list_value({', '.join(['0.0'] * 4)})::FLOAT[]", f"[x::FLOAT for x in range({DIM})]",
                f"[0.0::FLOAT for x in range({DIM})]", f"['nan'::FLOAT for x in range({DIM})]", "[]::FLOAT[]"],
    "texts": ["NULL", "[]::VARCHAR[]", "[NULL]::VARCHAR[]", "['', NULL, 'write code']", f"[{BIG}]"],
    "list": ["NULL", "[]::VARCHAR[]", "[NULL]::VARCHAR[]", "['bogus']", "['code']", f"[{NASTY}]", "['']"],
    "number": ["NULL", "'NaN'::DOUBLE", "'inf'::DOUBLE", "'-inf'::DOUBLE", "-1", "0", "1e308", "0.5",
               "9223372036854775807", "-1e-300", "1e13", "5e-324"],
    "int": ["NULL", "-1", "0", "1", "3", "9223372036854775807", "2147483648", "-9223372036854775808"],
    "numbers": ["NULL", "[]::DOUBLE[]", "[NULL]::DOUBLE[]", "['nan'::DOUBLE]", "[-1.0]", "[1.0, 10.0]"],
    "bool": ["NULL", "true", "false"],
    "json": ["NULL", "'{'", "'[]'", "'null'", "'{}'", "'{\"x\": 1}'", "'{\"time_range\": \"25:00-26:00\"}'",
             "'{\"name\": \"j\", \"agent_type\": \"llm\"}'", NASTY, "repeat('[', 100000)",
             "'{\"user_tiers\": [\"\\ud800\"]}'", "'{\"rate_limit_per_min\": 1e19}'", "'{\"x\": NaN}'",
             "'{\"metadata\": {\"a\": \"\\u0000\"}}'"],
    "embedding": ["NULL", "[]::FLOAT[]", "[1, 2, 3]::FLOAT[]", f"[0.0::FLOAT for x in range({DIM})]",
                  f"['inf'::FLOAT for x in range({DIM})]", f"[1.0::FLOAT for x in range({DIM})]"],
    "ts": ["NULL", "TIMESTAMP '1970-01-01'", "TIMESTAMPTZ '2262-04-11 00:00:00+00'", "now()", "'10000-01-01'",
           "TIMESTAMP '0001-01-01'", "TIMESTAMP '9999-12-31 23:59:59'"],
    "path": ["NULL", "''", "'/nonexistent/x.parquet'", "'{bad_utf8}'", "'{empty}'", NASTY],
}
KIND = {
    **dict.fromkeys(("request", "query", "content", "example", "text", "description"), "request"),
    "requests": "texts",
    **dict.fromkeys(("capabilities", "required_capabilities", "excluded_agents", "examples"), "list"),
    **dict.fromkeys(("num_agents", "top_k", "limit", "version", "batch_rows", "points", "hidden_dim", "epochs",
                     "random_state", "tokens_in", "tokens_out", "context_window", "max_output_tokens",
                     "num_fallbacks", "folds", "explore_seed"), "int"),
    **dict.fromkeys(("is_active", "success", "explain", "observed_only"), "bool"),
    **dict.fromkeys(("metadata", "config", "conditions", "columns", "demand"), "json"),
    "embedding": "embedding", "budgets": "numbers",
    **dict.fromkeys(("ts", "now"), "ts"),
    **dict.fromkeys(("path", "log", "source"), "path"),
    **dict.fromkeys(("cost", "cost_per_1k_tokens", "cost_per_call", "cost_per_second", "avg_latency_ms",
                     "quality_score", "max_cost", "max_latency_ms", "min_quality", "budget_remaining", "budget",
                     "latency_ms", "quality", "amount", "monthly_budget", "quality_threshold",
                     "latency_threshold_ms", "threshold", "priority", "min_similarity", "learning_rate",
                     "weight_decay", "out_of_scope_weight", "validation_fraction", "period_days",
                     "willingness_to_pay", "quality_share", "cost_per_1k", "strongest_share", "holdout", "explore",
                     "confidence", "propensity"),
                    "number"),
}
#: Functions that train or replay a whole log: swept with explicit cases below (a valid log with a huge epochs
#: would just run long), not by hypothesis.
HEAVY = {"ruvector_train_classifier", "ruvector_train_outcome_router", "ruvector_simulate",
         "ruvector_simulate_summary", "ruvector_cost_quality_curve", "ruvector_budget_whatif", "ruvector_fit_routes",
         "ruvector_ingest_usage"}
#: Names an error may give for an argument besides the SQL parameter's own (the value a macro derives it into).
ALIASES = {"path": set(USAGE_SCHEMA.names),  # ingest names the log's bad field
           "request": {"requests", "text"}, "query": {"request"}, "content": {"request", "texts"},
           "route_name": {"name", "route"}, "example": {"text"}, "config": {"name", "agent_type", "capabilities",
                                                                            "metadata", "active", "quality_score"},
           "name": {"model"}, "agent": {"scope"},
           # a log replayed against the store: an empty agent set is named as 'agents'
           "log": {"agents", "columns", "path"}, "source": {"agents", "columns", "path", "log"}}
CALLS = {"ruvector_sql": 0, "hypothesis_examples": 0, "explicit": 0}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    engine = td.Engine(root / "store", embedder="hashing")
    con = engine.connect()
    con.execute("""
        SELECT ruvector_register_agent('gpt-4', 'llm', ['reasoning', 'code'], cost_per_1k_tokens := 0.03,
                                       avg_latency_ms := 2500, quality_score := 0.95);
        SELECT ruvector_register_agent('haiku', 'llm', ['chat'], cost_per_1k_tokens := 0.00025);
        SELECT ruvector_create_route('billing', 'questions about invoices and charges', 'gpt-4');
        SELECT ruvector_record_usage('gpt-4', 0.01, true, 120.0);
    """).fetchall()
    bad = root / "bad_utf8.parquet"
    offsets = pa.array([0, 2, 5], pa.int32()).buffers()[1]
    data = pa.py_buffer(b"\xff\xfeab\xc3")
    agent = pa.Array.from_buffers(pa.string(), 2, [None, offsets, data])  # invalid UTF-8 declared as string
    pq.write_table(pa.table({"agent": agent, "cost": [0.1, 0.2], "success": [True, True],
                             "latency_ms": [1.0, 2.0], "text": agent, "label": ["a", "b"]}), bad)
    empty = root / "empty.parquet"
    pq.write_table(pa.table({"agent": pa.array([], pa.string()), "cost": pa.array([], pa.float64()),
                             "success": pa.array([], pa.bool_()), "latency_ms": pa.array([], pa.float64())}), empty)
    yield engine, con, {"bad_utf8": str(bad), "empty": str(empty)}
    con.close()


def table_state(engine: td.Engine) -> dict[str, tuple[int, list]]:
    state = {}
    for name in TABLES:
        table = engine.store.table(name)
        rows = table.to_arrow()
        state[name] = (int(table.version), sorted(map(repr, rows.to_pylist())))
    return state


def check_error(message: str, params: list[str]) -> None:
    """A DuckDB error of its own, or one of ours naming an argument; never a deep Python traceback."""
    assert "Traceback" not in message, message
    if "Python exception occurred" not in message:
        assert re.match(r"(Conversion|Binder|Invalid Input|Out of Range|Parser|Invalid|IO) Error", message), message
        return
    found = re.search(r"while executing the UDF: (\w+): (.*)", message, re.DOTALL)
    assert found and found.group(1) in OURS, message
    if found.group(1) == "InvalidArgument":
        named = re.match(r"invalid (\w+)(?:\.\w+)*=", found.group(2))  # conditions.user_tiers names conditions
        assert named, message
        # 'agents' names the store's state: an empty agent set where the call needs agents
        allowed = set(params).union({"agents"}, *(ALIASES.get(p, set()) for p in params))
        assert named.group(1) in allowed, (named.group(1), params, message)


def sql_surface(con) -> list[tuple[str, str, list[str]]]:
    rows = con.execute("SELECT DISTINCT function_name, function_type, parameters FROM duckdb_functions() "
                       "WHERE function_name LIKE 'ruvector_%' ORDER BY 1, 2").fetchall()
    return [(name, kind, list(params)) for name, kind, params in rows]


def call_sql(engine, con, files, name: str, kind: str, params: list[str], values: dict[str, str]) -> None:
    values = {p: v.replace("{bad_utf8}", files["bad_utf8"]).replace("{empty}", files["empty"])
              for p, v in values.items()}
    args = ", ".join(f'"{p}" := {v}' for p, v in values.items())
    if params and params[0] in values:  # the first (required) parameter positionally
        first = values[params[0]]
        rest = ", ".join(f'"{p}" := {v}' for p, v in values.items() if p != params[0])
        args = first + (", " + rest if rest else "")
    sql = f"SELECT * FROM {name}({args})" if kind == "table_macro" else f"SELECT {name}({args}) AS r"
    before = table_state(engine)
    CALLS["ruvector_sql"] += 1
    try:
        con.execute(sql).fetchall()
    except duckdb.Error as exc:
        check_error(str(exc), params)
        assert table_state(engine) == before, f"a rejected call changed the store: {sql[:300]}"
    con.execute("SELECT 1").fetchall()  # DuckDB is alive


def test_the_sweep_covers_the_whole_sql_surface(world):
    _, con, _ = world
    names = {name for name, _, _ in sql_surface(con)}
    assert len(names) >= 35
    words = ("name", "agent", "route", "category", "request_id", "user_tier", "agent_type", "strategy",
             "optimize_for", "group_by", "time_range", "period", "text_column", "label_column", "route_column",
             "model", "description", "target_agent", "capability", "route_name", "kind", "calibration", "scope",
             "estimator", "interval", "policy")
    for name, _, params in sql_surface(con):
        for param in params:
            assert param in KIND or param in words, (name, param)


@pytest.mark.parametrize("index", range(48))
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_sql_function_with_bad_arguments(world, index, data):
    engine, con, files = world
    surface = [s for s in sql_surface(con) if s[0] not in HEAVY]
    if index >= len(surface):
        return
    name, kind, params = surface[index]
    values = {}
    for i, param in enumerate(params):
        required = i == 0 or name in ("ruvector_record_usage",) and i < 4
        if not required and data.draw(st.booleans(), label=f"omit {param}"):
            continue
        values[param] = data.draw(st.sampled_from(POOLS[KIND.get(param, "text")]), label=param)
    if name == "ruvector_find_agents_by_capability" and "limit" in values and "capability" not in values:
        values["capability"] = "'code'"
    CALLS["hypothesis_examples"] += 1
    call_sql(engine, con, files, name, kind, params, values)


HEAVY_CASES = [
    ("ruvector_ingest_usage", "table_macro", ["path", "columns", "batch_rows"], case)
    for case in ({"path": "NULL"}, {"path": "''"}, {"path": "'/nonexistent/x.parquet'"}, {"path": "'{bad_utf8}'"},
                 {"path": "'{empty}'"}, {"path": "'{empty}'", "batch_rows": "0"},
                 {"path": "'{empty}'", "batch_rows": "-1"}, {"path": "'{empty}'", "columns": "'{'"},
                 {"path": "'{empty}'", "columns": "'{\"bogus\": \"x\"}'"}, {"path": NASTY})
] + [
    (name, "table_macro", ["source" if "train" in name or "fit" in name else "log"], {"x": path})
    for name in sorted(HEAVY - {"ruvector_ingest_usage", "ruvector_budget_whatif"})
    for path in ("NULL", "'/nonexistent/x.parquet'", "'{bad_utf8}'", "'{empty}'", NASTY)
] + [
    ("ruvector_budget_whatif", "table_macro", ["log", "budgets"], {"log": path, "budgets": budgets})
    for path in ("'/nonexistent/x.parquet'", "'{bad_utf8}'", "'{empty}'")
    for budgets in ("NULL", "[]::DOUBLE[]", "[-1.0]", "['nan'::DOUBLE]", "[10.0]")
]


@pytest.mark.parametrize("name, kind, params, case", HEAVY_CASES)
def test_heavy_sql_functions_with_bad_sources(world, name, kind, params, case):
    engine, con, files = world
    values = {params[0]: next(iter(case.values()))} | {k: v for k, v in case.items() if k in params[1:]}
    CALLS["explicit"] += 1
    call_sql(engine, con, files, name, kind, params, values)


def test_invalid_utf8_in_a_parquet_log_is_rejected_cleanly(world):
    engine, con, files = world
    before = table_state(engine)
    with pytest.raises(duckdb.Error, match="(?i)utf-?8|encoding|invalid"):
        con.execute(f"SELECT ruvector_route(agent) FROM '{files['bad_utf8']}'").fetchall()
    with pytest.raises(td.TinydancerError, match="agent"):
        engine.usage.ingest(files["bad_utf8"], ts="now")
    assert table_state(engine) == before
    CALLS["explicit"] += 2


# -- Python entry points ----------------------------------------------------------------------------------------
PY_VALUES = {
    "text": [None, "", " ", "x" * 1_048_576, "bogus", "o'brien\"; --", "gpt-4", 3, b"\xff\xfe", float("nan")],
    "number": [None, float("nan"), float("inf"), -float("inf"), -1, 0, 0.5, 1e308, 10**30, "1", True],
    "int": [None, -1, 0, 1, 3, 10**18, 2**63, 1.5, "3", float("nan")],
    "list": [None, [], [None], ["bogus"], ["code"], "code", [""], [1, 2], ["x" * 100_000]],
    "requests": [None, [], [None], [""], ["write code"], "write code", np.zeros((2, DIM), np.float32),
                 np.ones((2, 3), np.float32), np.full((1, DIM), np.nan, np.float32), np.zeros((0, DIM)),
                 [["nested"]], pa.array([b"\xff"], pa.binary()), 42],
    "bool": [None, True, False, "yes", 2],
    "json": [None, "{", "[]", "null", {}, {"x": 1}, {"nested": {"a": [1, 2]}}, 5],
}
PY_METHODS = {
    "register_agent": {"name": "text", "agent_type": "text", "capabilities": "list", "cost_per_1k_tokens": "number",
                       "avg_latency_ms": "number", "quality_score": "number", "metadata": "json"},
    "register_agent_full": {"config": "json"},
    "get_agent": {"name": "text"},
    "remove_agent": {"name": "text"},
    "set_agent_active": {"name": "text", "is_active": "bool"},
    "find_agents_by_capability": {"capability": "text", "limit": "int"},
    "update_agent_metrics": {"name": "text", "latency_ms": "number", "success": "bool", "quality": "number"},
    "embed": {"texts": "requests"},
    "route": {"requests": "requests", "optimize_for": "text", "required_capabilities": "list",
              "max_cost": "number", "max_latency_ms": "number", "min_quality": "number",
              "excluded_agents": "list", "budget_remaining": "number"},
    "route_multi": {"request": "requests", "num_agents": "int", "strategy": "text", "max_cost": "number"},
    "batch_route": {"requests": "requests", "optimize_for": "text", "budget": "number"},
}
PY_ALIASES = {"requests": {"request"}, "texts": {"request", "text", "texts"}, "config": {"name", "agent_type",
              "capabilities", "metadata"}, "capability": {"capabilities"}}


@pytest.mark.parametrize("method", sorted(PY_METHODS))
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_engine_methods_with_bad_arguments(world, method, data):
    engine, _, _ = world
    spec = PY_METHODS[method]
    first = next(iter(spec))
    kwargs = {}
    for param, kind in spec.items():
        if param == first or data.draw(st.booleans(), label=f"give {param}"):
            kwargs[param] = data.draw(st.sampled_from(PY_VALUES[kind]), label=param)
    args = [kwargs.pop(first)]
    positional = {"register_agent": ("agent_type", "capabilities"), "set_agent_active": ("is_active",),
                  "update_agent_metrics": ("latency_ms", "success")}.get(method, ())
    for param in positional:
        args.append(kwargs.pop(param, None))
    before = table_state(engine)
    CALLS["hypothesis_examples"] += 1
    try:
        getattr(engine, method)(*args, **kwargs)
    except td.TinydancerError as exc:
        assert table_state(engine) == before, f"a rejected {method} changed the store"
        if isinstance(exc, td.InvalidArgument):
            allowed = set(spec).union(*(PY_ALIASES.get(p, set()) for p in spec))
            assert exc.argument in allowed, (method, exc.argument, str(exc))
    # anything else (TypeError, IndexError, ArrowInvalid, ...) fails the test with its traceback


@pytest.mark.parametrize("values", [
    {"agent": None}, {"agent": ""}, {"cost": float("nan")}, {"cost": -1.0}, {"cost": float("inf")},
    {"latency_ms": -5.0}, {"success": None}, {"quality": 1.5}, {"tokens_in": -3}, {"ts": "not a time"},
    {"agent": ["a", "b"], "cost": [0.1]}, {"agent": "x" * 1_048_576},
])
def test_usage_record_rejects_bad_events(world, values):
    engine, _, _ = world
    event = {"agent": "gpt-4", "cost": 0.1, "success": True, "latency_ms": 10.0} | values
    before = table_state(engine)
    CALLS["explicit"] += 1
    try:
        engine.usage.record(event.pop("agent"), event.pop("cost"), event.pop("success"), event.pop("latency_ms"),
                            **event)
    except td.InvalidArgument as exc:
        assert exc.argument in {"agent", "cost", "latency_ms", "success", "quality", "tokens_in", "ts", "columns"}
        assert table_state(engine) == before
    else:
        assert values == {"agent": "x" * 1_048_576}  # a long name is data


def test_empty_agent_set_gives_null_rows_with_a_reason(tmp_path):
    con = td.connect(tmp_path / "empty", embedder="hashing")
    row = con.execute("SELECT r.agent_name, r.reasoning FROM (SELECT ruvector_route('write code') AS r)").fetchone()
    assert row[0] is None and row[1]
    plan = con.execute("SELECT * FROM ruvector_route_multi('write code', num_agents := 3)").fetchall()
    assert plan == [] or all(step[1] is None for step in plan)
    with pytest.raises(duckdb.Error, match=r"invalid num_agents=1000000: must be an integer within \[1, \d+\]"):
        con.execute("SELECT * FROM ruvector_route_multi('write code', num_agents := 1000000)").fetchall()
    assert con.execute("SELECT count(*) FROM ruvector_semantic_route('x', top_k := 1000000)").fetchone()[0] == 0
    CALLS["explicit"] += 3


def test_nan_and_zero_rows_in_a_batch_give_per_row_nulls(world):
    engine, _, _ = world
    x = np.zeros((3, DIM), np.float32)
    x[1, 0] = 1.0
    table = engine.route(x)
    assert table["agent_name"][0].as_py() is None and table["agent_name"][2].as_py() is None
    assert table["reasoning"][0].as_py()
    with pytest.raises(td.InvalidArgument, match="request"):
        engine.route(np.full((2, DIM), np.nan, np.float32))
    CALLS["explicit"] += 2


def test_report_counts():
    """Printed for the closing report (pytest -s): how many inputs the sweep tried."""
    total = sum(CALLS.values())
    print(f"\nbad-input sweep: {CALLS} -> {total} calls")
    assert math.isfinite(total)
