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
    "RouteOptions", "Policy", "FastGRNNConfig", "OutcomeModelConfig",
}
GROUND = {"errors", "settings", "_validate", "_numeric", "_blas", "_logs", "options", "_offpolicy"}
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
    # __init__: the package version a snapshot file records; _snapshot_file: that file's data-only format
    "snapshot": {"registry", "semantic", "learn", "embed", "_snapshot_file", "__init__"},
    "_snapshot_file": {"registry", "semantic", "learn", "embed"},
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
           "registry/_snapshot.py", "registry/_stats.py", "snapshot.py", "_snapshot_file.py", "_decide.py",
           "distributed/", "_numeric.py", "_offpolicy.py", "replay/_outcome_model.py", "replay/_costs.py",
           "replay/_intervals.py", "_validate.py", "errors.py", "settings.py", "options/")
HEAVY = ("duckdb", "lancedb", "polars")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: A public function takes at most this many parameters (value objects carry the rest), unless its docstring says
#: why ("parameters because ...").
MAX_PARAMETERS = 8


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


def test_public_functions_take_few_parameters():
    """Value objects (RouteOptions, Policy, FastGRNNConfig, OutcomeModelConfig) travel whole instead of long
    parameter lists; a public function over the cap says why in its docstring."""
    too_many = []
    for path in _modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
                count = len([a for a in args if a.arg not in ("self", "cls")])
                why = " ".join((ast.get_docstring(node) or "").lower().split())
                if count > MAX_PARAMETERS and "parameters because" not in why:
                    too_many.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {count} parameters")
    assert not too_many, "\n".join(too_many)


def test_the_declarations_load_without_numpy_or_pyarrow():
    """The CLI builds its flags from tinydancer_duck.options before any heavy import."""
    loaded = _fresh_python("import sys, tinydancer_duck.options; "
                           f"print(' '.join(m for m in {HEAVY + ('numpy', 'pyarrow')!r} if m in sys.modules))")
    assert loaded == ""


def test_the_public_names_are_listed_once():
    """__all__ is derived from the lazy table, and the imports type checkers read match it."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    checked = {alias.name for node in ast.walk(tree) if isinstance(node, ast.If) for child in node.body
               if isinstance(child, ast.ImportFrom) for alias in child.names}
    assert checked == set(td._LAZY)
    assert set(td.__all__) == set(td._LAZY) | set(td._EAGER)


_MUTATORS = {"append", "extend", "insert", "update", "setdefault", "pop", "popitem", "clear", "add", "discard",
             "remove"}


def test_the_routing_room_holds_no_mutable_module_state():
    """routing/ is pure: no module-level container is changed after import (a cache filled with user strings at call
    time made decisions depend on what was routed before)."""
    wrong = []
    for path in sorted((PACKAGE / "routing").glob("*.py")):
        tree = ast.parse(path.read_text())
        module_names = {target.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                        if isinstance(target, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Global):
                wrong.append(f"{path.name}:{node.lineno} global {', '.join(node.names)}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in module_names \
                    and node.func.attr in _MUTATORS:
                wrong.append(f"{path.name}:{node.lineno} {node.func.value.id}.{node.func.attr}(...)")
            if isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) \
                            and target.value.id in module_names:
                        wrong.append(f"{path.name}:{node.lineno} {target.value.id}[...] =")
    assert not wrong, "\n".join(wrong)


def test_every_shipped_data_file_is_in_the_wheel():
    """Each file under the package that is not Python matches its folder's package-data glob: the wheel once
    lacked the evidence calibration (an editable install hides a missing file; CI's wheel run found it)."""
    import fnmatch

    import tomllib

    setuptools = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = setuptools["package-data"]
    assert setuptools["packages"]["find"]["include"] == ["tinydancer_duck*"]
    missing = []
    for path in PACKAGE.rglob("*"):
        if path.is_dir() or path.suffix in {".py", ".pyc"} or "__pycache__" in path.parts:
            continue
        package = ".".join(path.parent.relative_to(PACKAGE.parent).parts)
        if not any(fnmatch.fnmatch(path.name, glob) for glob in globs.get(package, [])):
            missing.append(str(path.relative_to(PACKAGE.parent)))
    assert missing == [], f"not in pyproject's package-data, so not in the wheel: {missing}"
