"""The agent snapshot: the ``agents`` table as numpy arrays, the shape the router scores.

Built once per table version (the store caches it), so a batch of requests costs no store reads and no per-agent
Python. Agents are sorted by name, which makes tie-breaks deterministic (the alphabetically first agent wins a tie).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.embed import EvidenceCalibration, evidence_calibration
from tinydancer_duck.settings import Settings

from ._costs import fixed_cost

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
    phrase_vectors, phrase_starts, phrase_counts : float32 (Mp, D) unit rows, agent a's from ``phrase_starts[a]``,
        ``phrase_counts[a]`` of them: its capabilities (as "a request about {capability}") and its description;
        without an embedder, the stored capability embedding.
    example_vectors, example_starts, example_counts : float32 (Me, D), the same for each agent's example requests.
    labels : (Mp + Me,) what each phrase row, then each example row, is ("credit cards", "description: ...",
        "example: ..."), for explanations.
    phrase_center, example_center : float32 (A,) what the background requests reach against each agent (median);
        spread : the embedder's unit of similarity (:attr:`~tinydancer_duck.embed.Background.spread`).
    calibration : how similarity becomes the probability of serving.
    general : bool (A,) agents of scope 'general' (an LLM that can answer anything at its quality): they serve
        whatever no specialist is needed for; a specialist (tool, API, human desk) serves only on evidence.
    output_tokens, latency_ms, quality : with the Settings defaults filled in for NULLs; output_tokens is the expected
        output (avg_output_tokens, at most max_output_tokens).
    context_window : tokens an agent reads (input + output), NaN for unlimited; windowed : bool (A,) where set.
    cost_per_token, fixed_cost : the request-dependent price per input token and the rest of each agent's
        estimated cost (:mod:`tinydancer_duck.registry._costs`), computed once per snapshot.
    """

    names: pa.Array
    index: dict[str, int]
    active: np.ndarray
    general: np.ndarray
    capability_vocab: pa.Array
    has_capability: np.ndarray
    capability_vectors: np.ndarray
    capability_embedding: np.ndarray
    phrase_vectors: np.ndarray
    phrase_starts: np.ndarray
    phrase_counts: np.ndarray
    example_vectors: np.ndarray
    example_starts: np.ndarray
    example_counts: np.ndarray
    labels: tuple[str, ...]
    phrase_center: np.ndarray
    example_center: np.ndarray
    spread: float
    calibration: EvidenceCalibration
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

    def similarities(self, x: np.ndarray) -> Similarities:
        """Each agent's similarity to each request (rows of x: unit float32 (n, D)), by kind of evidence: the soft
        maximum over its phrases at the calibration's temperature (between their mean and their best: a request
        near several of an agent's capabilities is more likely its own than one near a single word), and the best
        cosine over its examples (one close example is the evidence); -inf where an agent has none of that kind."""
        temperature = self.calibration.phrase_temperature
        phrase, phrase_row = _by_agent(x, self.phrase_vectors, self.phrase_starts, self.phrase_counts, temperature)
        example, example_row = _by_agent(x, self.example_vectors, self.example_starts, self.example_counts, 0.0)
        return Similarities(phrase, example, phrase_row, example_row + len(self.phrase_vectors))


@dataclass(frozen=True)
class Similarities:
    """float32 (n, A) similarity of each request to each agent's phrases and to its examples (-inf: none), and
    int32 (n, A) the row of ``AgentSnapshot.labels`` behind each (its best phrase, its best example)."""

    phrase: np.ndarray
    example: np.ndarray
    phrase_row: np.ndarray
    example_row: np.ndarray


def _by_agent(x: np.ndarray, vectors: np.ndarray, starts: np.ndarray, counts: np.ndarray, temperature: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """(float32 (n, A) similarity per agent, int32 (n, A) the vector row behind it) from one product of the
    requests with every vector, reduced per agent's block with ``reduceat`` (no loop over agents). temperature > 0:
    the soft maximum T*log(mean(exp(s/T))) of each agent's block; 0: its maximum. An agent with no vectors gets
    -inf."""
    n, n_agents = len(x), len(counts)
    similarity = np.full((n, n_agents), -np.inf, np.float32)
    rows = np.zeros((n, n_agents), np.int32)
    if not len(vectors) or not n_agents:
        return similarity, rows
    scores = x @ vectors.T
    if len(vectors) == n_agents and (counts == 1).all():  # one vector per agent: nothing to reduce
        return scores, np.broadcast_to(starts.astype(np.int32), scores.shape)
    present = np.flatnonzero(counts)
    first = starts[present]
    owner = np.repeat(np.arange(len(present)), counts[present])  # the block of each vector column
    top = np.maximum.reduceat(scores, first, axis=1)
    scores -= top[:, owner]  # in place: 0 at each block's best, below 0 elsewhere
    columns = len(vectors)
    rank = np.where(scores == 0, np.arange(columns, 0, -1, dtype=np.int32), np.int32(0))
    rows[:, present] = columns - np.maximum.reduceat(rank, first, axis=1)  # the first best row of each block
    if temperature > 0:
        scores *= np.float32(1.0 / temperature)
        np.exp(scores, out=scores)
        mean = np.add.reduceat(scores, first, axis=1) / counts[present].astype(np.float32)
        similarity[:, present] = top + np.float32(temperature) * np.log(mean)
    else:
        similarity[:, present] = top
    return similarity, rows


def build_snapshot(table: pa.Table, settings: Settings, dim: int,
                   embed: Callable[[list[str]], np.ndarray] | None = None,
                   calibration: EvidenceCalibration | None = None) -> AgentSnapshot:
    """Turn the ``agents`` Arrow table into an :class:`AgentSnapshot` (sorted by name).

    embed : the embedder's ``embed``, used once per snapshot for the capability names, descriptions and examples.
    calibration : the embedder's evidence calibration (default: the shipped default embedder's, for a snapshot
        built without an embedder); the background centering comes after (:func:`with_background`).
    """
    calibration = calibration or evidence_calibration()
    if table.num_rows:
        table = table.take(pc.sort_indices(table["name"]))
    table = table.combine_chunks()
    n = table.num_rows
    names = table["name"].chunk(0) if n else pa.array([], pa.string())
    capabilities = table["capabilities"].chunk(0) if n else pa.array([], pa.list_(pa.string()))
    vocab, has = _capability_matrix(capabilities)

    column = (lambda name, default=None: _numbers(table, name, default))
    embedding = np.ascontiguousarray(table["capability_embedding"].combine_chunks().flatten().to_numpy(
        zero_copy_only=False), dtype=np.float32).reshape(n, dim)
    capability_vectors = embed([CAPABILITY_TEMPLATE.format(capability_text([c])) for c in vocab.to_pylist()]) \
        if embed and len(vocab) else np.zeros((len(vocab), dim), np.float32)
    if embed is None:
        phrases = (embedding, np.arange(n), np.ones(n, np.int64), ("capabilities",) * n)
        examples = (np.zeros((0, dim), np.float32), np.zeros(n, np.int64), np.zeros(n, np.int64), ())
    else:
        phrases, examples = _match_vectors(table, vocab, has, capability_vectors, dim, embed)
    prices = {name: column(name, 0.0) for name in ("cost_per_1k_tokens", "cost_per_call", "cost_per_second")}
    output_tokens = np.fmin(column("avg_output_tokens", settings.default_output_tokens), column("max_output_tokens"))
    window = column("context_window")
    latency_ms = column("avg_latency_ms", settings.default_latency_ms)
    return AgentSnapshot(
        names=names,
        index={name: i for i, name in enumerate(names.to_pylist())},
        active=np.asarray(table["active"].to_numpy(zero_copy_only=False), dtype=bool) if n else np.zeros(0, bool),
        general=general_scope(table),
        capability_vocab=vocab,
        has_capability=has,
        capability_vectors=capability_vectors,
        capability_embedding=embedding,
        phrase_vectors=phrases[0], phrase_starts=phrases[1], phrase_counts=phrases[2],
        example_vectors=examples[0], example_starts=examples[1], example_counts=examples[2],
        labels=phrases[3] + examples[3],
        phrase_center=np.zeros(n, np.float32),
        example_center=np.zeros(n, np.float32),
        spread=calibration.spread,
        calibration=calibration,
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


def with_background(snapshot: AgentSnapshot, background: np.ndarray, spread: float) -> AgentSnapshot:
    """The snapshot centered on the background requests (unit rows (m, D)): each agent's median similarity to them,
    per kind, is what unrelated text reaches against that agent, so a lead over it is the evidence; ``spread`` is
    the embedder's unit of similarity."""
    if not snapshot.size or not len(background):
        return replace(snapshot, spread=spread)
    found = snapshot.similarities(background)

    def median(values: np.ndarray) -> np.ndarray:
        finite = np.isfinite(values)
        return np.array([np.median(values[finite[:, a], a]) if finite[:, a].any() else 0.0
                         for a in range(values.shape[1])], np.float32)

    return replace(snapshot, phrase_center=median(found.phrase), example_center=median(found.example),
                   spread=spread)


def general_scope(table: pa.Table) -> np.ndarray:
    """bool (A,): each agent's stored scope is 'general', or, when NULL (a store from before scopes), its type is
    an LLM."""
    n = table.num_rows
    kinds = table["agent_type"].to_pylist() if n else []
    scopes = table["scope"].to_pylist() if "scope" in table.column_names else [None] * n
    return np.array([(scope or default_scope(kind)) == "general" for scope, kind in zip(scopes, kinds)], bool)


def default_scope(agent_type: str) -> str:
    """An LLM answers anything at its quality ('general'); a tool, an API, a human desk or an ensemble serves its
    own kind of request ('specialist')."""
    return "general" if agent_type == "llm" else "specialist"


def _numbers(table: pa.Table, name: str, default: float | None = None) -> np.ndarray:
    """float64 (A,) of a column, NULL as ``default`` (NaN when None); a column a store from before it was added
    lacks reads as all NULL."""
    if name not in table.column_names or not table.num_rows:
        values = np.full(table.num_rows, np.nan)
    else:
        values = np.asarray(table[name].to_numpy(), dtype=np.float64)
    return values if default is None else np.where(np.isnan(values), default, values)


Block = tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]


def _match_vectors(table: pa.Table, vocab: pa.Array, has: np.ndarray, capability_vectors: np.ndarray, dim: int,
                   embed: Callable[[list[str]], np.ndarray]) -> tuple[Block, Block]:
    """(phrases, examples), each (vectors (M, D), starts (A,), counts (A,), labels (M,)): per agent, its capabilities'
    vectors (shared names embedded once) and its description; then its examples (one embed call for all texts)."""
    n = table.num_rows
    descriptions = table["description"].to_pylist() if "description" in table.column_names else [None] * n
    examples = table["examples"].to_pylist() if "examples" in table.column_names else [None] * n
    texts = [t for a in range(n) for t in ([descriptions[a]] if descriptions[a] else []) + (examples[a] or [])]
    extra = embed(texts) if texts else np.zeros((0, dim), np.float32)
    names = vocab.to_pylist()
    phrase_parts, phrase_labels, example_parts, example_labels = [], [], [], []
    phrase_counts, example_counts, used = [], [], 0
    for a in range(n):
        own = np.flatnonzero(has[:, a]) if len(has) else np.zeros(0, np.int64)
        described = 1 if descriptions[a] else 0
        given = examples[a] or []
        phrase_parts += [capability_vectors[own], extra[used:used + described]]
        example_parts.append(extra[used + described:used + described + len(given)])
        used += described + len(given)
        phrase_labels += [names[k] for k in own] + ([f"description: {descriptions[a]}"] if described else [])
        example_labels += [f"example: {e}" for e in given]
        phrase_counts.append(len(own) + described)
        example_counts.append(len(given))

    def block(parts: list[np.ndarray], counts: list[int], labels: list[str]) -> Block:
        vectors = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
        sizes = np.asarray(counts, np.int64)
        return (np.ascontiguousarray(vectors, dtype=np.float32), np.cumsum(sizes) - sizes, sizes, tuple(labels))

    return (block(phrase_parts, phrase_counts, phrase_labels), block(example_parts, example_counts, example_labels))


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
