"""The additive cost estimate of serving each request with each agent (DESIGN §5 step 2).

estimated cost = cost_per_1k_tokens * (tokens_in + tokens_out) / 1000 + cost_per_call + cost_per_second * latency_s

All three price components add up (the seed used only the first non-NULL one); a component left NULL at
registration costs nothing, so an agent with no price at all is free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinydancer_duck.settings import Settings

if TYPE_CHECKING:
    from ._snapshot import AgentSnapshot


def tokens_from_bytes(byte_lengths: np.ndarray, settings: Settings, counted: np.ndarray | None = None,
                      limit: int = 0, read_bytes: int | None = None) -> np.ndarray:
    """tokens_in, float64 (n,): the tokenizer's count where it counted the whole text (``counted`` below ``limit``
    and the text no longer than the ``read_bytes`` the tokenizer reads; about 5% from GPT-4's count on the shared
    datasets), else ceil(bytes / bytes_per_token) (about 5% on long texts, 20% on short ones:
    benchmarks/eval_token_counts.py). A text cut before its tokens were counted is never counted short."""
    byte_lengths = np.asarray(byte_lengths, dtype=np.float64)
    estimate = np.ceil(byte_lengths / settings.bytes_per_token)
    if counted is None:
        return estimate
    whole = np.asarray(counted) < limit
    if read_bytes is not None:
        whole &= byte_lengths <= read_bytes
    return np.where(whole, counted, np.maximum(estimate, counted)).astype(np.float64)


def fixed_cost(cost_per_1k_tokens: np.ndarray, output_tokens: np.ndarray, cost_per_call: np.ndarray,
               cost_per_second: np.ndarray, latency_ms: np.ndarray) -> np.ndarray:
    """The part of each agent's cost that does not depend on the request, float64 (A,); the agent snapshot
    computes it once, so routing a request adds only its tokens_in term."""
    return cost_per_1k_tokens * output_tokens / 1000.0 + cost_per_call + cost_per_second * latency_ms / 1000.0


def estimated_cost(tokens_in: np.ndarray, snapshot: AgentSnapshot) -> np.ndarray:
    """float64 (n, A): dollars to serve request i with agent a."""
    return np.add(np.multiply.outer(tokens_in, snapshot.cost_per_token), snapshot.fixed_cost)
