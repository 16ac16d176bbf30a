"""The doctor's warnings: a store that reads fine but will route in ways its owner probably did not intend.

A warning never makes the store unhealthy (the exit code stays 0): each is a decision the owner may have made on
purpose. What is warned about: semantic routes without a fitted threshold (they decide at the embedder's
calibrated default), routes whose target is not a registered agent (they can never decide), usage recorded for
agents that are not registered (their spend counts in global budgets, their stats nowhere), an active outcome
model none or only part of whose agents are registered, and active agents that received none of the recorded
traffic (their capabilities may match nothing that is asked).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.store import expected_schema, newest_row

#: Traffic below this many recorded requests says too little about which agents are never chosen.
MIN_TRAFFIC = 100
#: The active outcome model's kind (tinydancer_duck.learn._outcomes.KIND; not imported: it would load the learn room).
OUTCOME_KIND = "outcome_router"


def store_warnings(facts: dict[str, dict[str, Any]]) -> list[str]:
    """Plain sentences, one per thing to look at, from the store's facts (``inspect_store``)."""
    agents = usable(facts, "agents")
    names = set(agents["name"].to_pylist()) if agents is not None else set()
    warnings: list[str] = []
    routes = usable(facts, "routes")
    if routes is not None and routes.num_rows:
        warnings += _route_warnings(routes, names)
    usage = usable(facts, "usage")
    if usage is not None and usage.num_rows:
        warnings += _usage_warnings(usage, agents, names)
    models = usable(facts, "models")
    if models is not None and models.num_rows:
        warnings += _model_warnings(models, names)
    return warnings


def usable(facts: dict[str, dict[str, Any]], name: str) -> pa.Table | None:
    """The rows of table ``name`` when it read in full with every column this version writes (a table whose schema
    is damaged is reported as a problem, not read by the checks that need its columns), else None."""
    data = facts.get(name, {}).get("data")
    if data is None or not set(expected_schema(name, 1, "").names) <= set(data.column_names):
        return None
    return data




def _route_warnings(routes: pa.Table, agents: set[str]) -> list[str]:
    out = []
    unfitted = [n for n, t in zip(routes["name"].to_pylist(), routes["min_similarity"].to_pylist()) if t is None]
    if unfitted:
        out.append(f"{len(unfitted)} semantic route(s) have no fitted threshold and decide at the embedder's "
                   f"calibrated default: {_listed(unfitted)}; ruvector_fit_routes (or add_route_example and fit) "
                   "sets one from examples")
    orphans = [f"{n!r} -> {t!r}" for n, t in zip(routes["name"].to_pylist(), routes["target_agent"].to_pylist())
               if t and t not in agents]
    if orphans:
        out.append(f"{len(orphans)} route(s) target an agent that is not registered, so they never decide: "
                   f"{_listed(orphans, quote=False)}")
    return out


def _usage_warnings(usage: pa.Table, agents_table: pa.Table | None, agents: set[str]) -> list[str]:
    out = []
    counts = pc.value_counts(usage["agent"]).to_pylist()
    per_agent = {c["values"]: c["counts"] for c in counts if c["values"] is not None}
    unknown = sorted(a for a in per_agent if a not in agents)
    if unknown:
        rows = sum(per_agent[a] for a in unknown)
        out.append(f"{rows} usage row(s) name {len(unknown)} agent(s) that are not registered: {_listed(unknown)}; "
                   "their spend counts in the global budget and their stats nowhere")
    if agents_table is not None and usage.num_rows >= MIN_TRAFFIC:
        active = [n for n, on in zip(agents_table["name"].to_pylist(), agents_table["active"].to_pylist()) if on]
        idle = sorted(a for a in active if a not in per_agent)
        if idle and len(idle) < len(active):
            out.append(f"{len(idle)} active agent(s) received none of the {usage.num_rows} recorded requests: "
                       f"{_listed(idle)}; their capabilities may match nothing your traffic asks "
                       "(tinydancer route \"…\" shows a decision's reasoning)")
    return out


def _model_warnings(models: pa.Table, agents: set[str]) -> list[str]:
    row = newest_row(models, OUTCOME_KIND)
    if row is None:
        return []
    labels = [label for label in (row.get("labels") or []) if label is not None]
    missing = [label for label in labels if label not in agents]
    if not missing:
        return []
    what = "none" if len(missing) == len(labels) else f"{len(labels) - len(missing)} of {len(labels)}"
    return [(f"the active outcome model {row['name']!r} (version {row['version']}) predicts for {len(labels)} "
             f"agents, {what} of them registered (missing: {_listed(missing)}); routing uses it for the registered "
             "ones only (tinydancer agents import LOG registers a log's agents)")]


def _listed(items: list[str], *, quote: bool = True, most: int = 5) -> str:
    shown = [repr(i) if quote else i for i in items[:most]]
    return ", ".join(shown) + (f" and {len(items) - most} more" if len(items) > most else "")
