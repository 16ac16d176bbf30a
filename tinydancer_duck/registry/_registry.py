"""The agent registry: validated writes to the ``agents`` table and the reads the SQL surface needs.

Registration is column-wise (a batch of agents is one validation pass and one LanceDB upsert), so
``SELECT ruvector_register_agent(...) FROM my_agents`` costs one write however many rows it has. Re-registering an
agent replaces its configuration but keeps what was learned from traffic (total_requests, success_rate, p99) and
its created_at.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck._validate import (
    as_column,
    as_float_column,
    as_list,
    check_bools,
    check_choice,
    check_int,
    check_names,
    check_nonnegative,
    check_unit_interval,
)
from tinydancer_duck.embed import MATCH_LEVEL, Embedder, background, null_scores
from tinydancer_duck.errors import InvalidArgument, NotFound
from tinydancer_duck.settings import Settings
from tinydancer_duck.store import Store, write_locked

from ._snapshot import AGENT_TYPES, AgentSnapshot, build_snapshot, capability_text
from ._stats import STATS, AffineFold, fold_observations

PRICE_FIELDS = ("cost_per_1k_tokens", "cost_per_call", "cost_per_second")
#: One row of ruvector_find_agents_by_capability (:meth:`Registry.find_by_capability`).
FOUND_TYPE = pa.struct([("name", pa.string()), ("agent_type", pa.string()), ("capabilities", pa.list_(pa.string())),
                        ("quality_score", pa.float64()), ("exact_match", pa.bool_()), ("similarity", pa.float64())])
#: Fields of ruvector_register_agent_full's JSON config, beyond the required name/agent_type/capabilities.
#: What describes an agent beyond its capability words: matching uses all of them; a request whose input tokens plus
#: the agent's expected output exceed its context window is not a candidate.
DESCRIBED_FIELDS = ("description", "examples", "context_window", "max_output_tokens")
OPTIONAL_FIELDS = (*PRICE_FIELDS, "avg_output_tokens", "avg_latency_ms", "p99_latency_ms", "quality_score",
                   "success_rate", "metadata", "active", *DESCRIBED_FIELDS)
#: Largest context window accepted (tokens): larger than any model's, small enough for every reader's int64 math.
MAX_CONTEXT_WINDOW = 1 << 40


class Registry:
    """Register, update, deactivate, delete, list, get and find agents in one store."""

    def __init__(self, store: Store, embedder: Embedder, settings: Settings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self._embedded: dict[tuple[str, ...], np.ndarray] = {}

    # -- reads --------------------------------------------------------------------------------------------------
    def snapshot(self) -> AgentSnapshot:
        """The numpy snapshot of all agents, rebuilt only when the table version changes."""
        return self.store.snapshot("agents", "snapshot", self._build_snapshot)

    def _build_snapshot(self, table: pa.Table) -> AgentSnapshot:
        """The snapshot, with the match threshold calibrated on the background requests (embed._calibration)."""
        snap = build_snapshot(table, self.settings, self.store.dim, self._embed_known)
        null = null_scores(background(self.embedder).vectors, snap.similarity)
        return replace(snap, match_threshold=max(null.threshold(MATCH_LEVEL), 0.0))

    def _embed_known(self, texts: list[str]) -> np.ndarray:
        """The embedder's vectors of these texts (capability names, descriptions, examples), reused while they are
        the same texts: every recorded usage event rewrites the agents table (running stats), and re-embedding ~50
        short texts cost ~3 ms a time. Keeps the last few lists (a snapshot embeds two)."""
        key = tuple(texts)
        vectors = self._embedded.get(key)
        if vectors is None:
            if len(self._embedded) >= 4:
                self._embedded.clear()
            vectors = self._embedded[key] = self.embedder.embed(texts)
        return vectors

    def table(self) -> pa.Table:
        """All agents sorted by name (without the embedding column)."""
        return self.snapshot().table.drop_columns(["capability_embedding"])

    def get(self, names: Sequence[str | None]) -> pa.Table:
        """One row per requested name, aligned with ``names``; unknown or NULL names give an all-NULL row."""
        table = self.table()
        positions = pc.index_in(pa.array(names, pa.string()), value_set=table["name"])
        return table.take(positions)

    def find_by_capability(self, capability: str, limit: int = 10) -> pa.Table:
        """Active agents ranked by capability: exact holders first, then by similarity, measured as routing measures
        a request's match (the best cosine over each agent's capabilities, description and examples), so a
        capability or a whole request finds the agents routing would match it to."""
        check_names("capability", [capability])
        limit = check_int("limit", limit, minimum=1)
        snap = self.snapshot()
        query = self.embedder.embed([capability_text([capability])])
        similarity = snap.similarity(query)[0]
        exact = np.zeros(snap.size, bool)
        row = pc.index(snap.capability_vocab, capability).as_py()
        if row >= 0:
            exact = snap.has_capability[row]
        keep = np.flatnonzero(snap.active)
        order = keep[np.lexsort((-similarity[keep], ~exact[keep]))][: int(limit)]
        table = self.table().take(pa.array(order, pa.int64()))
        return table.select(["name", "agent_type", "capabilities", "quality_score"]).append_column(
            "exact_match", pa.array(exact[order])
        ).append_column("similarity", pa.array(similarity[order].astype(np.float64)))

    # -- writes -------------------------------------------------------------------------------------------------
    @write_locked("agents")  # read-modify-write: concurrent writers must not lose updates
    def register(self, columns: Mapping[str, Any]) -> int:
        """Validate and upsert a batch of agents given as columns; returns the number of distinct agents written.

        columns: ``name``, ``agent_type``, ``capabilities`` and any of :data:`OPTIONAL_FIELDS`, each a sequence,
        numpy or Arrow column with one value per agent (None: all NULL). Later rows win on duplicate names.
        """
        names = check_names("name", as_list(columns["name"]))
        n = len(names)
        if n == 0:
            return 0
        types = [check_choice("agent_type", t, AGENT_TYPES) for t in as_column("agent_type", columns.get("agent_type"), n)]
        capabilities = [_check_capabilities(caps) for caps in as_column("capabilities", columns.get("capabilities"), n)]
        numbers = {f: as_float_column(f, columns.get(f), n) for f in
                   (*PRICE_FIELDS, "avg_output_tokens", "avg_latency_ms", "p99_latency_ms", "quality_score",
                    "success_rate")}
        for field in (*PRICE_FIELDS, "avg_output_tokens", "avg_latency_ms", "p99_latency_ms"):
            check_nonnegative(field, numbers[field])
        check_unit_interval("quality_score", numbers["quality_score"])
        check_unit_interval("success_rate", numbers["success_rate"])
        metadata = [_check_metadata(m) for m in as_column("metadata", columns.get("metadata"), n)]
        active = [True if a is None else bool(a) for a in as_column("active", columns.get("active"), n)]
        described = _described(columns, n, metadata)

        last = {name: i for i, name in enumerate(names)}  # later rows win
        keep = np.fromiter(last.values(), dtype=np.int64)
        embeddings = self.embedder.embed([capability_text(capabilities[i]) for i in keep])
        latency = np.where(np.isnan(numbers["avg_latency_ms"]), self.settings.default_latency_ms,
                           numbers["avg_latency_ms"])[keep]
        previous = self.get([names[i] for i in keep])
        known = previous["name"].is_valid().to_numpy(zero_copy_only=False)
        now = datetime.now(timezone.utc)

        def carried(field: str, fresh: np.ndarray, default: np.ndarray | float) -> np.ndarray:
            old = np.asarray(previous[field].to_numpy(zero_copy_only=False), dtype=np.float64)
            value = np.where(np.isnan(fresh), np.where(known, old, default), fresh)
            return np.where(np.isnan(value), default, value)

        rows = pa.table({
            "name": [names[i] for i in keep],
            "agent_type": [types[i] for i in keep],
            "capabilities": pa.array([capabilities[i] for i in keep], pa.list_(pa.string())),
            "capability_embedding": pa.FixedSizeListArray.from_arrays(
                pa.array(embeddings.reshape(-1), pa.float32()), self.store.dim),
            **{f: pa.array(numbers[f][keep], pa.float64(), from_pandas=True) for f in
               (*PRICE_FIELDS, "avg_output_tokens")},
            "avg_latency_ms": latency,
            "p99_latency_ms": carried("p99_latency_ms", numbers["p99_latency_ms"][keep], 2.0 * latency),
            "quality_score": np.where(np.isnan(numbers["quality_score"][keep]), self.settings.default_quality,
                                      numbers["quality_score"][keep]),
            "success_rate": carried("success_rate", numbers["success_rate"][keep], 1.0),
            "total_requests": pa.array(np.where(known, previous["total_requests"].fill_null(0).to_numpy(), 0)),
            "metadata": [metadata[i] for i in keep],
            "active": [active[i] for i in keep],
            "created_at": pc.if_else(previous["created_at"].is_valid(), previous["created_at"],
                                     pa.scalar(now, previous.schema.field("created_at").type)),
            "updated_at": pa.array([now] * len(keep), pa.timestamp("us", tz="UTC")),
            **{field: column.take(pa.array(keep)) for field, column in described.items()},
        })
        self.store.upsert("agents", rows)
        return len(keep)

    def remove(self, names: Sequence[str]) -> int:
        """Delete agents by name; every name must exist (nothing is deleted otherwise)."""
        names = self._existing(names)
        self.store.delete_keys("agents", "name", names)
        return len(set(names))

    def clear(self) -> int:
        """Delete every agent; returns how many there were."""
        count = self.snapshot().size
        self.store.delete_all("agents")
        return count

    @write_locked("agents")  # read-modify-write: concurrent writers must not lose updates
    def set_active(self, names: Sequence[str], flags: Sequence[Any]) -> int:
        """Activate or deactivate agents (the last flag per name wins); unknown names are an error."""
        names = self._existing(names)
        values = check_bools("is_active", as_column("is_active", flags, len(names)))
        return self._patch(names, {"active": pa.array(values)})

    @write_locked("agents")  # read-modify-write: concurrent writers must not lose updates
    def update_metrics(self, names: Sequence[str], latency_ms: Any, success: Any, quality: Any = None) -> int:
        """Fold observed outcomes into each agent's running stats (see :mod:`tinydancer_duck.registry._stats`)."""
        names = self._existing(names)
        n = len(names)
        latency = as_float_column("latency_ms", latency_ms, n)
        check_nonnegative("latency_ms", latency, required=True)
        successes = as_column("success", success, n)
        if not isinstance(success, (pa.Array, pa.ChunkedArray)):  # Arrow booleans are typed already
            check_bools("success", successes)
        if any(s is None for s in successes):
            raise InvalidArgument("success", None, "must be true or false")
        observed = as_float_column("quality", quality, n)
        check_unit_interval("quality", observed)
        current = self.get(names)
        patch = fold_observations(current, names, latency, np.asarray(successes, bool), observed,
                                  alpha=self.settings.latency_ewma_alpha)
        return self._patch(patch.pop("name"), patch)

    @write_locked("agents")  # read-modify-write: concurrent writers must not lose updates
    def apply_folds(self, folds: Mapping[str, AffineFold]) -> list[str]:
        """Apply each agent's folded events (:class:`AffineFold`, a bulk ingest) to its stored stats, read at write
        time, in one agents write; returns the agents updated (folds of unknown agents are skipped)."""
        known = self.snapshot().index
        names = [name for name in sorted(folds) if name in known]
        if not names:
            return []
        rows = self.get(names)
        values = {}
        for stat in (*STATS, "total_requests"):
            old = np.asarray(rows[stat].to_numpy(zero_copy_only=False), dtype=np.float64)
            new = np.array([folds[n].apply(stat, o) for n, o in zip(names, old)])
            values[stat] = np.rint(new).astype(np.int64) if stat == "total_requests" else new
        self._patch(names, values)
        return names

    # -- helpers ------------------------------------------------------------------------------------------------
    def _existing(self, names: Sequence[Any]) -> list[str]:
        names = check_names("name", as_list(names))
        known = self.snapshot().index
        for name in names:
            if name not in known:
                raise NotFound("agent", name)
        return names

    def _patch(self, names: Sequence[str], values: Mapping[str, pa.Array]) -> int:
        """Rewrite whole rows of ``names`` with some fields replaced (the last value per name wins)."""
        last = {name: i for i, name in enumerate(names)}
        keep = pa.array(list(last.values()), pa.int64())
        rows = self.get(list(last))
        for field, column in values.items():
            rows = rows.set_column(rows.schema.get_field_index(field), field,
                                   pa.array(column).take(keep).cast(rows.schema.field(field).type))
        now = pa.array([datetime.now(timezone.utc)] * rows.num_rows, pa.timestamp("us", tz="UTC"))
        rows = rows.set_column(rows.schema.get_field_index("updated_at"), "updated_at", now)
        snap = self.snapshot()
        embedding = snap.table["capability_embedding"].take(
            pa.array([snap.index[name] for name in last], pa.int64()))
        self.store.upsert("agents", rows.append_column("capability_embedding", embedding))
        return rows.num_rows


def config_columns(configs: Sequence[str | None]) -> dict[str, list[Any]]:
    """Parse ``ruvector_register_agent_full`` JSON configs into register() columns."""
    parsed = []
    for text in configs:
        config = _json_object("config", text)
        unknown = set(config) - {"name", "agent_type", "capabilities", *OPTIONAL_FIELDS}
        if unknown:
            raise InvalidArgument("config", min(unknown), "is not an agent field")
        if isinstance(config.get("metadata"), (dict, list)):
            config["metadata"] = json.dumps(config["metadata"])
        parsed.append(config)
    fields = ("name", "agent_type", "capabilities", *OPTIONAL_FIELDS)
    return {f: [c.get(f) for c in parsed] for f in fields}


def _described(columns: Mapping[str, Any], n: int, metadata: list[str]) -> dict[str, pa.Array]:
    """The description, example requests, context window and max output tokens of n agents, validated.

    A context window not given is taken from the metadata's ``context_window`` (the seed plan's examples put it
    there), so ``metadata := '{"context_window": 128000}'`` limits the agent as the field would.
    """
    descriptions = as_column("description", columns.get("description"), n)
    for text in descriptions:
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise InvalidArgument("description", text, "must be a non-empty string or NULL")
    examples = [None if e is None else _check_capabilities(e, argument="examples")
                for e in as_column("examples", columns.get("examples"), n)]
    tokens = {}
    for field in ("context_window", "max_output_tokens"):
        values = as_column(field, columns.get(field), n)
        tokens[field] = [None if v is None else check_int(field, v, minimum=1, maximum=MAX_CONTEXT_WINDOW)
                         for v in values]
    for i, text in enumerate(metadata):
        if tokens["context_window"][i] is None:
            window = json.loads(text).get("context_window")
            if window is not None:
                tokens["context_window"][i] = check_int("metadata.context_window", window, minimum=1,
                                                        maximum=MAX_CONTEXT_WINDOW)
    return {"description": pa.array(descriptions, pa.string()),
            "examples": pa.array(examples, pa.list_(pa.string())),
            **{field: pa.array(values, pa.int64()) for field, values in tokens.items()}}


def _check_capabilities(capabilities: Any, *, argument: str = "capabilities") -> list[str]:
    """Distinct non-blank strings, in the order given."""
    if capabilities is None:
        return []
    if isinstance(capabilities, str) or not isinstance(capabilities, (list, tuple, np.ndarray)):
        raise InvalidArgument(argument, capabilities, "must be a list of strings")
    return list(dict.fromkeys(check_names(argument, capabilities)))


def _check_metadata(metadata: Any) -> str:
    if metadata is None:
        return "{}"
    if isinstance(metadata, Mapping):
        return json.dumps(metadata)
    _json_object("metadata", metadata)
    return metadata  # stored verbatim, as the caller wrote it


def _json_object(argument: str, text: Any) -> dict[str, Any]:
    """The dict a JSON-object text holds; anything else is an error naming ``argument``."""
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError as exc:
        raise InvalidArgument(argument, text, f"is not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise InvalidArgument(argument, text, "must be a JSON object")
    return value
