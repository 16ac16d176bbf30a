"""The house's rules, as tests: one public face, rooms that import only what they may, no circles, lazy imports.

Rooms are the subpackages of tinydancer_duck (store, embed, registry, routing, semantic, learn, usage, budget,
replay, report, distributed, cli); "ground" modules at the top (errors, settings, _validate, _numeric, _blas,
_logs, _offpolicy) may be imported by every room. README "Layout" draws the same map.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import tinydancer_duck as td

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinydancer_duck"

#: The public names of ``import tinydancer_duck`` (README "Python" documents each).
PUBLIC = {
    "Embedder", "Engine", "HashingEmbedder", "IngestReport", "InvalidArgument", "ModelError", "NotFound",
    "RouteClassifier", "RoutingSnapshot", "Settings", "StaticEmbedder", "StoreError", "TinydancerError",
    "TrainReport", "aiq", "budget_whatif", "connect", "curve", "make_embedder", "simulate", "train_classifier",
    "route_batch", "classify_batch", "semantic_route_batch", "ray_route", "spark_route",
}
GROUND = {"errors", "settings", "_validate", "_numeric", "_blas", "_logs", "_offpolicy"}
#: unit -> the units it may import (a unit is a room, or a top-level module outside the ground).
MAY_IMPORT = {
    "store": set(),
    "embed": set(),
    "registry": {"store", "embed"},
    "routing": {"registry"},
    "semantic": {"store", "embed"},
    "learn": {"store", "embed"},
    "usage": {"registry", "store"},
    "budget": {"usage", "registry", "store"},
    "snapshot": {"registry", "semantic", "learn", "embed", "__init__"},  # __init__: the version a file records
    "_decide": {"snapshot", "routing", "semantic", "learn", "registry", "embed"},
    "replay": {"_decide", "snapshot", "routing"},
    "report": {"replay", "snapshot", "__init__"},  # __init__: the package version the page names
    "distributed": {"_decide", "snapshot", "routing", "semantic", "learn", "embed"},
    "engine": {"_decide", "snapshot", "_connect", "store", "embed", "registry", "routing", "semantic", "learn",
               "usage", "budget", "replay"},
    "_connect": {"udfs"},
    "udfs": {"engine", "store", "embed", "registry", "routing", "semantic", "learn", "usage", "budget", "replay"},
    "cli": {"engine", "_connect", "store", "embed", "registry", "routing", "semantic", "learn", "usage", "budget",
            "replay", "report", "snapshot", "datasets", "distributed", "__init__"},
    "__init__": set(),  # the public face resolves its names lazily (see test_import_is_lazy)
}
#: Modules that are pure kernels: numpy/pyarrow only, never a store, a database or polars (not even lazily).
KERNELS = ("routing/", "semantic/_kernels.py", "semantic/_match.py", "semantic/_conditions.py", "semantic/_fit.py",
           "learn/_fastgrnn.py", "learn/_fastgrnn_grad.py", "learn/_train.py", "learn/_classifier.py", "embed/",
           "registry/_snapshot.py", "registry/_stats.py", "snapshot.py", "_decide.py", "distributed/", "_numeric.py",
           "_offpolicy.py", "replay/_outcome_model.py", "replay/_costs.py", "replay/_intervals.py",
           "_validate.py", "errors.py", "settings.py")
HEAVY = ("duckdb", "lancedb", "polars")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    """Dotted module name under tinydancer_duck -> file (the shipped data's build scripts are not modules the package
    imports, so they are left out)."""
    found = {".".join(p.relative_to(PACKAGE).with_suffix("").parts): p for p in PACKAGE.rglob("*.py")
             if p.parent.name != "datasets" or p.name == "__init__.py"}
    return {name.removesuffix(".__init__"): path for name, path in found.items()}


def _unit(module: str) -> str:
    """The room or top-level module a module belongs to."""
    return module.split(".")[0]


def _imports(path: Path, module: str) -> list[tuple[str, bool, int]]:
    """(imported module, at module level, line) for every import outside ``if TYPE_CHECKING:`` blocks; relative
    imports resolved against ``module``; our own modules as 'tinydancer_duck.x' dotted names."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    top_level = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        at_top = id(node) in top_level
        if isinstance(node, ast.Import):
            out += [(alias.name, at_top, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
                target = "tinydancer_duck." + target if target else "tinydancer_duck"
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names]
            out += [(name if _is_module(name) else target, at_top, node.lineno) for name in names]
    return out


def _is_module(dotted: str) -> bool:
    if not dotted.startswith("tinydancer_duck."):
        return False
    relative = dotted.removeprefix("tinydancer_duck.").replace(".", "/")
    return (PACKAGE / f"{relative}.py").exists() or (PACKAGE / relative / "__init__.py").exists()


def _ours(target: str) -> str | None:
    """Our module name for an import target ('routing._router', 'udfs.x'), else None."""
    if target == "tinydancer_duck":
        return "__init__"
    if target.startswith("tinydancer_duck."):
        return target.removeprefix("tinydancer_duck.")
    return None


def test_public_surface_is_exactly_the_documented_one():
    assert set(td.__all__) == PUBLIC
    readme = (ROOT / "README.md").read_text()
    for name in PUBLIC:
        assert getattr(td, name) is not None
        assert name in readme, f"{name} is public but README does not mention it"
    assert sorted(dir(td)) == sorted(set(dir(td)))  # __dir__ lists the lazy names too
    assert PUBLIC <= set(dir(td))


def test_no_public_name_is_shadowed_by_a_module():
    for name in PUBLIC:
        assert importlib.util.find_spec(f"tinydancer_duck.{name}") is None, f"tinydancer_duck.{name} is a module"


def test_rooms_import_only_what_they_may():
    wrong = []
    for module, path in _modules().items():
        unit = _unit(module)
        allowed = MAY_IMPORT.get(unit, set()) | GROUND | {unit}
        for target, _, line in _imports(path, module):
            ours = _ours(target)
            if ours is None or _unit(ours) in allowed:
                continue
            if unit in GROUND and _unit(ours) in GROUND:
                continue
            wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_private_modules_stay_in_their_room():
    wrong = []
    for module, path in _modules().items():
        for target, _, line in _imports(path, module):
            ours = _ours(target)
            if ours and "." in ours and not ours.startswith("udfs") and ours.split(".")[-1].startswith("_") \
                    and _unit(ours) != _unit(module):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target} (private to {_unit(ours)}/)")
    assert not wrong, "\n".join(wrong)


def test_heavy_libraries_stay_where_they_belong():
    wrong = []
    for module, path in _modules().items():
        rel = str(path.relative_to(PACKAGE))
        kernel = rel.startswith(KERNELS)
        for target, at_top, line in _imports(path, module):
            library = target.split(".")[0]
            if library == "lancedb" and not rel.startswith("store/"):
                wrong.append(f"{rel}:{line} imports lancedb (only store/ may)")
            if library == "duckdb" and at_top and not (rel.startswith(("cli/", "udfs")) or rel == "_connect.py"):
                wrong.append(f"{rel}:{line} imports duckdb at module level (only _connect.py, udfs/ and cli/ may)")
            if kernel and library in HEAVY:
                wrong.append(f"{rel}:{line} is a kernel and imports {library}")
    assert not wrong, "\n".join(wrong)


def test_no_import_circles():
    graph: dict[str, set[str]] = defaultdict(set)
    units: dict[str, set[str]] = defaultdict(set)
    for module, path in _modules().items():
        for target, at_top, _ in _imports(path, module):
            ours = _ours(target)
            if ours is None or ours == module:
                continue
            if at_top:
                graph[module].add(ours)
            if _unit(ours) != _unit(module) and "__init__" not in (module, ours):
                units[_unit(module)].add(_unit(ours))
    for edges in (graph, units):
        cycle = _find_cycle(edges)
        assert cycle is None, " -> ".join(cycle or [])


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_modules_and_functions_stay_small():
    too_big = []
    for path in _modules().values():
        lines = path.read_text().count("\n")
        if lines > MAX_MODULE_LINES:
            too_big.append(f"{path.relative_to(ROOT)}: {lines} lines")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                why = (ast.get_docstring(node) or "").lower()
                if length > MAX_FUNCTION_LINES and "long because" not in why:
                    too_big.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines and no "
                                   "'long because' in its docstring")
    assert not too_big, "\n".join(too_big)


def _fresh_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_is_lazy():
    loaded = _fresh_python("import sys, tinydancer_duck as td; td.__version__; td.InvalidArgument; "
                           f"print(' '.join(m for m in {HEAVY + ('numpy',)!r} if m in sys.modules))")
    assert loaded == ""


def test_the_decision_path_needs_no_store_database_or_polars():
    loaded = _fresh_python("import sys, tinydancer_duck._decide, tinydancer_duck.snapshot; "
                           f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    assert loaded == ""


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_cli_help_and_version_start_without_numpy(flag):
    code = (f"import sys\nfrom tinydancer_duck.cli import main\ntry:\n    main([{flag!r}])\nexcept SystemExit:\n"
            f"    pass\nprint('LOADED:', *(m for m in {HEAVY + ('numpy', 'pyarrow')!r} if m in sys.modules))")
    lines = _fresh_python(code).splitlines()
    assert lines[-1] == "LOADED:"
    if flag == "--version":
        assert lines[0] == f"tinydancer_duck {td.__version__}"
    else:
        assert "simulate" in "\n".join(lines)


# -- the SQL surface's defaults are the Python API's defaults ---------------------------------------------------------
def _macro_defaults() -> dict[str, dict[str, object]]:
    """macro name -> {parameter: default} from sql/*.sql (the first definition of each name)."""
    import re

    found: dict[str, dict[str, object]] = {}
    for path in sorted((PACKAGE / "sql").glob("*.sql")):
        text = re.sub(r"--[^\n]*", "", path.read_text())
        for name, params in re.findall(r"CREATE OR REPLACE MACRO (ruvector_\w+)\((.*?)\) AS", text, re.DOTALL):
            defaults = {}
            for param in params.split(","):
                if ":=" in param:
                    key, literal = (part.strip() for part in param.split(":=", 1))
                    defaults[key.strip('"')] = _sql_literal(literal)
            found.setdefault(name, defaults)
    return found


def _sql_literal(text: str) -> object:
    if text.upper() == "NULL":
        return None
    if text.startswith("["):  # a list of text literals, compared with a Python tuple
        return tuple(item.strip().strip("'") for item in text.strip("[]").split(",") if item.strip())
    if text.startswith("'"):
        return text.strip("'")
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return float(text)


def _python_defaults(function) -> dict[str, object]:
    import inspect

    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def test_sql_macro_defaults_match_the_python_defaults():
    from tinydancer_duck.budget import Budgets
    from tinydancer_duck.engine import Engine
    from tinydancer_duck.learn import Classifiers, OutcomeRouters
    from tinydancer_duck.replay import budget_whatif, curve, simulate
    from tinydancer_duck.semantic import SemanticRoutes
    from tinydancer_duck.usage import Analytics, Usage

    python = {
        "ruvector_register_agent": Engine.register_agent, "ruvector_route": Engine.route,
        "ruvector_route_multi": Engine.route_multi, "ruvector_batch_route": Engine.batch_route,
        "ruvector_find_agents_by_capability": Engine.find_agents_by_capability,
        "ruvector_update_agent_metrics": Engine.update_agent_metrics, "ruvector_semantic_route": Engine.semantic_match,
        "ruvector_create_route": SemanticRoutes.create_route, "ruvector_fit_routes": SemanticRoutes.fit,
        "ruvector_classify_capabilities": Classifiers.capabilities_list, "ruvector_train_classifier": Classifiers.train,
        "ruvector_activate_classifier": Classifiers.activate, "ruvector_train_outcome_router": OutcomeRouters.train,
        "ruvector_record_usage": Usage.record, "ruvector_ingest_usage": Usage.ingest,
        "ruvector_routing_analytics": Analytics.analytics_struct, "ruvector_set_budget": Budgets.set,
        "ruvector_optimize_budget": Budgets.optimize, "ruvector_simulate": simulate,
        "ruvector_simulate_summary": simulate, "ruvector_cost_quality_curve": curve,
        "ruvector_budget_whatif": budget_whatif, "ruvector_import_agents": Engine.import_agents,
        "ruvector_calibrate": OutcomeRouters.knob,
    }
    sql_only = {"text_column", "label_column", "route_column", "now", "remove", "source"}
    macros = _macro_defaults()
    mismatched, compared = [], 0
    for macro, function in python.items():
        defaults = _python_defaults(function)
        for param, value in macros[macro].items():
            if param in sql_only or param not in defaults:
                continue
            compared += 1
            if defaults[param] != value:
                mismatched.append(f"{macro}({param} := {value!r}) but Python's default is {defaults[param]!r}")
    assert not mismatched, "\n".join(mismatched)
    assert compared >= 60  # the comparison really ran over the surface
