"""The agent snapshot: the ``agents`` table as numpy arrays, the shape the router scores.

Built once per table version (the store caches it), so a batch of requests costs no store reads and no per-agent
Python. Agents are sorted by name, which makes tie-breaks deterministic (the alphabetically first agent wins a tie).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.settings import Settings

from ._costs import fixed_cost

AGENT_TYPES = ("llm", "tool", "api", "human", "ensemble")
#: A capability word is matched as this phrase (chosen on CLINC150 train among a few: a capability reads like a
#: kind of request, not a bare word).
CAPABILITY_TEMPLATE = "a request about {}"


@dataclass(frozen=True)
class AgentSnapshot:
    """Columns of the A registered agents (active or not), float64 unless noted.

    capability_embedding : float32 (A, D), L2-normalized (a zero row for an agent with no capabilities).
    has_capability : bool (K, A) over ``capability_vocab`` (K distinct capability names across agents).
    capability_vectors : float32 (K, D), the embedding of each capability name alone (to rank which capabilities a
        request needs); zero rows when the snapshot was built without an embedder.
    match_vectors, match_starts : float32 (M, D) unit rows, grouped by agent from row ``match_starts[a]``: each
        agent's capabilities alone, its description and its example requests. A request's similarity to an agent is
        the best cosine over its rows (:meth:`similarity`); without an embedder, the stored capability embedding.
    match_labels : (M,) what each row is (a capability name, "description" or "example: ..."), for explanations.
    match_threshold : the similarity below which a row is no evidence of a match (the embedder's calibration).
    output_tokens, latency_ms, quality : with the Settings defaults filled in for NULLs; output_tokens is the expected
        output (avg_output_tokens, at most max_output_tokens).
    context_window : tokens an agent reads (input + output), NaN for unlimited; windowed : bool (A,) where set.
    cost_per_token, fixed_cost : the request-dependent price per input token and the rest of each agent's
        estimated cost (:mod:`tinydancer_duck.registry._costs`), computed once per snapshot.
    """

    names: pa.Array
    index: dict[str, int]
    active: np.ndarray
    capability_vocab: pa.Array
    has_capability: np.ndarray
    capability_vectors: np.ndarray
    capability_embedding: np.ndarray
    match_vectors: np.ndarray
    match_starts: np.ndarray
    match_labels: tuple[str, ...]
    match_threshold: float
    cost_per_1k_tokens: np.ndarray
    cost_per_call: np.ndarray
    cost_per_second: np.ndarray
    output_tokens: np.ndarray
    context_window: np.ndarray
    windowed: np.ndarray
    latency_ms: np.ndarray
    quality: np.ndarray
    cost_per_token: np.ndarray
    fixed_cost: np.ndarray
    table: pa.Table

    @property
    def size(self) -> int:
        return len(self.names)

    def name_list(self) -> list[str]:
        return list(self.index)  # in snapshot order, without an Arrow conversion

    def similarity(self, x: np.ndarray) -> np.ndarray:
        """float32 (n, A): each agent's best cosine to each request (rows of x: unit float32 (n, D))."""
        return self.similarity_and_rows(x)[0]

    def similarity_and_rows(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(float32 (n, A) best cosine, int32 (n, A) the match row behind it: an index into ``match_labels``, for
        an explanation's 'what matched'), from one product of the requests with every match vector."""
        if not self.size:
            return np.zeros((len(x), 0), np.float32), np.zeros((len(x), 0), np.int32)
        scores = x @ self.match_vectors.T
        starts = self.match_starts.astype(np.int32)
        if len(starts) == len(self.match_vectors):  # one vector per agent: nothing to reduce
            return scores, np.broadcast_to(starts, scores.shape)
        ends = np.r_[starts[1:], len(self.match_vectors)]
        rows = np.empty((len(x), self.size), np.int32)
        for a in range(self.size):  # A segments, each a vectorized argmax over all requests
            rows[:, a] = starts[a] + scores[:, starts[a]:ends[a]].argmax(axis=1)
        return np.maximum.reduceat(scores, starts, axis=1), rows


def build_snapshot(table: pa.Table, settings: Settings, dim: int,
                   embed: Callable[[list[str]], np.ndarray] | None = None,
                   match_threshold: float = 0.0) -> AgentSnapshot:
    """Turn the ``agents`` Arrow table into an :class:`AgentSnapshot` (sorted by name).

    embed : the embedder's ``embed``, used once per snapshot for the capability names, descriptions and examples.
    match_threshold : the calibrated similarity a match must reach (0: any positive cosine counts).
    """
    if table.num_rows:
        table = table.take(pc.sort_indices(table["name"]))
    table = table.combine_chunks()
    names = table["name"].chunk(0) if table.num_rows else pa.array([], pa.string())
    capabilities = table["capabilities"].chunk(0) if table.num_rows else pa.array([], pa.list_(pa.string()))
    vocab, has = _capability_matrix(capabilities)

    column = (lambda name, default=None: _numbers(table, name, default))
    embedding = np.ascontiguousarray(table["capability_embedding"].combine_chunks().flatten().to_numpy(
        zero_copy_only=False), dtype=np.float32).reshape(table.num_rows, dim)
    capability_vectors = embed([CAPABILITY_TEMPLATE.format(capability_text([c])) for c in vocab.to_pylist()]) \
        if embed and len(vocab) else np.zeros((len(vocab), dim), np.float32)
    if embed is None:
        vectors, starts, labels = embedding, np.arange(table.num_rows), ("capabilities",) * table.num_rows
    else:
        vectors, starts, labels = _match_vectors(table, vocab, has, capability_vectors, dim, embed)
    prices = {name: column(name, 0.0) for name in ("cost_per_1k_tokens", "cost_per_call", "cost_per_second")}
    output_tokens = np.fmin(column("avg_output_tokens", settings.default_output_tokens), column("max_output_tokens"))
    window = column("context_window")
    latency_ms = column("avg_latency_ms", settings.default_latency_ms)
    return AgentSnapshot(
        names=names,
        index={name: i for i, name in enumerate(names.to_pylist())},
        active=np.asarray(table["active"].to_numpy(zero_copy_only=False), dtype=bool) if table.num_rows
        else np.zeros(0, bool),
        capability_vocab=vocab,
        has_capability=has,
        capability_vectors=capability_vectors,
        capability_embedding=embedding,
        match_vectors=vectors,
        match_starts=starts,
        match_labels=labels,
        match_threshold=float(match_threshold),
        **prices,
        output_tokens=output_tokens,
        context_window=window,
        windowed=~np.isnan(window),
        latency_ms=latency_ms,
        quality=column("quality_score", settings.default_quality),
        cost_per_token=prices["cost_per_1k_tokens"] / 1000.0,
        fixed_cost=fixed_cost(prices["cost_per_1k_tokens"], output_tokens, prices["cost_per_call"],
                              prices["cost_per_second"], latency_ms),
        table=table,
    )


def _numbers(table: pa.Table, name: str, default: float | None = None) -> np.ndarray:
    """float64 (A,) of a column, NULL as ``default`` (NaN when None); a column a store from before it was added
    lacks reads as all NULL."""
    if name not in table.column_names or not table.num_rows:
        values = np.full(table.num_rows, np.nan)
    else:
        values = np.asarray(table[name].to_numpy(), dtype=np.float64)
    return values if default is None else np.where(np.isnan(values), default, values)


def _match_vectors(table: pa.Table, vocab: pa.Array, has: np.ndarray, capability_vectors: np.ndarray, dim: int,
                   embed: Callable[[list[str]], np.ndarray]) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(vectors (M, D), starts (A,), labels (M,)): per agent, its capabilities' vectors (shared names embedded
    once), then its description and examples (one embed call for all of them); a zero row for an agent with
    nothing to match on."""
    n = table.num_rows
    descriptions = table["description"].to_pylist() if "description" in table.column_names else [None] * n
    examples = table["examples"].to_pylist() if "examples" in table.column_names else [None] * n
    texts = [t for a in range(n) for t in ([descriptions[a]] if descriptions[a] else []) + (examples[a] or [])]
    extra = embed(texts) if texts else np.zeros((0, dim), np.float32)
    names = vocab.to_pylist()
    parts, labels, starts, used = [], [], [], 0
    for a in range(n):
        starts.append(len(labels))
        own = np.flatnonzero(has[:, a]) if len(has) else np.zeros(0, np.int64)
        mine = [f"description: {descriptions[a]}"] if descriptions[a] else []
        mine += [f"example: {e}" for e in examples[a] or []]
        block = np.concatenate([capability_vectors[own], extra[used:used + len(mine)]])
        used += len(mine)
        if not len(block):
            block, mine = np.zeros((1, dim), np.float32), ["(nothing to match on)"]
        parts.append(block)
        labels += [names[k] for k in own] + mine
    vectors = np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros((0, dim)), dtype=np.float32)
    return vectors, np.asarray(starts, np.int64), tuple(labels)


def capability_text(capabilities: Sequence[str]) -> str:
    """The text embedded for capabilities: 'fast-response' reads as 'fast response'."""
    return ", ".join(c.replace("-", " ").replace("_", " ") for c in capabilities)


def _capability_matrix(capabilities: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Distinct capability names (K) and the bool (K, A) matrix of which agent has which."""
    n_agents = len(capabilities)
    flat = pc.list_flatten(capabilities)
    if len(flat) == 0:
        return pa.array([], pa.string()), np.zeros((0, n_agents), bool)
    owners = pc.list_parent_indices(capabilities).to_numpy()
    vocab = pc.unique(flat)
    rows = pc.index_in(flat, value_set=vocab).to_numpy()
    has = np.zeros((len(vocab), n_agents), bool)
    has[rows, owners] = True
    return vocab, has
