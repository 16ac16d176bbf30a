"""Plain-text tables, the one format every command prints: aligned columns, a header that names each figure with
its unit, numbers right-aligned, a missing value as "–", nothing truncated, and an optional footnote mark on values
that are assumed (a prior) rather than measured."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

MISSING = "–"
ASSUMED = "*"


def money(value: float | None) -> str:
    """Dollars to 4 significant figures, never with an exponent: 0.01448, 12.5, 0.0000538."""
    if value is None:
        return MISSING
    if value == 0:
        return "0"
    return format(Decimal(f"{value:.4g}"), "f")


def number(value: float | None, digits: int = 4) -> str:
    return MISSING if value is None else f"{value:.{digits}g}"


def fixed(value: float | None, digits: int = 3) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def share(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1%}"


def cell(value: Any) -> str:
    """A value as table text: None -> "–", floats to 4 significant figures, booleans yes/no, lists joined."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    return str(value)


def _is_number(text: str) -> bool:
    body = text.rstrip(ASSUMED + "%").lstrip("$")
    try:
        float(body.replace(",", ""))
    except ValueError:
        return text == MISSING
    return True


def render(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, indent: str = "") -> str:
    """The table as text, one line per row under a header and a rule; a column whose values are all numbers (or
    missing) is right-aligned."""
    texts = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in texts)]) for i, h in enumerate(headers)]
    right = [bool(texts) and all(_is_number(r[i]) for r in texts) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right)]
        return (indent + "  ".join(parts)).rstrip()

    return "\n".join([line(list(headers)), indent + "  ".join("-" * w for w in widths),
                      *(line(r) for r in texts)])


def show(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, echo: Callable[[str], None] = print,
         indent: str = "") -> None:
    echo(render(headers, rows, indent=indent))
