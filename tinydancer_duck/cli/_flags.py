"""Command-line flags generated from the declared parameters: a command that mirrors a SQL function takes its
options under the same names (``--max-latency-ms`` for ``max_latency_ms``), with the same defaults and docs, and
hands them to the library, which checks them as it checks SQL and Python callers (one error for one bad value).

Only the declarations are imported here (no numpy, no pyarrow): ``tinydancer --help`` stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from tinydancer_duck.options import Param

#: The argparse type of each SQL type a flag may carry.
_TYPES = {"DOUBLE": float, "BIGINT": int, "VARCHAR": str, "JSON": str}


def flag_of(param: Param) -> str:
    return param.flag or "--" + param.name.replace("_", "-")


def _numbers(text: str) -> list[float]:
    """A comma-separated list of numbers (``--budgets 10,50,100``)."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers, e.g. 10,50,100") \
            from None


def _help(param: Param) -> str:
    shown = param.default
    if param.required or shown is None or shown is False or param.sql == "BOOLEAN":
        return param.doc
    if isinstance(shown, (list, tuple)):
        shown = ",".join(map(str, shown))
    return f"{param.doc} (default {shown})".replace("%", "%%")


def add_flags(parser: argparse.ArgumentParser, params: Iterable[Param]) -> None:
    """One flag per parameter: a BOOLEAN is a switch, a list of texts is a repeatable flag (``--exclude A
    --exclude B``), a list of numbers is comma-separated; the default is left to the library (None here). The
    parameters are remembered on the parser, so :func:`check_flags` checks every given value before any work."""
    params = list(params)
    parser.set_defaults(declared_params=(*(parser.get_default("declared_params") or ()), *params))
    for param in params:
        flag, kwargs = flag_of(param), {"dest": param.name, "default": None, "help": _help(param)}
        if param.metavar:
            kwargs["metavar"] = param.metavar
        if param.sql == "BOOLEAN":
            parser.add_argument(flag, action="store_true", dest=param.name, default=False, help=param.doc)
        elif param.sql == "VARCHAR[]":
            parser.add_argument(flag, action="append", **kwargs)
        elif param.sql == "DOUBLE[]":
            parser.add_argument(flag, type=_numbers, **{**kwargs, "required": param.required})
        else:
            parser.add_argument(flag, type=_TYPES.get(param.sql, str), **kwargs)


def check_flags(args: argparse.Namespace) -> None:
    """Check every given flag against its declared constraint (``invalid quality_share=2.0: must be within (0,
    1]``), the same check SQL and Python callers get, before the command does any work."""
    for param in getattr(args, "declared_params", ()):
        value = getattr(args, param.name, None)
        if value is not None and value is not False:
            param.value(value)


def flag_values(args: argparse.Namespace, params: Iterable[Param]) -> dict[str, Any]:
    """The given flags by parameter name; an unused flag is left out, so the library's default applies."""
    return {p.name: getattr(args, p.name) for p in params if getattr(args, p.name) is not None}
