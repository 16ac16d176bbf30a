"""The agent registry: validated writes to the ``agents`` table and the reads the SQL surface needs.

Registration is column-wise (a batch of agents is one validation pass and one LanceDB upsert), so
``SELECT ruvector_register_agent(...) FROM my_agents`` costs one write however many rows it has. Re-registering an
agent replaces its configuration but keeps what was learned from traffic (total_requests, success_rate, p99) and
its created_at.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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
    check_json_value,
    check_names,
    check_nonnegative,
    check_stored,
    check_unit_interval,
    load_json,
)
from tinydancer_duck.embed import Embedder, background, evidence_calibration
from tinydancer_duck.errors import InvalidArgument, NotFound
from tinydancer_duck.options import AGENT_FIELDS, AGENT_TYPES, CONFIG_ONLY_FIELDS, SCOPES
from tinydancer_duck.settings import Settings
from tinydancer_duck.store import Step, Store

from ._snapshot import (
    AgentSnapshot,
    build_snapshot,
    capability_text,
    default_scope,
    with_background,
)
from ._stats import STATS, AffineFold, fold_observations

PRICE_FIELDS = ("cost_per_1k_tokens", "cost_per_call", "cost_per_second")
#: Every field an agent's registration may set (declared in tinydancer_duck.options).
FIELDS = tuple(p.name for p in (*AGENT_FIELDS, *CONFIG_ONLY_FIELDS))
#: One row of ruvector_find_agents_by_capability (:meth:`Registry.find_by_capability`).
FOUND_TYPE = pa.struct([("name", pa.string()), ("agent_type", pa.string()), ("capabilities", pa.list_(pa.string())),
                        ("quality_score", pa.float64()), ("exact_match", pa.bool_()), ("similarity", pa.float64())])
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
        """The snapshot, with the embedder's evidence calibration and each agent's similarities centered on the
        background requests (embed._calibration)."""
        found = background(self.embedder)
        snap = build_snapshot(table, self.settings, self.store.dim, self._embed_known,
                              calibration=evidence_calibration(self.embedder.identity))
        return with_background(snap, found.vectors, found.spread)

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
        found = snap.similarities(query)
        similarity = np.fmax(found.phrase, found.example)[0]
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
    def register(self, columns: Mapping[str, Any]) -> int:
        """Validate and upsert a batch of agents given as columns; returns the number of distinct agents written.

        columns: ``name``, ``agent_type``, ``capabilities`` and any other of :data:`FIELDS`, each a sequence,
        numpy or Arrow column with one value per agent (None: all NULL). Later rows win on duplicate names.
        Validation and embedding run before the agents lock is taken; only carrying learned stats over from the
        stored rows and the upsert run under it.
        """
        fresh = self._prepare(columns)
        if fresh is None:
            return 0
        with self.store.locked("agents"):  # read-modify-write: concurrent writers must not lose updates
            previous = self._stored(fresh["name"])
            self.store.upsert("agents", _carry_over(fresh, previous, self.settings))
        return len(fresh["name"])

    def _prepare(self, columns: Mapping[str, Any]) -> dict[str, Any] | None:
        """The validated columns of :meth:`register`, one row per distinct name (the last row wins), with the
        capability embeddings; None for no rows."""
        stored_only = set(self.store.table("agents").schema.names) - set(FIELDS)  # what a listing adds, ignored
        unknown = sorted(set(columns) - set(FIELDS) - stored_only)
        if unknown:
            raise InvalidArgument(unknown[0], columns[unknown[0]], f"is not an agent field; the fields are "
                                  f"{', '.join(FIELDS)}")
        names = check_names("name", as_list(columns["name"]))
        n = len(names)
        if n == 0:
            return None
        types = [check_choice("agent_type", t, AGENT_TYPES) for t in as_column("agent_type", columns.get("agent_type"), n)]
        capabilities = [_check_capabilities(caps) for caps in as_column("capabilities", columns.get("capabilities"), n)]
        numbers = {f: as_float_column(f, columns.get(f), n) for f in
                   (*PRICE_FIELDS, "avg_output_tokens", "avg_latency_ms", "p99_latency_ms", "quality_score",
                    "success_rate")}
        for field in (*PRICE_FIELDS, "avg_output_tokens", "avg_latency_ms", "p99_latency_ms"):
            check_nonnegative(field, numbers[field])
            check_stored(field, numbers[field])
        check_unit_interval("quality_score", numbers["quality_score"])
        check_unit_interval("success_rate", numbers["success_rate"])
        metadata = [_check_metadata(m) for m in as_column("metadata", columns.get("metadata"), n)]
        active = check_bools("active", [True if a is None else a for a in as_column("active", columns.get("active"), n)])
        described = _described(columns, n, metadata, types)
        keep = np.fromiter({name: i for i, name in enumerate(names)}.values(), dtype=np.int64)  # later rows win
        fresh: dict[str, Any] = {f: numbers[f][keep] for f in numbers}
        fresh.update(name=[names[i] for i in keep], agent_type=[types[i] for i in keep],
                     capabilities=[capabilities[i] for i in keep], metadata=[metadata[i] for i in keep],
                     active=[active[i] for i in keep])
        fresh["described"] = {field: column.take(pa.array(keep)) for field, column in described.items()}
        fresh["embedding"] = self.embedder.embed([capability_text(c) for c in fresh["capabilities"]])
        return fresh

    def remove(self, names: Sequence[str]) -> int:
        """Delete agents by name; every name must exist (nothing is deleted otherwise). Reads only the stored
        names, never the agent snapshot, so no stored value can stand in the way of a removal."""
        with self.store.locked("agents"):  # no update computed from an older read may write a removed agent back
            names = self._existing(names)
            self.store.delete_keys("agents", "name", names)
        return len(set(names))

    def clear(self) -> int:
        """Delete every agent; returns how many there were."""
        with self.store.locked("agents"):
            count = self.store.count("agents")
            self.store.delete_all("agents")
        return count

    def set_active(self, names: Sequence[str], flags: Sequence[Any]) -> int:
        """Activate or deactivate agents (the last flag per name wins); unknown names are an error."""
        values = check_bools("is_active", as_column("is_active", flags, len(as_list(names))))
        with self.store.locked("agents"):  # read-modify-write: concurrent writers must not lose updates
            names = self._existing(names)
            return self._patch(names, {"active": pa.array(values)})

    def update_metrics(self, names: Sequence[str], latency_ms: Any, success: Any, quality: Any = None, *,
                       usage: pa.Table | None = None) -> int:
        """Fold observed outcomes into each agent's running stats (see :mod:`tinydancer_duck.registry._stats`).

        usage : the usage events these outcomes come from, appended to ``usage`` all-or-nothing with the stats
            (:meth:`Store.transact`), so a kill cannot leave one without the other.
        """
        names = check_names("name", as_list(names))
        n = len(names)
        latency = as_float_column("latency_ms", latency_ms, n)
        check_nonnegative("latency_ms", latency, required=True)
        check_stored("latency_ms", latency)
        successes = as_column("success", success, n)
        if not isinstance(success, (pa.Array, pa.ChunkedArray)):  # Arrow booleans are typed already
            check_bools("success", successes)
        if any(s is None for s in successes):
            raise InvalidArgument("success", None, "must be true or false")
        observed = as_float_column("quality", quality, n)
        check_unit_interval("quality", observed)
        with self.store.locked("agents"):  # read-modify-write: concurrent writers must not lose updates
            names = self._existing(names)
            patch = fold_observations(self._stored(names), names, latency, np.asarray(successes, bool), observed,
                                      alpha=self.settings.latency_ewma_alpha)
            rows = self._patched_rows(patch.pop("name"), patch)
            self.store.transact([*([Step("usage", "append", usage)] if usage is not None else []),
                                 Step("agents", "upsert", rows)])
            return rows.num_rows

    def apply_folds(self, folds: Mapping[str, AffineFold], *, usage: Step | None = None) -> list[str]:
        """Apply each agent's folded events (:class:`AffineFold`, a bulk ingest) to its stored stats, read at write
        time, in one agents write; returns the agents updated (folds of unknown agents are skipped).

        usage : the append of the events themselves, committed all-or-nothing with the stats.
        """
        with self.store.locked("agents"):
            known = self._stored_names()
            names = [name for name in sorted(folds) if name in known]
            steps = [usage] if usage is not None else []
            if names:
                rows = self._stored(names)
                values = {}
                for stat in (*STATS, "total_requests"):
                    old = np.asarray(rows[stat].to_numpy(zero_copy_only=False), dtype=np.float64)
                    new = np.array([folds[n].apply(stat, o) for n, o in zip(names, old)])
                    values[stat] = np.rint(new).astype(np.int64) if stat == "total_requests" else new
                steps.append(Step("agents", "upsert", self._patched_rows(names, values)))
            if steps:
                self.store.transact(steps)
        return names

    # -- helpers ------------------------------------------------------------------------------------------------
    def _stored_names(self) -> set[str]:
        """The names in the agents table as stored (no snapshot is built)."""
        return set(self.store.read("agents")["name"].to_pylist())

    def _stored(self, names: Sequence[str]) -> pa.Table:
        """The stored rows (every column) aligned with ``names``; an all-NULL row for an unknown name."""
        table = self.store.read("agents")
        return table.take(pc.index_in(pa.array(list(names), pa.string()), value_set=table["name"]))

    def _existing(self, names: Sequence[Any]) -> list[str]:
        names = check_names("name", as_list(names), stored=True)
        known = self._stored_names()
        for name in names:
            if name not in known:
                raise NotFound("agent", name)
        return names

    def _patch(self, names: Sequence[str], values: Mapping[str, Any]) -> int:
        """Rewrite whole rows of ``names`` with some fields replaced (the last value per name wins)."""
        rows = self._patched_rows(names, values)
        self.store.upsert("agents", rows)
        return rows.num_rows

    def _patched_rows(self, names: Sequence[str], values: Mapping[str, Any]) -> pa.Table:
        """The stored rows of ``names`` (last value per name) with ``values`` replaced and updated_at now."""
        last = {name: i for i, name in enumerate(names)}
        keep = pa.array(list(last.values()), pa.int64())
        rows = self._stored(list(last))
        for field, column in values.items():
            rows = rows.set_column(rows.schema.get_field_index(field), field,
                                   pa.array(column).take(keep).cast(rows.schema.field(field).type))
        now = pa.array([datetime.now(timezone.utc)] * rows.num_rows, pa.timestamp("us", tz="UTC"))
        return rows.set_column(rows.schema.get_field_index("updated_at"), "updated_at", now)


def _carry_over(fresh: Mapping[str, Any], previous: pa.Table, settings: Settings) -> pa.Table:
    """The agents rows to upsert for a registration: the given configuration, with what was learned from traffic
    (total_requests, and success_rate and p99 unless given) and created_at carried over from ``previous`` (the
    stored rows aligned with the names; all-NULL rows for new agents)."""
    known = previous["name"].is_valid().to_numpy(zero_copy_only=False)
    now = datetime.now(timezone.utc)
    latency = np.where(np.isnan(fresh["avg_latency_ms"]), settings.default_latency_ms, fresh["avg_latency_ms"])

    def carried(field: str, default: np.ndarray | float) -> np.ndarray:
        old = np.asarray(previous[field].to_numpy(zero_copy_only=False), dtype=np.float64)
        value = np.where(np.isnan(fresh[field]), np.where(known, old, default), fresh[field])
        return np.where(np.isnan(value), default, value)

    return pa.table({
        "name": fresh["name"],
        "agent_type": fresh["agent_type"],
        "capabilities": pa.array(fresh["capabilities"], pa.list_(pa.string())),
        "capability_embedding": pa.FixedSizeListArray.from_arrays(
            pa.array(fresh["embedding"].reshape(-1), pa.float32()), fresh["embedding"].shape[1]),
        **{f: pa.array(fresh[f], pa.float64(), from_pandas=True) for f in (*PRICE_FIELDS, "avg_output_tokens")},
        "avg_latency_ms": latency,
        "p99_latency_ms": carried("p99_latency_ms", 2.0 * latency),
        "quality_score": np.where(np.isnan(fresh["quality_score"]), settings.default_quality, fresh["quality_score"]),
        "success_rate": carried("success_rate", 1.0),
        "total_requests": pa.array(np.where(known, previous["total_requests"].fill_null(0).to_numpy(), 0)),
        "metadata": fresh["metadata"],
        "active": fresh["active"],
        "created_at": pc.if_else(previous["created_at"].is_valid(), previous["created_at"],
                                 pa.scalar(now, previous.schema.field("created_at").type)),
        "updated_at": pa.array([now] * len(fresh["name"]), pa.timestamp("us", tz="UTC")),
        **fresh["described"],
    })


def config_columns(configs: Sequence[str | None]) -> dict[str, list[Any]]:
    """Parse ``ruvector_register_agent_full`` JSON configs into register() columns."""
    parsed = []
    for text in configs:
        config = _json_object("config", text)
        unknown = set(config) - set(FIELDS)
        if unknown:
            raise InvalidArgument("config", min(unknown), "is not an agent field")
        if isinstance(config.get("metadata"), (dict, list)):
            config["metadata"] = json.dumps(config["metadata"])
        parsed.append(config)
    return {f: [c.get(f) for c in parsed] for f in FIELDS}


def _described(columns: Mapping[str, Any], n: int, metadata: list[str], types: list[str]) -> dict[str, pa.Array]:
    """The description, example requests, context window, max output tokens and scope of n agents, validated.

    A scope not given follows the agent type (:func:`~tinydancer_duck.registry._snapshot.default_scope`) and is
    stored, so ``ruvector_list_agents`` shows what the router assumes.

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
    scopes = [default_scope(kind) if scope is None else check_choice("scope", scope, SCOPES)
              for scope, kind in zip(as_column("scope", columns.get("scope"), n), types)]
    return {"description": pa.array(descriptions, pa.string()),
            "examples": pa.array(examples, pa.list_(pa.string())),
            **{field: pa.array(values, pa.int64()) for field, values in tokens.items()},
            "scope": pa.array(scopes, pa.string())}


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
        check_json_value("metadata", metadata)
        text = json.dumps(metadata)
        load_json("metadata", text)  # the size bound
        return text
    _json_object("metadata", metadata)
    return metadata  # stored verbatim, as the caller wrote it


def _json_object(argument: str, text: Any) -> dict[str, Any]:
    """The dict a JSON-object text holds (bounded in size and depth, see load_json); anything else is an error
    naming ``argument``."""
    if not isinstance(text, str):
        raise InvalidArgument(argument, text, "must be a JSON object")
    value = load_json(argument, text)
    if not isinstance(value, dict):
        raise InvalidArgument(argument, text, "must be a JSON object")
    return value
