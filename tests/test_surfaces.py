"""Every surface takes the options the declarations give it (tinydancer_duck/options): the SQL functions, their
Python twins, route_batch (and so Ray and Spark), the replays and the CLI accept exactly the declared names, refuse a
bad value with the same error and make the same decisions (issue 22). Parametrized over the declarations, not over
hand-written lists."""

from __future__ import annotations

import importlib
import inspect

import duckdb
import pyarrow as pa
import pytest

import tinydancer_duck as td
from tinydancer_duck.cli._flags import flag_of, flag_values
from tinydancer_duck.cli._main import build_parser, main
from tinydancer_duck.options import (
    EXPLORING,
    REQUIRED,
    SIGNATURES,
    Choices,
    Interval,
    Policy,
    RouteOptions,
    Strings,
    params_of,
)
from tinydancer_duck.udfs import bindings
from tinydancer_duck.udfs.__main__ import generated

ROUTE_PARAMS = params_of(RouteOptions)
REQUESTS = ["Write a Python function to sort a list", "Debug my failing unit tests", "Tell me a joke"]
#: A value of each routing option that changes some decision over REQUESTS with the seed agents.
GIVEN = {"optimize_for": "latency", "required_capabilities": ["debugging"], "max_cost": 0.0009,
         "max_latency_ms": 300.0, "min_quality": 0.85, "excluded_agents": ["code-specialist"],
         "budget_remaining": 0.0009, "willingness_to_pay": 0.5, "explore": 1.0, "explore_seed": 3}
#: What an option needs beside it to change anything (a seed draws only where a request explores).
WITH = {"explore_seed": {"explore": 1.0}}


def bad_value(param):
    """A value the declared check refuses (None where SQL's own types refuse it first)."""
    check = param.check
    if isinstance(check, Interval) and (check.low is not None or check.high is not None):
        bad = (check.low - 1.0) if check.low is not None else (check.high + 1.0)
        return int(bad) if check.integer else bad
    if isinstance(check, Choices):
        return "nope"
    return None


def sql_literal(value):
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, list):
        return "[" + ", ".join(sql_literal(v) for v in value) + "]"
    return repr(value)


def expected_error(param, value) -> str:
    with pytest.raises(td.InvalidArgument) as info:
        RouteOptions.of(**{param.name: value})
    return str(info.value)


# -- the generated surface is current and complete ----------------------------------------------------------------
def test_generated_sql_and_reference_are_current():
    """sql/*.sql and docs/sql.md are what `python -m tinydancer_duck.udfs` writes from the declarations."""
    for path, text in generated().items():
        assert path.read_text() == text, f"{path} is stale: run python -m tinydancer_duck.udfs"


def test_every_sql_function_is_declared_with_exactly_its_parameters(con):
    found: dict[str, list[list[str]]] = {}
    for name, parameters in con.execute("SELECT function_name, parameters FROM duckdb_functions() "
                                        "WHERE function_name LIKE 'ruvector_%'").fetchall():
        found.setdefault(name, []).append(parameters)
    assert set(found) == set(SIGNATURES)
    for name, overloads in found.items():
        for parameters in overloads:
            assert parameters == [p.name for p in SIGNATURES[name].params], name
    assert {b.signature.name for b in bindings()} == set(SIGNATURES)


def _twin(path: str):
    owner, _, attribute = path.rpartition(".")
    if not owner:
        return getattr(td, attribute)
    for module in ("tinydancer_duck.engine", "tinydancer_duck.learn", "tinydancer_duck.semantic",
                   "tinydancer_duck.usage", "tinydancer_duck.budget"):
        holder = getattr(importlib.import_module(module), owner, None)
        if holder is not None:
            return getattr(holder, attribute)
    raise AssertionError(f"no twin {path}")


@pytest.mark.parametrize("signature", [s for s in SIGNATURES.values() if s.twin], ids=lambda s: s.name)
def test_python_twins_take_the_declared_names_and_defaults(signature):
    """Each declared parameter is a parameter of the twin (or reaches it through **values, checked by a value
    object), and an explicit default agrees with the declaration (None: the declared default applies)."""
    parameters = inspect.signature(_twin(signature.twin)).parameters
    positional = [p for name, p in parameters.items() if name not in ("self", "cls")
                  and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    takes_more = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for position, param in enumerate(signature.params):
        twin = parameters.get(param.name)
        if twin is None and param.required and position < len(positional):
            continue  # the data a function works on, passed by position (text, request, names)
        if twin is None:
            assert takes_more or param.name in ("text_column", "label_column", "route_column"), \
                (signature.name, param.name)  # columns the SQL entry reads from its source itself
            continue
        if twin.default is not inspect.Parameter.empty and twin.default is not None and not param.required:
            declared = tuple(param.default) if isinstance(param.default, list) else param.default
            assert twin.default == declared, (signature.name, param.name, twin.default, declared)


# -- one check: a bad value gets the same error on every surface ----------------------------------------------------
@pytest.fixture
def seeded(seed_con, engine):
    return engine, seed_con


@pytest.mark.parametrize("param", [p for p in ROUTE_PARAMS if bad_value(p) is not None], ids=lambda p: p.name)
def test_a_bad_routing_option_gets_one_error_everywhere(seeded, tmp_path, param):
    engine, con = seeded
    value = bad_value(param)
    message = expected_error(param, value)
    literal = sql_literal(value)
    sql_calls = [f"SELECT ruvector_route('x', {param.name} := {literal})",
                 f"SELECT * FROM ruvector_route('x', {param.name} := {literal})"]
    if param.name not in EXPLORING:
        sql_calls.append(f"SELECT ruvector_route_multi('x', {param.name} := {literal})")
    if param.name not in ("optimize_for", *EXPLORING):
        sql_calls.append(f"SELECT * FROM ruvector_batch_route(['x'], {param.name} := {literal})")
    for sql in sql_calls:
        with pytest.raises(duckdb.Error) as info:
            con.execute(sql).fetchall()
        assert message in str(info.value), sql
    python_calls = [lambda: engine.route(["x"], **{param.name: value}),
                    lambda: engine.route_one("x", **{param.name: value}),
                    lambda: td.route_batch(engine.snapshot(), pa.table({"request": ["x"]}), **{param.name: value})]
    for call in python_calls:
        with pytest.raises(td.InvalidArgument) as info:
            call()
        assert str(info.value) == message
    flags = [flag_of(param), str(value)]
    assert main(["route", "x", *flags, "--store", str(engine.store.path)]) == 2


def test_an_unknown_option_is_named_on_every_python_surface(seeded):
    engine, _ = seeded
    for call in (lambda: engine.route(["x"], max_costs=1.0), lambda: engine.batch_route(["x"], max_costs=1.0),
                 lambda: td.route_batch(engine.snapshot(), pa.table({"request": ["x"]}), max_costs=1.0),
                 lambda: Policy.of(max_costs=1.0)):
        with pytest.raises(td.InvalidArgument, match=r"invalid max_costs=1.0: is not an option of"):
            call()


# -- one decision: every surface routes the same with the same option ------------------------------------------
@pytest.mark.parametrize("param", ROUTE_PARAMS, ids=lambda p: p.name)
def test_every_surface_makes_the_same_decisions(seeded, param):
    engine, con = seeded
    base = WITH.get(param.name, {})
    given = {**base, param.name: GIVEN[param.name]}
    python = engine.route(REQUESTS, **given)["agent_name"].to_pylist()
    plain = engine.route(REQUESTS, **base)["agent_name"].to_pylist()
    assert python != plain or param.name == "optimize_for", "the option changes nothing here: pick another value"
    literals = ", ".join(f"{name} := {sql_literal(value)}" for name, value in given.items())
    scalar = [row[0] for row in con.execute(
        f"SELECT ruvector_route(r, {literals}).agent_name FROM unnest(?) t(r)", [REQUESTS]).fetchall()]
    table = [con.execute(f"SELECT agent_name FROM ruvector_route(?, {literals})", [r]).fetchone()[0]
             for r in REQUESTS]
    batch = td.route_batch(engine.snapshot(), pa.table({"request": REQUESTS}), **given)
    assert scalar == table == batch["agent_name"].to_pylist() == python
    if param.name not in ("optimize_for", "explore", "explore_seed"):  # a batch's own objective; no exploring
        together = engine.batch_route(REQUESTS, optimize_for="balanced", **given)
        assert together["agent_name"].to_pylist() == python


@pytest.mark.parametrize("param", ROUTE_PARAMS, ids=lambda p: p.name)
def test_the_cli_passes_each_option_under_its_declared_name(param):
    value = GIVEN[param.name]
    values = value if isinstance(value, list) else [value]
    argv = ["route", "x"] + [part for item in values for part in (flag_of(param), str(item))]
    args = build_parser().parse_args(argv)
    assert RouteOptions.of(**flag_values(args, ROUTE_PARAMS)) == RouteOptions.of(**{param.name: value})


#: CLI commands that mirror a SQL function: their flags are that function's parameters (less those given
#: positionally), under the declared names.
MIRRORS = {("simulate",): ("ruvector_simulate_summary", {"log"}),
           ("whatif",): ("ruvector_budget_whatif", {"log"}),
           ("curve",): ("ruvector_cost_quality_curve", {"log"}),
           ("train-outcomes",): ("ruvector_train_outcome_router", {"source"}),
           ("train",): ("ruvector_train_classifier", {"source"}),
           ("calibrate",): ("ruvector_calibrate", set()),
           ("agents", "import"): ("ruvector_import_agents", {"log"})}


@pytest.mark.parametrize("command", MIRRORS, ids=" ".join)
def test_cli_commands_take_their_sql_functions_parameters(command):
    function, positional = MIRRORS[command]
    parser = build_parser()
    for name in command:
        parser = next(a for a in parser._actions if a.dest in ("command", "agents_command")).choices[name]
    dests = {a.dest for a in parser._actions}
    declared = {p.name for p in SIGNATURES[function].params} - positional
    assert declared <= dests, declared - dests


# -- the four disagreements the issue found ------------------------------------------------------------------------
def test_route_batch_takes_willingness_to_pay_like_engine_route(seeded):
    engine, _ = seeded
    batch = td.route_batch(engine.snapshot(), pa.table({"request": REQUESTS}), willingness_to_pay=0.05)
    assert batch["agent_name"].to_pylist() == engine.route(REQUESTS, willingness_to_pay=0.05)["agent_name"].to_pylist()


def test_sql_batch_route_takes_the_routing_options(seeded):
    engine, con = seeded
    rows = con.execute("SELECT agent_name FROM ruvector_batch_route(?, max_cost := 0.0011)", [REQUESTS]).fetchall()
    assert [r[0] for r in rows] == engine.batch_route(REQUESTS, max_cost=0.0011)["agent_name"].to_pylist()
    assert "gpt-4" not in {r[0] for r in rows}  # gpt-4 costs more than $0.0011 for any of these requests


def test_cli_route_can_exclude_agents(seeded, capsys):
    engine, _ = seeded
    store = str(engine.store.path)
    assert main(["route", *REQUESTS, "--optimize-for", "quality", "--store", store]) == 0
    assert "gpt-4" in capsys.readouterr().out
    assert main(["route", *REQUESTS, "--optimize-for", "quality", "--exclude", "gpt-4", "--store", store]) == 0
    out = capsys.readouterr().out
    assert "gpt-4" not in out.split("why:")[0]


def test_a_policy_refuses_what_a_replay_cannot_use():
    with pytest.raises(td.InvalidArgument, match="budget_remaining"):
        Policy.of(budget_remaining=1.0)
    policy = Policy.of(optimize_for="cost", max_cost=0.01, holdout=0.2)
    assert policy.options == RouteOptions(optimize_for="cost", max_cost=0.01) and policy.holdout == 0.2


def test_declared_defaults_are_valid_values():
    """Every declared default passes its own check (a default the check refuses would break every call)."""
    for signature in SIGNATURES.values():
        for param in signature.params:
            if param.default is not REQUIRED and param.default is not None:
                default = list(param.default) if isinstance(param.check, Strings) else param.default
                assert param.value(default) is not None, (signature.name, param.name)


# -- the README's parameter lists are the declared ones ------------------------------------------------------------
def _readme_signatures() -> list[tuple[str, str]]:
    """(function, text) for each place README writes a function's full parameter list (its required parameters
    by name and others as ``name := default``), whitespace folded."""
    import re
    from pathlib import Path

    from tinydancer_duck.udfs._sql import signature_text

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    found = []
    for match in re.finditer(r"(ruvector_\w+)\(([^()`]*)\)", text):
        name, inner = match.group(1), " ".join(match.group(2).split())
        if name not in SIGNATURES or ":=" not in inner:
            continue
        parts = [p.strip() for p in inner.split(",")]
        required = [p.name for p in SIGNATURES[name].params if p.required]
        listed = parts[:len(required)] == required and all(re.fullmatch(r"[\w\"]+( := .+)?", p) for p in parts)
        if not listed or sum(":=" in p for p in parts) < 2 or not any(p.endswith(":= NULL") for p in parts):
            continue  # a call with values, not a parameter list
        found.append((name, f"{name}({inner})"))
    assert found, "README lists no parameters?"
    return [(name, text, signature_text(SIGNATURES[name])) for name, text in found]


def test_readme_parameter_lists_match_the_declarations():
    for name, written, declared in _readme_signatures():
        assert written == declared, f"README's {name} differs from the declaration:\n{written}\n{declared}"


def test_plans_and_batches_refuse_exploring(seeded):
    engine, con = seeded
    for call in (lambda: engine.route_multi("x", explore=0.1), lambda: engine.batch_route(["x"], explore=0.1)):
        with pytest.raises(td.InvalidArgument, match="invalid explore=0.1: applies to a single decision"):
            call()
    with pytest.raises(duckdb.BinderException):
        con.execute("SELECT ruvector_route_multi('x', explore := 0.1)").fetchall()
