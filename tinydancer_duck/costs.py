"""The additive cost estimate of serving each request with each agent (DESIGN §5 step 2).

estimated cost = cost_per_1k_tokens * (tokens_in + tokens_out) / 1000 + cost_per_call + cost_per_second * latency_s

All three price components add up (the seed used only the first non-NULL one); a component left NULL at
registration costs nothing, so an agent with no price at all is free.
"""

from __future__ import annotations

import numpy as np

from .agents import AgentSnapshot
from .settings import Settings


def tokens_from_bytes(byte_lengths: np.ndarray, settings: Settings) -> np.ndarray:
    """tokens_in = ceil(bytes / bytes_per_token), float64 (n,)."""
    return np.ceil(np.asarray(byte_lengths, dtype=np.float64) / settings.bytes_per_token)


def fixed_cost(snapshot: AgentSnapshot) -> np.ndarray:
    """The part of each agent's cost that does not depend on the request, float64 (A,)."""
    return (snapshot.cost_per_1k_tokens * snapshot.output_tokens / 1000.0
            + snapshot.cost_per_call
            + snapshot.cost_per_second * snapshot.latency_ms / 1000.0)


def estimated_cost(tokens_in: np.ndarray, snapshot: AgentSnapshot) -> np.ndarray:
    """float64 (n, A): dollars to serve request i with agent a."""
    per_token = snapshot.cost_per_1k_tokens / 1000.0
    return np.add(np.multiply.outer(tokens_in, per_token), fixed_cost(snapshot))
