"""The Python API: one Engine per store, the same code the SQL functions call.

>>> engine = Engine("/tmp/store")
>>> engine.register_agent("gpt-4", "llm", ["reasoning", "code"], cost_per_1k_tokens=0.03, avg_latency_ms=2500,
...                       quality_score=0.95)
>>> engine.route(["Write a Python function"], optimize_for="cost")   # a pyarrow Table, one row per request
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck._validate import as_texts
from tinydancer_duck.budget import Budgets
from tinydancer_duck.embed import (
    Embedder,
    embedding_matrix,
    few_python_texts,
    is_vector_input,
    make_embedder,
    nonzero_rows,
    one_embedding,
)
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.learn import Classifiers, OutcomeRouters, capability_match
from tinydancer_duck.registry import AgentSnapshot, Registry, build_snapshot, config_columns, tokens_from_bytes
from tinydancer_duck.routing import (
    NO_SIGNALS,
    Decisions,
    Requests,
    RouteOptions,
    Signals,
    batch_route,
    check_batch_objective,
    check_strategy,
    route,
    route_multi,
)
from tinydancer_duck.semantic import SemanticRoutes
from tinydancer_duck.settings import DEFAULT_SETTINGS, Settings
from tinydancer_duck.store import Store
from tinydancer_duck.usage import OPEN, Analytics, Health, Usage

if TYPE_CHECKING:
    import duckdb


class Engine:
    """Agents, embedder and router over one LanceDB store.

    store : directory of the LanceDB store (default ``$TINYDANCER_HOME``, else ``~/.tinydancer``).
    embedder : "static" (default), "onnx", "hashing", or any object with the Embedder protocol.
    """

    def __init__(self, store: str | Path | None = None, *, embedder: str | Embedder = "static",
                 settings: Settings | None = None) -> None:
        self.embedder = make_embedder(embedder) if isinstance(embedder, str) else embedder
        self.settings = settings or DEFAULT_SETTINGS
        self.store = Store(store, embedder_identity=self.embedder.identity, dim=self.embedder.dim)
        self.registry = Registry(self.store, self.embedder, self.settings)
        self.routes = SemanticRoutes(self.store, self.embedder, self.settings)
        self.classifier = Classifiers(self.store, self.embedder, self.settings)
        self.usage = Usage(self.store, self.registry, self.settings)
        self.analytics = Analytics(self.usage, self.registry)
        self.health = Health(self.usage, self.registry, self.settings)
        self.budgets = Budgets(self.store, self.usage, self.registry, self.settings)
        self.outcomes = OutcomeRouters(self.store, self.embedder, self.registry)
        self.store.table("agents")  # fail now, not at the first query, if the store was made by another embedder
        self._label_check: tuple[Any, Any, bool] = (None, None, False)
        self._route_names: tuple[Any, Any, tuple[str, ...], np.ndarray] = (None, None, (), np.zeros(0, np.int64))
        self._no_agents = build_snapshot(self.store.read("agents").schema.empty_table(), self.settings, self.dim)

    @property
    def dim(self) -> int:
        return self.embedder.dim

    # -- registry -----------------------------------------------------------------------------------------------
    def register_agent(self, name: str, agent_type: str, capabilities: Sequence[str], *,
                       cost_per_1k_tokens: float | None = None, cost_per_call: float | None = None,
                       cost_per_second: float | None = None, avg_latency_ms: float | None = None,
                       quality_score: float | None = None, metadata: str | Mapping[str, Any] | None = None,
                       **more: Any) -> bool:
        """Register or replace one agent (see :meth:`register_agents` for the other fields)."""
        fields = dict(name=name, agent_type=agent_type, capabilities=capabilities,
                      cost_per_1k_tokens=cost_per_1k_tokens, cost_per_call=cost_per_call,
                      cost_per_second=cost_per_second, avg_latency_ms=avg_latency_ms,
                      quality_score=quality_score, metadata=metadata, **more)
        return self.register_agents([fields]) == 1

    def register_agents(self, agents: pa.Table | Sequence[Mapping[str, Any]] | Any) -> int:
        """Register or replace many agents in one write: an Arrow table, a polars frame or a list of dicts.

        Fields: name, agent_type, capabilities, cost_per_1k_tokens, cost_per_call, cost_per_second,
        avg_output_tokens, avg_latency_ms, p99_latency_ms, quality_score, success_rate, metadata, active.
        """
        if hasattr(agents, "to_arrow") and not isinstance(agents, pa.Table):
            agents = agents.to_arrow()
        if isinstance(agents, pa.Table):
            columns = {name: agents[name] for name in agents.column_names}
        else:
            rows = list(agents)
            keys = {key for row in rows for key in row}
            columns = {key: [row.get(key) for row in rows] for key in keys}
        if "name" not in columns:
            raise InvalidArgument("name", None, "is required")
        return self.registry.register(columns)

    def register_agent_full(self, config: str | Mapping[str, Any]) -> bool:
        """Register one agent from a JSON config (text or dict) with any of the agent fields."""
        import json

        text = json.dumps(config) if isinstance(config, Mapping) else config
        return self.registry.register(config_columns([text])) == 1

    def list_agents(self) -> pa.Table:
        return self.registry.table()

    def get_agent(self, name: str) -> dict[str, Any] | None:
        if name is not None and not isinstance(name, str):
            raise InvalidArgument("name", name, "must be a string")
        row = self.registry.get([name]).to_pylist()[0]
        return row if row["name"] is not None else None

    def remove_agent(self, name: str) -> bool:
        return self.registry.remove([name]) == 1

    def set_agent_active(self, name: str, is_active: bool) -> bool:
        return self.registry.set_active([name], [is_active]) == 1

    def clear_agents(self) -> int:
        return self.registry.clear()

    def find_agents_by_capability(self, capability: str, limit: int = 10) -> pa.Table:
        return self.registry.find_by_capability(capability, limit)

    def update_agent_metrics(self, name: str, latency_ms: float, success: bool, quality: float | None = None) -> bool:
        return self.registry.update_metrics([name], [latency_ms], [success], [quality]) == 1

    # -- embedding and routing ----------------------------------------------------------------------------------
    def embed(self, texts: Any) -> np.ndarray:
        """float32 (n, D) unit rows; zero rows for NULL/blank texts."""
        return self.embedder.embed(as_texts("texts", texts))

    def requests(self, requests: Any) -> Requests:
        """A :class:`Requests` batch from texts (list or Arrow strings) or embeddings (numpy (n, D) or Arrow lists)."""
        if isinstance(requests, str):
            requests = [requests]
        if isinstance(requests, pa.ChunkedArray):
            requests = requests.combine_chunks() if requests.num_chunks != 1 else requests.chunk(0)
        if is_vector_input(requests):
            x, valid = embedding_matrix(requests, self.dim, argument="request")
            tokens = np.full(len(valid), self.settings.input_tokens_for_embeddings)
            return Requests(x, valid, tokens)
        if few_python_texts(requests):  # a one-request call: no Arrow array (the embedder decides if it needs one)
            return self._text_requests(requests, np.array([len(t.encode()) if t else 0 for t in requests]))
        if not isinstance(requests, pa.Array):
            try:
                requests = pa.array(list(requests), pa.string())
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
                raise InvalidArgument("request", requests, "must be text or an embedding") from None
        if not (pa.types.is_string(requests.type) or pa.types.is_large_string(requests.type)):
            raise InvalidArgument("request", str(requests.type), "must be text or an embedding")
        lengths = pc.binary_length(requests)
        lengths = lengths.fill_null(0) if lengths.null_count else lengths  # fill_null costs ~20 µs even on none
        return self._text_requests(requests, lengths.to_numpy(zero_copy_only=False))

    def _text_requests(self, texts: pa.Array | list[str | None], byte_lengths: np.ndarray) -> Requests:
        """Embedded texts; tokens_in from their UTF-8 byte lengths (DESIGN §5 step 2)."""
        x = self.embedder.embed(texts)
        return Requests(x, nonzero_rows(x), tokens_from_bytes(byte_lengths, self.settings))

    def route_struct(self, requests: Any, **options: Any) -> pa.StructArray:
        """The ruvector_route STRUCT for every request (the scalar SQL function calls this)."""
        decided, snapshot = self._decide(self.requests(requests), options)
        return decided.to_arrow(snapshot)

    def route_one(self, request: Any, **options: Any) -> dict[str, Any]:
        """One request's decision as a dict of ROUTE_FIELDS (None for NULL); the same decision as
        :meth:`route_struct`. The one-request SQL table form calls this: for one row, Arrow conversions would cost
        more than the routing itself.

        request : text, None, or one embedding (a sequence or numpy array of ``dim`` floats)
        """
        if request is None or isinstance(request, str):
            batch = self.requests([request])
        else:
            batch = self.requests(one_embedding(request, self.dim))
        decided, snapshot = self._decide(batch, options)
        return decided.row(0, snapshot)

    def _decide(self, batch: Requests, options: Mapping[str, Any]) -> tuple[Decisions, AgentSnapshot]:
        """Route a batch with every signal; the snapshot the decision's agent indices refer to."""
        # A batch without one usable request needs no agents (and no store read).
        snapshot: AgentSnapshot = self.registry.snapshot() if batch.valid.any() else self._no_agents
        route_options = RouteOptions.build(len(batch), **options)
        signals, route_options = self.signals(batch, snapshot, route_options)
        return route(batch, route_options, snapshot, self.settings, signals), snapshot

    def signals(self, batch: Requests, snapshot: AgentSnapshot,
                options: RouteOptions) -> tuple[Signals, RouteOptions]:
        """What the other services add to the router for this batch: the classifier's match, the outcome router's
        predicted quality, semantic routes, open circuits and budgets.

        Open circuits and agents past their own budget stop being candidates; a global budget caps every request's
        budget_remaining at what is left of it (returned in the options).
        """
        if not snapshot.size:
            return NO_SIGNALS, options
        names = snapshot.names
        over_budget, global_remaining = self.budgets.blocked(names)
        if not np.isnan(global_remaining):
            options = replace(options, budget_remaining=np.fmin(options.budget_remaining, global_remaining))
        circuit_open = self.health.states(names) == OPEN
        signals = Signals(match=self._classifier_match(batch, snapshot),
                          circuit_open=circuit_open if circuit_open.any() else None,  # None: nothing to mask
                          over_budget=over_budget if over_budget.any() else None,
                          quality=self.outcomes.quality(batch.embeddings, names, snapshot.quality),
                          **self._semantic_route(batch, snapshot))
        return signals, options

    def _semantic_route(self, batch: Requests, snapshot: AgentSnapshot) -> dict[str, Any]:
        """Signals fields for the best semantic route per request (none when the store has no routes)."""
        if not self.routes.snapshot().size:
            return {}
        best = self.routes.best(batch.embeddings, batch.valid)
        routes = best.snapshot
        if not routes.size:
            return {}
        cached = self._route_names
        if cached[0] is not routes or cached[1] is not snapshot:  # both snapshots are rebuilt on any write
            target = pc.index_in(routes.targets, value_set=snapshot.names).fill_null(-1).to_numpy()
            self._route_names = cached = (routes, snapshot, tuple(routes.names.to_pylist()), target)
        route_names, target_of_route = cached[2], cached[3]
        matched = best.route >= 0
        target = np.where(matched, target_of_route[np.maximum(best.route, 0)], -1)
        return {"route": np.where(matched, best.route, -1), "route_target": target, "route_names": route_names}

    def _classifier_match(self, batch: Requests, snapshot: AgentSnapshot) -> np.ndarray | None:
        """(n, A) probability mass on each agent's capabilities, when the active classifier predicts capabilities.

        That is the case when every label of the active model is a capability some registered agent holds (a model
        trained on capability names); a model of other labels (the shipped CLINC150 intents) leaves cosine matching.
        """
        model = self.classifier.active_or_none()
        if model is None:
            return None
        checked_model, checked_snapshot, applies = self._label_check
        if checked_model is not model or checked_snapshot is not snapshot:  # references, not ids: ids get reused
            labels = set(model.labels)
            applies = bool(labels) and labels <= set(snapshot.capability_vocab.to_pylist())
            self._label_check = (model, snapshot, applies)
        if not applies:
            return None
        return capability_match(model.probabilities(batch.embeddings), model.label_array, snapshot.has_capability,
                                snapshot.capability_vocab)

    def route(self, requests: Any, *, optimize_for: Any = "balanced", required_capabilities: Any = None,
              max_cost: Any = None, max_latency_ms: Any = None, min_quality: Any = None,
              excluded_agents: Any = None, budget_remaining: Any = None) -> pa.Table:
        """Route every request; one row per request: agent_name (NULL when none fits), confidence,
        estimated_cost, estimated_latency_ms, candidates, reasoning. ``pl.from_arrow`` gives a polars frame."""
        struct = self.route_struct(requests, optimize_for=optimize_for,
                                   required_capabilities=required_capabilities, max_cost=max_cost,
                                   max_latency_ms=max_latency_ms, min_quality=min_quality,
                                   excluded_agents=excluded_agents, budget_remaining=budget_remaining)
        return pa.Table.from_struct_array(struct)

    def route_multi_struct(self, requests: Any, *, num_agents: Any = 3, strategy: Any = "pipeline",
                           **options: Any) -> pa.StructArray:
        """The ruvector_route_multi plan STRUCT per request; num_agents and strategy may be columns."""
        batch = self.requests(requests)
        n = len(batch)
        strategies = _column_values(strategy, n)
        counts = _column_values(num_agents, n)
        route_options = RouteOptions.build(n, **options)
        snapshot = self.registry.snapshot() if batch.valid.any() else self._no_agents
        signals, route_options = self.signals(batch, snapshot, route_options)
        pairs = sorted({(s, k) for s, k in zip(strategies, counts)}, key=repr) or [("pipeline", 3)]  # no rows
        if len(pairs) == 1:
            chosen, k = check_strategy(*pairs[0])
            return route_multi(batch, route_options, snapshot, self.settings, strategy=chosen,
                               num_agents=k, signals=signals).to_arrow(snapshot)
        parts, order = [], []
        for pair in pairs:  # per-row strategies: plan each group, then restore the row order
            rows = np.flatnonzero([(s, k) == pair for s, k in zip(strategies, counts)])
            chosen, k = check_strategy(*pair)
            plans = route_multi(batch.take(rows), route_options.take(rows), snapshot, self.settings,
                                strategy=chosen, num_agents=k, signals=signals.take(rows))
            parts.append(plans.to_arrow(snapshot))
            order.append(rows)
        inverse = np.argsort(np.concatenate(order), kind="stable")
        return pa.concat_arrays(parts).take(pa.array(inverse, pa.int64()))

    def route_multi(self, request: Any, *, num_agents: int = 3, strategy: str = "pipeline",
                    **options: Any) -> pa.Table:
        """Plan several agents for one request: one row per step (step, agent_name, capabilities, weight,
        estimated_cost, estimated_latency_ms). ``options`` are ruvector_route's constraints."""
        plan = self.route_multi_struct([request] if isinstance(request, str) else request, num_agents=num_agents,
                                       strategy=strategy, **options)
        steps = plan.field("steps").flatten()
        return pa.Table.from_struct_array(steps) if len(steps) else pa.table(
            {f.name: pa.array([], f.type) for f in steps.type})

    def batch_route(self, requests: Any, *, optimize_for: str = "total_cost", budget: float | None = None,
                    **options: Any) -> pa.Table:
        """Decide a whole batch together: ``total_cost`` (cheapest feasible per request) or, with ``budget``, the
        most total expected quality within it (Lagrangian; the λ used is a column). One row per request."""
        return pa.Table.from_struct_array(self.batch_route_struct(requests, optimize_for=optimize_for,
                                                                  budget=budget, **options))

    def batch_route_struct(self, requests: Any, *, optimize_for: Any = "total_cost", budget: Any = None,
                           **options: Any) -> pa.StructArray:
        objective, limit = check_batch_objective(optimize_for, budget)
        batch = self.requests(requests)
        route_options = RouteOptions.build(len(batch), optimize_for="balanced" if objective == "total_cost"
                                           else objective, **options)
        snapshot = self.registry.snapshot()
        signals, route_options = self.signals(batch, snapshot, route_options)
        decided = batch_route(batch, snapshot, self.settings, optimize_for=objective, budget=limit,
                              options=route_options, signals=signals)
        return decided.to_arrow(snapshot)

    # -- SQL ----------------------------------------------------------------------------------------------------
    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with every ruvector_* function bound to this engine."""
        from tinydancer_duck._duck import connect_engine

        return connect_engine(self)


def _column_values(value: Any, n: int) -> list[Any]:
    """n Python values from a scalar or a column (Arrow, numpy or list)."""
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if isinstance(value, pa.Array):
        return value.to_pylist()
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    return [value] * n


def connect(store: str | Path | None = None, *, embedder: str | Embedder = "static",
            settings: Settings | None = None) -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB with the routing functions over the LanceDB store at ``store``.

    store : the LanceDB directory (default ``$TINYDANCER_HOME``, else ``~/.tinydancer``); connections on one store
        see each other's writes.
    """
    return Engine(store, embedder=embedder, settings=settings).connect()
