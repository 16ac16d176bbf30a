"""Per-agent columns of a wide log that cannot be paired: an agent's outcome column without its cost column, or a
cost column without its outcome. The library imports only the agents that have both; `tinydancer agents import`
names the others on stderr, so a typo in one column never silently drops an agent."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

#: Columns a wide log may hold beside its agents' that are numbers in [0, 1] without being an agent's outcome.
NOT_AGENTS = ("success", "propensity", "tokens_in", "tokens_out", "latency_ms")


def unpaired_columns(log: Any, columns: Any = None) -> list[str]:
    """One sentence per column that looks like an agent's but has no partner: ``'gpt-4' has no cost column
    'gpt-4|total_cost'`` (a column of numbers in [0, 1] that is no field of the log) or ``'gpt-4|total_cost' has
    no outcome column 'gpt-4'``."""
    from tinydancer_duck._logs import PATTERN_DEFAULTS, open_log, parse_columns

    spec = open_log(log, columns=columns)
    patterns = {**PATTERN_DEFAULTS, **{k: v for k, v in parse_columns(columns).items() if k in PATTERN_DEFAULTS}}
    taken = {*spec.fields.values(), *spec.outcome.values(), *spec.outcome_cost.values(), *NOT_AGENTS}
    prefix, _, suffix = patterns["agent_cost"].partition("{agent}")
    out = []
    for column in spec.dataset.schema.names:
        if column in taken:
            continue
        if column.startswith(prefix) and column.endswith(suffix) and len(column) > len(prefix) + len(suffix):
            agent = column[len(prefix): len(column) - len(suffix)]
            out.append(f"{column!r} has no outcome column {patterns['agent_quality'].format(agent=agent)!r}")
        elif spec.wide and _looks_like_outcomes(spec.dataset, column):
            agent = _agent_of(column, patterns["agent_quality"])
            if agent is not None:
                out.append(f"{column!r} has no cost column {patterns['agent_cost'].format(agent=agent)!r}")
    return out


def _agent_of(column: str, pattern: str) -> str | None:
    prefix, _, suffix = pattern.partition("{agent}")
    if column.startswith(prefix) and column.endswith(suffix) and len(column) > len(prefix) + len(suffix):
        return column[len(prefix): len(column) - len(suffix)]
    return None


def _looks_like_outcomes(dataset: Any, column: str) -> bool:
    """A numeric column whose values all lie in [0, 1] (an outcome, like the agents' own columns)."""
    kind = dataset.schema.field(column).type
    if not (pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind)):
        return False
    values = dataset.to_table(columns=[column])[column]
    if pa.types.is_boolean(kind):
        return True
    bounds = pc.min_max(values)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    return low is not None and 0 <= low and high <= 1
