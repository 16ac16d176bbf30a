"""Engine settings: the numbers routing assumes when a request or an agent leaves them out."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """Defaults and tuning knobs, fixed for the life of an Engine.

    bytes_per_token:   tokens_in = ceil(utf-8 bytes / bytes_per_token) for texts the embedder does not read whole
        (the static embedder's ``read_bytes``: longer ones are read at their two ends; shorter ones use its count);
        4.12 bytes per GPT-4 (cl100k) token on the shared datasets.
    input_tokens_for_embeddings: tokens_in assumed when a request arrives as an embedding (its text is unknown).
    default_output_tokens: tokens_out for an agent registered without avg_output_tokens.
    default_latency_ms, default_quality: used when an agent is registered without them.
    confidence_temperature: softmax temperature over candidate scores in [0, 1]; 0.1 turns a 0.1 score lead
        into ~e times the odds.
    balanced_weights: (cost, latency, quality) weights of the balanced objective.
    latency_ewma_alpha: weight of one new observation in the running latency and quality averages.
    breaker_failures, breaker_window_s: an agent's circuit opens at its breaker_failures-th failure within
        breaker_window_s seconds (tinydancer_duck/usage/_health.py).
    breaker_cooldown_s: an open circuit turns half-open (lets probe requests through) after this many seconds.
    breaker_recovery_successes: consecutive successful probes that close a half-open circuit.
    reservation_ttl_s: a route decided under a budget reserves its estimated cost until its usage is recorded,
        or for at most this many seconds (tinydancer_duck/store/_ledger.py).
    lock_timeout_s: a writer waits at most this many seconds for a table's write lock, then fails naming the
        process that holds it (a paused or hung holder would otherwise block every writer forever).
    """

    bytes_per_token: float = 4.12
    input_tokens_for_embeddings: float = 0.0
    default_output_tokens: float = 256.0
    default_latency_ms: float = 1000.0
    default_quality: float = 0.5
    confidence_temperature: float = 0.1
    balanced_weights: tuple[float, float, float] = (0.3, 0.3, 0.4)
    latency_ewma_alpha: float = 0.1
    breaker_failures: int = 5
    breaker_window_s: float = 60.0
    breaker_cooldown_s: float = 30.0
    breaker_recovery_successes: int = 2
    reservation_ttl_s: float = 300.0
    lock_timeout_s: float = 120.0


DEFAULT_SETTINGS = Settings()
