"""The SQL surface as text, generated from the declarations: each area's macros (``tinydancer_duck/sql/NN_area.sql``)
and the reference of every function (``docs/sql.md``).

The text is committed, so a reader can open sql/*.sql; ``python -m tinydancer_duck.udfs`` writes it again and
tests/test_surfaces.py fails when a committed file differs from what the declarations give.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from typing import Any

from tinydancer_duck.options import Param, Signature

from ._bind import Binding, Call, quoted

WIDTH = 116
GENERATED = ("-- Generated from the declarations in tinydancer_duck/options by `python -m tinydancer_duck.udfs`;\n"
             "-- edit those, not this file (tests/test_surfaces.py checks it).\n")


def sql_literal(value: Any) -> str:
    """A parameter's default as a SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(sql_literal(v) for v in value) + "]"
    raise TypeError(f"no SQL literal for {value!r}")


def signature_text(signature: Signature, *, table: bool = False) -> str:
    """``name(a, b := 1, ...)`` as the macro declares it (the table form's own defaults where they differ)."""
    defaults = dict(signature.table_defaults) if table else {}
    parts = []
    for param in signature.params:
        if param.required:
            parts.append(quoted(param.name))
        else:
            parts.append(f"{quoted(param.name)} := {sql_literal(defaults.get(param.name, param.default))}")
    return f"{signature.name}({', '.join(parts)})"


def _check_order(signature: Signature) -> None:
    seen_default = False
    for param in signature.params:
        if param.required and seen_default:
            raise ValueError(f"{signature.name}: required parameter {param.name} after one with a default")
        seen_default = seen_default or not param.required


def macro(signature: Signature, call: Call, *, table: bool) -> str:
    """One CREATE MACRO statement (scalar or table form)."""
    _check_order(signature)
    args = ", ".join(arg.expr for arg in call.args(signature))
    body = call.body.format(call=f"{call.udf}({args})")
    head = f"CREATE OR REPLACE MACRO {signature_text(signature, table=table)} AS{' TABLE' if table else ''}"
    return _wrapped(head, "        ") + "\n" + _wrapped("    " + body, "        ") + ";"


def _wrapped(text: str, indent: str) -> str:
    """``text`` broken after commas so no line passes WIDTH."""
    lines, line = [], ""
    for piece in text.split(", "):
        candidate = piece if not line else f"{line}, {piece}"
        if line and len(candidate) > WIDTH:
            lines.append(line + ",")
            line = indent + piece
        else:
            line = candidate
    lines.append(line)
    return "\n".join(lines)


def comment(text: str) -> str:
    return "\n".join(textwrap.wrap(text, WIDTH - 3, initial_indent="-- ", subsequent_indent="-- "))


def area_file(title: str, bindings: Iterable[Binding]) -> str:
    """The text of one area's SQL file."""
    out = [GENERATED + comment(title)]
    for binding in bindings:
        statements = [comment(binding.signature.doc)]
        if binding.scalar is not None:
            statements.append(macro(binding.signature, binding.scalar, table=False))
        if binding.table is not None:
            statements.append(macro(binding.signature, binding.table, table=True))
        out.append("\n".join(statements))
    return "\n\n".join(out) + "\n"


# -- the reference ----------------------------------------------------------------------------------------------
_PYTHON_TYPES = {"VARCHAR": "str", "DOUBLE": "float", "BIGINT": "int", "BOOLEAN": "bool", "VARCHAR[]": "list[str]",
                 "DOUBLE[]": "list[float]", "FLOAT[]": "list[float]", "REQUEST": "str or embedding",
                 "JSON": "str or dict", "TIMESTAMP": "datetime", "MOMENT": "datetime or 'now'", "TABLE": "str"}


def param_row(param: Param) -> str:
    default = "required" if param.required else f"`{sql_literal(param.default)}`"
    where = "per row" if param.per_row else "per call"
    constraint = param.check.describe() or "checked by the function"
    return (f"| `{param.name}` | {param.sql} ({_PYTHON_TYPES.get(param.sql, '')}) | {default} | {constraint} | "
            f"{where} | {param.doc} |")


def reference(bindings: Iterable[Binding]) -> str:
    """docs/sql.md: every SQL function, its forms, parameters (type, default, constraint, per row or per call) and
    what it does."""
    out = ["# SQL reference", "",
           ("Generated from the declarations in `tinydancer_duck/options` by `python -m tinydancer_duck.udfs` "
           "(tests/test_surfaces.py checks it is current). Every parameter is named; those with a default may be "
           "left out. A per-row parameter may be a column (one value per request); a per-call one must be the "
           "same for every row of a call. The Python twin takes the same names and defaults."), ""]
    for binding in bindings:
        signature = binding.signature
        forms = [f for f, call in (("scalar", binding.scalar), ("table", binding.table)) if call is not None]
        out += [f"## `{signature.name}`", "", f"`{signature_text(signature)}`", "",
                f"{signature.doc} Forms: {' and '.join(forms)}"
                + (f"; Python: `{signature.twin}`." if signature.twin else "."), ""]
        if signature.params:
            out += ["| parameter | type | default | constraint | varies | what |", "|---|---|---|---|---|---|"]
            out += [param_row(p) for p in signature.params]
            out.append("")
    return "\n".join(out)
