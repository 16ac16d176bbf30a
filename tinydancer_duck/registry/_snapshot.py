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


@dataclass(frozen=True)
class AgentSnapshot:
    """Columns of the A registered agents (active or not), float64 unless noted.

    capability_embedding : float32 (A, D), L2-normalized (a zero row for an agent with no capabilities).
    has_capability : bool (K, A) over ``capability_vocab`` (K distinct capability names across agents).
    capability_vectors : float32 (K, D), the embedding of each capability name alone (to rank which capabilities a
        request needs); zero rows when the snapshot was built without an embedder.
    output_tokens, latency_ms, quality : with the Settings defaults filled in for NULLs.
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
    cost_per_1k_tokens: np.ndarray
    cost_per_call: np.ndarray
    cost_per_second: np.ndarray
    output_tokens: np.ndarray
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


def build_snapshot(table: pa.Table, settings: Settings, dim: int,
                   embed: Callable[[list[str]], np.ndarray] | None = None) -> AgentSnapshot:
    """Turn the ``agents`` Arrow table into an :class:`AgentSnapshot` (sorted by name).

    embed : the embedder's ``embed``, used once per snapshot for the capability names.
    """
    if table.num_rows:
        table = table.take(pc.sort_indices(table["name"]))
    table = table.combine_chunks()
    names = table["name"].chunk(0) if table.num_rows else pa.array([], pa.string())
    capabilities = table["capabilities"].chunk(0) if table.num_rows else pa.array([], pa.list_(pa.string()))
    vocab, has = _capability_matrix(capabilities)

    def column(name: str, default: float | None = None) -> np.ndarray:
        values = table[name].to_numpy() if table.num_rows else np.empty(0)
        values = np.asarray(values, dtype=np.float64)
        if default is not None:
            values = np.where(np.isnan(values), default, values)
        return values

    if table.num_rows:
        embedding = table["capability_embedding"].chunk(0).flatten().to_numpy(zero_copy_only=False)
        embedding = np.ascontiguousarray(embedding, dtype=np.float32).reshape(table.num_rows, dim)
    else:
        embedding = np.zeros((0, dim), np.float32)
    prices = {name: column(name, 0.0) for name in ("cost_per_1k_tokens", "cost_per_call", "cost_per_second")}
    output_tokens = column("avg_output_tokens", settings.default_output_tokens)
    latency_ms = column("avg_latency_ms", settings.default_latency_ms)
    return AgentSnapshot(
        names=names,
        index={name: i for i, name in enumerate(names.to_pylist())},
        active=np.asarray(table["active"].to_numpy(zero_copy_only=False), dtype=bool) if table.num_rows
        else np.zeros(0, bool),
        capability_vocab=vocab,
        has_capability=has,
        capability_vectors=embed([capability_text([c]) for c in vocab.to_pylist()]) if embed and len(vocab)
        else np.zeros((len(vocab), dim), np.float32),
        capability_embedding=embedding,
        **prices,
        output_tokens=output_tokens,
        latency_ms=latency_ms,
        quality=column("quality_score", settings.default_quality),
        cost_per_token=prices["cost_per_1k_tokens"] / 1000.0,
        fixed_cost=fixed_cost(prices["cost_per_1k_tokens"], output_tokens, prices["cost_per_call"],
                              prices["cost_per_second"], latency_ms),
        table=table,
    )


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
