"""Multi-agent routing: several agents per request (DESIGN §5), vectorized over requests, looping over steps only.

- ``pipeline``: cover the capabilities the request needs, most relevant first. Needed = required_capabilities when
  given, else the ``num_agents`` registered capabilities nearest the request (cosine to the capability's name, > 0).
  Each step takes the most relevant uncovered capability and the best-scoring candidate holding it; that agent
  covers every needed capability it holds. Cost and latency add up; a step's weight is its share of the covered
  capabilities.
- ``parallel``: the ``num_agents`` best-scoring distinct candidates, run at once: cost adds up, latency is the max,
  each weight 1/k.
- ``ensemble``: the same agents, weighted by a softmax of their scores (temperature as for confidence), summing to 1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.options import NUM_AGENTS, STRATEGY
from tinydancer_duck.registry import AgentSnapshot
from tinydancer_duck.settings import Settings

from ._candidates import required_matrix
from ._explain import format_once
from ._options import OptionColumns
from ._router import NO_SIGNALS, Requests, Scored, Signals, score_batch

STEP_TYPE = pa.struct([
    ("step", pa.int32()), ("agent_name", pa.string()), ("capabilities", pa.list_(pa.string())),
    ("weight", pa.float64()), ("estimated_cost", pa.float64()), ("estimated_latency_ms", pa.float64()),
])
PLAN_TYPE = pa.struct([
    ("strategy", pa.string()), ("steps", pa.list_(STEP_TYPE)), ("total_cost", pa.float64()),
    ("total_latency_ms", pa.float64()), ("reasoning", pa.string()),
])


@dataclass(frozen=True)
class Plans:
    """k step slots per request: agent int (n, k) with -1 for an empty slot, weight (n, k), covers bool (n, k, K)."""

    strategy: str
    agent: np.ndarray
    weight: np.ndarray
    covers: np.ndarray
    cost: np.ndarray
    latency: np.ndarray
    reasoning: pa.Array

    def to_arrow(self, snapshot: AgentSnapshot) -> pa.StructArray:
        """STRUCT(strategy, steps LIST(STRUCT(step, agent_name, capabilities, weight, cost, latency)), totals)."""
        n = self.agent.shape[0]
        used = self.agent >= 0
        rows, slots = np.nonzero(used)
        agents = self.agent[rows, slots]
        step_cost, step_latency = self.cost[rows, slots], self.latency[rows, slots]
        flat_covers = self.covers[rows, slots]
        _, cap_cols = np.nonzero(flat_covers)
        capabilities = pa.ListArray.from_arrays(
            pa.array(np.concatenate([[0], np.cumsum(flat_covers.sum(axis=1))]).astype(np.int32)),
            snapshot.capability_vocab.take(pa.array(cap_cols, pa.int64())) if len(cap_cols)
            else pa.array([], pa.string()))
        steps = pa.StructArray.from_arrays([
            pa.array(np.cumsum(used, axis=1)[rows, slots], pa.int32()),
            snapshot.names.take(pa.array(agents, pa.int64())) if len(agents) else pa.array([], pa.string()),
            capabilities,
            pa.array(self.weight[rows, slots]),
            pa.array(step_cost),
            pa.array(step_latency),
        ], fields=list(STEP_TYPE))
        offsets = np.concatenate([[0], np.cumsum(used.sum(axis=1))]).astype(np.int32)
        total_cost = np.where(used, self.cost, 0.0).sum(axis=1)
        step_latencies = np.where(used, self.latency, 0.0)
        total_latency = step_latencies.sum(axis=1) if self.strategy == "pipeline" else step_latencies.max(axis=1)
        empty = ~used.any(axis=1)
        return pa.StructArray.from_arrays([
            pa.array([self.strategy] * n, pa.string()),
            pa.ListArray.from_arrays(pa.array(offsets), steps),
            pa.array(total_cost, mask=empty),
            pa.array(total_latency, mask=empty),
            self.reasoning,
        ], fields=list(PLAN_TYPE))


def check_strategy(strategy: object, num_agents: object) -> tuple[str, int]:
    """Validate the two multi-agent arguments once per call (NULL: the default)."""
    return STRATEGY.value(strategy), NUM_AGENTS.value(num_agents)


def route_multi(requests: Requests, options: OptionColumns, snapshot: AgentSnapshot, settings: Settings, *,
                strategy: str, num_agents: int, signals: Signals = NO_SIGNALS) -> Plans:
    """Plan up to ``num_agents`` agents per request with one strategy (validated by :func:`check_strategy`)."""
    options.refuse_exploring("a multi-agent plan")
    if strategy == "pipeline":
        # required capabilities say what the pipeline must cover, not what each of its agents must hold
        scored = score_batch(requests, replace(options, required_capabilities=None), snapshot, settings, signals)
        return _pipeline(requests, options, snapshot, scored, num_agents)
    scored = score_batch(requests, options, snapshot, settings, signals)
    return _top_k(snapshot, scored, strategy, num_agents, settings)


def _top_k(snapshot: AgentSnapshot, scored: Scored, strategy: str, k: int, settings: Settings) -> Plans:
    n, n_agents = scored.score.shape
    k_eff = min(k, n_agents)
    order = np.argsort(-scored.score, axis=1, kind="stable")[:, :k_eff] if n_agents else np.zeros((n, 0), int)
    rows = np.arange(n)[:, None]
    usable = scored.candidate[rows, order]
    agent = np.where(usable, order, -1)
    chosen_score = np.where(usable, scored.score[rows, order], -np.inf)
    if strategy == "parallel":
        weight = usable / np.maximum(usable.sum(axis=1, keepdims=True), 1)
    else:
        top = np.max(chosen_score, axis=1, keepdims=True, initial=-np.inf)
        with np.errstate(invalid="ignore"):
            raw = np.where(usable, np.exp((chosen_score - top) / settings.confidence_temperature), 0.0)
        weight = raw / np.maximum(raw.sum(axis=1, keepdims=True), 1e-300)
    covers = snapshot.has_capability.T[np.maximum(agent, 0)] & usable[:, :, None]
    key = np.column_stack([usable.sum(axis=1), agent])
    names = snapshot.name_list()

    def describe(row: np.ndarray) -> str:
        picked = [names[a] for a in row[1:] if a >= 0]
        if not picked:
            return "no agent: no candidate for this request"
        how = "run at once, latency = the slowest" if strategy == "parallel" else "weighted by score"
        return f"{strategy} of {len(picked)}: {', '.join(picked)} ({how})"

    return Plans(strategy, agent, weight, covers, *_step_costs(snapshot, scored, agent), format_once(key, describe))


def _pipeline(requests: Requests, options: OptionColumns, snapshot: AgentSnapshot, scored: Scored, k: int) -> Plans:
    n, n_agents = scored.score.shape
    needed, relevance = _needed_capabilities(requests, options, snapshot, k)
    covered = np.zeros_like(needed)
    missing = np.zeros_like(needed)  # needed capabilities no candidate holds
    agent = np.full((n, k), -1)
    has = snapshot.has_capability  # (K, A)
    rows = np.arange(n)
    for step in range(k):
        pending = needed & ~covered & ~missing
        while True:  # skip capabilities nobody can serve, without using up a step
            active = pending.any(axis=1)
            if not active.any():
                break
            target = np.argmax(np.where(pending, relevance, -np.inf), axis=1)
            eligible = scored.candidate & has[target].astype(bool) if n_agents else np.zeros((n, 0), bool)
            stuck = active & ~eligible.any(axis=1)
            if not stuck.any():
                break
            missing[rows[stuck], target[stuck]] = True
            pending[rows[stuck], target[stuck]] = False
        if not active.any():
            break
        pick = np.argmax(np.where(eligible, scored.score, -np.inf), axis=1)
        agent[active, step] = pick[active]
        covered[active] |= needed[active] & has[:, pick[active]].T
    covers = np.zeros((n, k, needed.shape[1]), bool)
    seen = np.zeros_like(needed)
    for step in range(k):
        used = agent[:, step] >= 0
        if not used.any():  # e.g. no agents at all: `has` has no column to index
            continue
        fresh = needed & has[:, np.maximum(agent[:, step], 0)].T & ~seen & used[:, None]
        covers[:, step] = fresh
        seen |= fresh
    share = covers.sum(axis=2) / np.maximum(covers.sum(axis=(1, 2))[:, None], 1)
    vocab = snapshot.capability_vocab.to_pylist()
    names = snapshot.name_list()
    key = np.column_stack([requests.valid, agent, missing])

    def describe(row: np.ndarray) -> str:
        if not row[0]:
            return "no agent: the request is NULL or empty"
        picked = [names[a] for a in row[1:k + 1] if a >= 0]
        lost = [vocab[c] for c in np.flatnonzero(row[k + 1:])]
        text = f"pipeline of {len(picked)}: {' -> '.join(picked)}" if picked else "no agent: nothing to cover"
        return text + (f"; no candidate holds {', '.join(lost)}" if lost else "")

    return Plans("pipeline", agent, share, covers, *_step_costs(snapshot, scored, agent),
                 format_once(key, describe))


def _needed_capabilities(requests: Requests, options: OptionColumns, snapshot: AgentSnapshot,
                         k: int) -> tuple[np.ndarray, np.ndarray]:
    """bool (n, K) needed capabilities and float (n, K) relevance (higher first) over the capability vocabulary.

    Required capabilities keep the order the caller listed them in; predicted ones go by cosine to the request.
    """
    n, n_caps = len(requests), len(snapshot.capability_vocab)
    relevance = requests.embeddings @ snapshot.capability_vectors.T if n_caps else np.zeros((n, 0), np.float32)
    if options.required_capabilities is not None:
        required = required_matrix(options.required_capabilities, snapshot, n)
        given = required.sum(axis=1) > 0
        needed = np.zeros((n, n_caps), bool)
        needed[given] = required[given, :n_caps] > 0
        relevance = np.where(given[:, None], -_list_positions(options.required_capabilities, snapshot, n), relevance)
    else:
        given = np.zeros(n, bool)
        needed = np.zeros((n, n_caps), bool)
    top = min(k, n_caps)
    if top and (~given).any():
        nearest = np.argsort(-relevance, axis=1, kind="stable")[:, :top]
        rows = np.arange(n)[:, None]
        predicted = np.zeros((n, n_caps), bool)
        predicted[rows, nearest] = relevance[rows, nearest] > 0
        needed[~given] = predicted[~given]
    needed &= requests.valid[:, None]
    return needed, relevance


def _list_positions(lists: pa.ListArray, snapshot: AgentSnapshot, n: int) -> np.ndarray:
    """float (n, K): the position of each vocabulary capability in row i's list (inf where absent)."""
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists).to_numpy()
    starts = lists.offsets.to_numpy()  # absolute into the values, also for a sliced array
    position = np.arange(len(flat)) + (starts[0] if len(starts) else 0) - starts[parents]
    column = pc.index_in(flat, value_set=snapshot.capability_vocab).to_numpy(zero_copy_only=False)
    known = ~np.isnan(np.asarray(column, dtype=float))
    out = np.full((n, len(snapshot.capability_vocab)), np.inf)
    rows, cols = parents[known], np.asarray(column[known], dtype=np.int64)
    np.minimum.at(out, (rows, cols), position[known].astype(float))
    return out


def _step_costs(snapshot: AgentSnapshot, scored: Scored, agent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 (n, k) estimated cost and latency of each step's agent."""
    rows = np.arange(agent.shape[0])[:, None]
    safe = np.maximum(agent, 0)
    cost = scored.cost[rows, safe] if snapshot.size else np.zeros(agent.shape)
    latency = snapshot.latency_ms[safe] if snapshot.size else np.zeros(agent.shape)
    return cost, latency
