"""Step 1 of the router: which agents may serve each request, and the first constraint that rules each other out
(:data:`CONSTRAINTS`, in that order). Masks only; scoring is the router's."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.registry import AgentSnapshot

from ._options import OptionColumns

if TYPE_CHECKING:
    from ._router import Signals

#: Why an agent is not a candidate, in the order constraints are checked (code = position + 1).
CONSTRAINTS = ("inactive", "circuit_open", "excluded_agents", "required_capabilities", "context_window",
               "max_latency_ms", "min_quality", "max_cost", "agent_budget", "budget_remaining", "not_in_log")


def removal_codes(options: OptionColumns, snapshot: AgentSnapshot, cost: np.ndarray,
                  signals: Signals | None = None, tokens_in: np.ndarray | None = None) -> np.ndarray:
    """uint8 (n, A): 0 for a candidate, else 1 + the index in CONSTRAINTS of the first constraint it fails."""
    n, n_agents = cost.shape
    codes = np.zeros((n, n_agents), np.uint8)
    fails = _failures(options, snapshot, cost, signals, n, tokens_in)
    for position in range(len(CONSTRAINTS) - 1, -1, -1):  # write the last first, so the first failure wins
        mask = fails.get(CONSTRAINTS[position])
        if mask is not None:
            np.copyto(codes, np.uint8(position + 1), where=mask)
    return codes


def _failures(options: OptionColumns, snapshot: AgentSnapshot, cost: np.ndarray, signals: Signals | None,
              n: int, tokens_in: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Constraint name -> where it fails, as a mask broadcastable to (n, A); a constraint that cannot fail (not
    given, NULL for every row, no agent inactive) is left out, which spares a one-request call most of the work."""
    fails = {}
    if not snapshot.active.all():
        fails["inactive"] = ~snapshot.active
    if signals is not None and signals.circuit_open is not None:
        fails["circuit_open"] = signals.circuit_open
    if signals is not None and signals.over_budget is not None:
        fails["agent_budget"] = signals.over_budget
    if signals is not None and signals.unobserved is not None:
        fails["not_in_log"] = signals.unobserved
    if options.excluded_agents is not None:
        fails["excluded_agents"] = _listed(options.excluded_agents, snapshot.names, n)
    if options.required_capabilities is not None:
        fails["required_capabilities"] = ~_covers(options.required_capabilities, snapshot, n)
    if tokens_in is not None and snapshot.windowed.any():  # NaN window: unlimited, never fails
        fails["context_window"] = np.add.outer(tokens_in, snapshot.output_tokens) > snapshot.context_window
    limits = (("max_latency_ms", np.greater, snapshot.latency_ms, options.max_latency_ms),
              ("min_quality", np.less, snapshot.quality, options.min_quality),
              ("max_cost", np.greater, cost, options.max_cost),
              ("budget_remaining", np.greater, cost, options.budget_remaining))
    for name, fails_when, value, limit in limits:
        if not np.isnan(limit).all():  # a NaN limit (not given) never fails
            fails[name] = fails_when(value, limit[:, None])
    return fails


def _listed(lists: pa.ListArray, names: pa.Array, n: int) -> np.ndarray:
    """bool (n, A): agent a's name is in row i's list."""
    out = np.zeros((n, len(names)), bool)
    if len(names) == 0:
        return out
    parents = pc.list_parent_indices(lists).to_numpy()
    position = pc.index_in(pc.list_flatten(lists), value_set=names)
    found = position.is_valid().to_numpy(zero_copy_only=False)
    out[parents[found], position.to_numpy(zero_copy_only=False)[found].astype(np.int64)] = True
    return out


def _covers(required: pa.ListArray, snapshot: AgentSnapshot, n: int) -> np.ndarray:
    """bool (n, A): agent a holds every capability row i requires (a capability nobody has excludes everyone)."""
    needed = required_matrix(required, snapshot, n)
    held = np.zeros((needed.shape[1], snapshot.size), np.float32)
    held[:-1] = snapshot.has_capability
    return (needed @ held) >= needed.sum(axis=1, keepdims=True)


def required_matrix(required: pa.ListArray, snapshot: AgentSnapshot, n: int) -> np.ndarray:
    """float32 (n, K + 1): 1 where row i requires capability k of the vocabulary; column K: one no agent holds."""
    flat = pc.list_flatten(required)
    parents = pc.list_parent_indices(required).to_numpy()
    present = flat.is_valid().to_numpy(zero_copy_only=False)
    n_known = len(snapshot.capability_vocab)
    position = pc.index_in(flat, value_set=snapshot.capability_vocab).fill_null(n_known)
    needed = np.zeros((n, n_known + 1), np.float32)
    needed[parents[present], position.to_numpy(zero_copy_only=False)[present]] = 1.0
    return needed
