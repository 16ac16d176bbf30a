"""The Python API: one Engine per store, the same code the SQL functions call.

>>> engine = Engine("/tmp/store")
>>> engine.register_agent("gpt-4", "llm", ["reasoning", "code"], cost_per_1k_tokens=0.03, avg_latency_ms=2500,
...                       quality_score=0.95)
>>> engine.route(["Write a Python function"], optimize_for="cost")   # a pyarrow Table, one row per request
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from tinydancer_duck._decide import (
    classify,
    decide,
    decide_batch,
    decide_metered,
    decide_multi,
    requests_from,
    semantic_matches,
)
from tinydancer_duck._validate import as_texts, to_us, translate_text_errors
from tinydancer_duck.budget import Budgets
from tinydancer_duck.embed import Embedder, make_embedder, one_embedding
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.learn import TOP_K, Classifiers, OutcomeRouters
from tinydancer_duck.options import EXPLAIN, NUM_AGENTS, NUM_FALLBACKS, STRATEGY, RouteOptions, per_row_values
from tinydancer_duck.registry import IMPORT_TYPE, Registry, agents_from_log, config_columns, estimated_cost
from tinydancer_duck.routing import Decisions, OptionColumns, Requests, check_batch_objective, per_request_objective
from tinydancer_duck.semantic import US_PER_MIN, SemanticRoutes
from tinydancer_duck.settings import DEFAULT_SETTINGS, Settings
from tinydancer_duck.snapshot import SNAPSHOT_TABLES, RoutingSnapshot, build_routing_snapshot
from tinydancer_duck.store import Store, count_routes, held_by_others, reserve
from tinydancer_duck.usage import Analytics, Health, Usage

if TYPE_CHECKING:
    import duckdb


def _plain_key(value: Any) -> Any:
    """``value`` as a comparable key of (type, value) pairs, lists as tuples; None when it holds anything else (a
    numpy or Arrow column), which is not kept."""
    kind = type(value)
    if kind in (list, tuple):
        items = tuple(_plain_key(item) for item in value)
        return None if None in items else (kind, items)
    return (kind, value) if kind in (str, int, float, bool, type(None)) else None


class Engine:
    """Agents, embedder and router over one LanceDB store.

    store : directory of the LanceDB store (default ``$TINYDANCER_HOME``, else ``~/.tinydancer``), or an
        object-store URI LanceDB opens (``s3://bucket/prefix``; README "Beyond one machine" says what is safe there).
    embedder : "static" (default), "onnx", "hashing", or any object with the Embedder protocol.
    storage_options : for an object-store URI, LanceDB's settings (credentials, region, endpoint, ...).
    """

    def __init__(self, store: str | Path | None = None, *, embedder: str | Embedder = "static",
                 settings: Settings | None = None, storage_options: Mapping[str, str] | None = None) -> None:
        self.embedder = make_embedder(embedder) if isinstance(embedder, str) else embedder
        self.settings = settings or DEFAULT_SETTINGS
        self.store = Store(store, embedder_identity=self.embedder.identity, dim=self.embedder.dim,
                           storage_options=dict(storage_options) if storage_options else None,
                           lock_timeout_s=self.settings.lock_timeout_s)
        self.registry = Registry(self.store, self.embedder, self.settings)
        self.routes = SemanticRoutes(self.store, self.embedder, self.settings)
        self.classifier = Classifiers(self.store, self.embedder, self.settings)
        self.usage = Usage(self.store, self.registry, self.settings)
        self.analytics = Analytics(self.usage, self.registry)
        self.health = Health(self.usage, self.registry, self.settings)
        self.budgets = Budgets(self.store, self.usage, self.registry, self.settings)
        self.outcomes = OutcomeRouters(self.store, self.embedder, prepare=self._training_requests)
        self.store.table("agents")  # fail now, not at the first query, if the store was made by another embedder
        self.store.recover(wait=False)  # finish what a killed writer left half done, unless a writer is at work
        self._snapshot: RoutingSnapshot | None = None
        self._one_row_options: tuple[tuple[Any, ...], OptionColumns] | None = None

    @property
    def dim(self) -> int:
        return self.embedder.dim

    # -- registry -----------------------------------------------------------------------------------------------
    def register_agent(self, name: str, agent_type: str, capabilities: Sequence[str], **fields: Any) -> bool:
        """Register or replace one agent; ``fields``: any other agent field by name (cost_per_1k_tokens,
        cost_per_call, cost_per_second, avg_latency_ms, quality_score, metadata, description, examples,
        context_window, max_output_tokens, ...: ruvector_register_agent's parameters); an unknown name is an error."""
        return self.register_agents([dict(name=name, agent_type=agent_type, capabilities=capabilities,
                                          **fields)]) == 1

    def import_agents(self, log: Any, *, columns: Any = None, agent_type: str = "llm",
                      capabilities: Sequence[str] = ("general",)) -> pa.Table:
        """Register every agent of an outcome log, priced and scored by the log (``registry._import``); one row
        per agent registered: name, observed, quality_score, cost_per_call, cost_per_1k_tokens, avg_latency_ms."""
        found = agents_from_log(log, columns=columns, agent_type=agent_type, capabilities=capabilities)
        self.register_agents([{k: v for k, v in agent.items() if k != "observed"} for agent in found])
        return pa.Table.from_pylist([{f.name: agent[f.name] for f in IMPORT_TYPE} for agent in found],
                                    schema=pa.schema(list(IMPORT_TYPE)))

    def register_agents(self, agents: pa.Table | Sequence[Mapping[str, Any]] | Any) -> int:
        """Register or replace many agents in one write: an Arrow table, a polars frame or a list of dicts, with
        the agent fields (ruvector_register_agent's parameters, plus avg_output_tokens, p99_latency_ms,
        success_rate and active) as columns or keys; an unknown field is an error naming it."""
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

    @translate_text_errors
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

    @translate_text_errors
    def find_agents_by_capability(self, capability: str, limit: int = 10) -> pa.Table:
        return self.registry.find_by_capability(capability, limit)

    def update_agent_metrics(self, name: str, latency_ms: float, success: bool, quality: float | None = None) -> bool:
        return self.registry.update_metrics([name], [latency_ms], [success], [quality]) == 1

    # -- snapshot -----------------------------------------------------------------------------------------------
    def snapshot(self, as_of: Any = None) -> RoutingSnapshot:
        """Everything a decision reads, as of ``as_of`` (a datetime; default now).

        The snapshot of now is cached and reused while the tables it was built from keep their versions and time
        alone changes nothing (no circuit cools down, no budget period ends); each part is itself cached by its
        table's version, so a rebuild after a usage record re-reads nothing but what changed.
        """
        now_us = to_us(as_of)
        versions = {name: self.store.version(name) for name in SNAPSHOT_TABLES}
        cached = self._snapshot
        if as_of is None and cached is not None and cached.fresh_at(now_us, versions):
            return cached
        agents = self.registry.snapshot()
        names = agents.names
        budget_left, global_remaining, budget_until = self.budgets.left(names, now_us)
        circuit_open, circuit_until = self.health.open_circuits(names, now_us)
        classifier = self.classifier.newest()
        snapshot = build_routing_snapshot(
            agents=agents, routes=self.routes.snapshot(), classifier=classifier if classifier.fits(self.embedder.identity, self.dim) else None,
            outcome=self.outcomes.active(), circuit_open=circuit_open, over_budget=budget_left <= 0,
            global_remaining=global_remaining, settings=self.settings, embedder=self.embedder, as_of_us=now_us,
            versions=versions, valid_until_us=min((u for u in (budget_until, circuit_until) if u is not None),
                                                  default=None),
            budget_left=budget_left if np.isfinite(budget_left).any() else None)
        if as_of is None:
            self._snapshot = snapshot
        return snapshot

    def _training_requests(self, requests: Any, agents: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """An outcome log's embeddings and the router's cost estimate of each (request, agent), so the outcome
        router is calibrated in the prices it will route with; None when an agent of the log is not registered."""
        snapshot = self.snapshot()
        batch = requests_from(snapshot, requests)
        columns = [snapshot.agents.index.get(name) for name in agents]
        if None in columns:
            return batch.embeddings, None
        return batch.embeddings, estimated_cost(batch.tokens_in, snapshot.agents)[:, columns]

    # -- embedding and routing ----------------------------------------------------------------------------------
    @translate_text_errors
    def embed(self, texts: Any) -> np.ndarray:
        """float32 (n, D) unit rows; zero rows for NULL/blank texts."""
        return self.embedder.embed(as_texts("texts", texts))

    @translate_text_errors
    def route_struct(self, requests: Any, options: RouteOptions | None = None, *,
                     num_fallbacks: Any = NUM_FALLBACKS.default, explain: Any = EXPLAIN.default,
                     **values: Any) -> pa.StructArray:
        """The ruvector_route STRUCT for every request (the scalar SQL function calls this): the decision, up to
        ``num_fallbacks`` next candidates and, with ``explain``, every candidate's score breakdown. ``options``
        and ``values``: :class:`~tinydancer_duck.options.RouteOptions` (``values`` applied over ``options``)."""
        options = RouteOptions.of(options, **values)
        fallbacks, shown = NUM_FALLBACKS.value(num_fallbacks), EXPLAIN.value(explain)
        snapshot, now_us = self._live()
        batch = requests_from(snapshot, requests)
        decided = self._decide_live(snapshot, batch, OptionColumns.of(options, len(batch)), now_us)
        return decided.to_arrow(snapshot.agents, num_fallbacks=fallbacks, explain=shown)

    @translate_text_errors
    def route_one(self, request: Any, options: RouteOptions | None = None, *,
                  num_fallbacks: Any = NUM_FALLBACKS.default, explain: Any = True, **values: Any) -> dict[str, Any]:
        """One request's decision as a dict of ROUTE_FIELDS (None for NULL); the same decision as
        :meth:`route_struct`. The one-request SQL table form calls this: for one row, Arrow conversions would cost
        more than the routing itself.

        request : text, None, or one embedding (a sequence or numpy array of ``dim`` floats)
        """
        columns = self._options_of_one(options, values)
        fallbacks, shown = NUM_FALLBACKS.value(num_fallbacks), EXPLAIN.value(True if explain is None else explain)
        snapshot, now_us = self._live()
        batch = requests_from(snapshot, [request] if request is None or isinstance(request, str)
                              else one_embedding(request, self.dim))
        decided = self._decide_live(snapshot, batch, columns, now_us)
        return decided.row(0, snapshot.agents, num_fallbacks=fallbacks, explain=shown)

    def _options_of_one(self, options: RouteOptions | None, values: dict[str, Any]) -> OptionColumns:
        """``OptionColumns.of(RouteOptions.of(options, **values), 1)``, kept while a live caller asks with the same
        plain values (most callers do: checking the options and building their columns is a sixth of a one-request
        decision). The key holds each value's type and a copy of each list's items (a caller may change its list
        between calls; True is not 1); the columns are never written in place."""
        given = () if options is None else tuple(vars(options).items()) if isinstance(options, RouteOptions) else None
        key = None if given is None else _plain_key((given, tuple(values.items())))  # None: not kept
        last = self._one_row_options
        if key is not None and last is not None and last[0] == key:
            return last[1]
        columns = OptionColumns.of(RouteOptions.of(options, **values), 1)
        if key is not None:
            self._one_row_options = (key, columns)
        return columns

    def _decide_live(self, snapshot: RoutingSnapshot, batch: Requests, options: OptionColumns,
                     now_us: int) -> Decisions:
        """:func:`decide`; or, when budgets or rate-limited routes hold across calls, :func:`decide_metered` under
        the store ledger's lock with what other calls hold, then reserve what this call claims (README
        "Reliability")."""
        if not snapshot.metered:
            return decide(snapshot, batch, options, now_us=now_us)
        with self.store.ledger.open(now_us) as state:
            held = held_by_others(state, snapshot.versions["usage"], now_us)
            decided, claims = decide_metered(snapshot, batch, options, now_us=now_us, held_agents=held.per_agent,
                                             held_total=held.total, held_routes=held.routes)
            if snapshot.has_budgets:
                reserve(state, claims.costs, now_us + int(self.settings.reservation_ttl_s * 1_000_000))
            count_routes(state, claims.routes, now_us)
        return decided

    def _live(self) -> tuple[RoutingSnapshot, int]:
        """The snapshot of now and the moment a live call decides at (route conditions are checked then)."""
        return self.snapshot(), to_us(None)

    def route(self, requests: Any, options: RouteOptions | None = None, *, num_fallbacks: Any = NUM_FALLBACKS.default,
              explain: Any = EXPLAIN.default, **values: Any) -> pa.Table:
        """Route every request; one row per request: agent_name (NULL when none fits), confidence,
        estimated_cost, estimated_latency_ms, candidates, reasoning, fallbacks (the next candidates) and, with
        ``explain``, scores (every candidate's breakdown). ``pl.from_arrow`` gives a polars frame.

        options, values : :class:`~tinydancer_duck.options.RouteOptions`, or its fields by name
            (``engine.route(texts, optimize_for="cost", max_cost=0.01)``; values are applied over options).
        """
        return pa.Table.from_struct_array(self.route_struct(requests, options, num_fallbacks=num_fallbacks,
                                                            explain=explain, **values))

    @translate_text_errors
    def route_multi_struct(self, requests: Any, options: RouteOptions | None = None, *,
                           num_agents: Any = NUM_AGENTS.default, strategy: Any = STRATEGY.default,
                           **values: Any) -> pa.StructArray:
        """The ruvector_route_multi plan STRUCT per request; num_agents and strategy may be columns."""
        options = RouteOptions.of(options, **values)
        snapshot, now_us = self._live()
        batch = requests_from(snapshot, requests)
        n = len(batch)
        return decide_multi(snapshot, batch, OptionColumns.of(options, n),
                            strategies=per_row_values(STRATEGY, strategy, n),
                            counts=per_row_values(NUM_AGENTS, num_agents, n), now_us=now_us)

    def route_multi(self, request: Any, options: RouteOptions | None = None, *, num_agents: int = 3,
                    strategy: str = "pipeline", **values: Any) -> pa.Table:
        """Plan several agents for one request: one row per step (step, agent_name, capabilities, weight,
        estimated_cost, estimated_latency_ms). ``options``, ``values``: ruvector_route's."""
        plan = self.route_multi_struct([request] if isinstance(request, str) else request, options,
                                       num_agents=num_agents, strategy=strategy, **values)
        steps = plan.field("steps").flatten()
        return pa.Table.from_struct_array(steps) if len(steps) else pa.table(
            {f.name: pa.array([], f.type) for f in steps.type})

    def batch_route(self, requests: Any, *, optimize_for: str = "total_cost", budget: float | None = None,
                    **values: Any) -> pa.Table:
        """Decide a whole batch together: ``total_cost`` (cheapest feasible per request) or, with ``budget``, the
        most total expected quality within it (Lagrangian; the λ used is a column). One row per request.
        ``values``: ruvector_route's other options."""
        return pa.Table.from_struct_array(self.batch_route_struct(requests, optimize_for=optimize_for,
                                                                  budget=budget, **values))

    @translate_text_errors
    def batch_route_struct(self, requests: Any, *, optimize_for: Any = "total_cost", budget: Any = None,
                           **values: Any) -> pa.StructArray:
        objective, limit = check_batch_objective(optimize_for, budget, values.get("willingness_to_pay"))
        options = RouteOptions.of(optimize_for=per_request_objective(objective), **values)
        snapshot, now_us = self._live()
        batch = requests_from(snapshot, requests)
        decided = decide_batch(snapshot, batch, OptionColumns.of(options, len(batch)), objective=objective,
                               budget=limit, now_us=now_us)
        return decided.to_arrow(snapshot.agents)

    @translate_text_errors
    def semantic_match(self, queries: Any, top_k: Any = 3, *, ts: Any = None, user_tier: Any = None
                       ) -> pa.ListArray:
        """LIST<STRUCT(route_name, similarity, target_agent, confidence, target_registered)> per query (texts or
        embeddings); route conditions are checked at ``ts`` per row (NULL or none: now)."""
        x, valid = self.routes.queries(queries)
        snapshot, now_us = self._live()
        if ts is not None or not len(snapshot.routes.conditions.limited):
            return semantic_matches(snapshot, x, valid, top_k=top_k, ts=ts, user_tier=user_tier, now_us=now_us)
        with self.store.ledger.open(now_us) as state:  # live and rate limited: the limits hold across calls
            minute, index = now_us // US_PER_MIN, {name: i for i, name in enumerate(snapshot.route_names)}
            held = held_by_others(state, snapshot.versions["usage"], now_us).routes
            carried = {(index[r], minute): c for r, c in held.items() if r in index}
            matched = semantic_matches(snapshot, x, valid, top_k=top_k, ts=ts, user_tier=user_tier, now_us=now_us,
                                       carried=carried)
            count_routes(state, {snapshot.route_names[r]: c - held.get(snapshot.route_names[r], 0)
                                 for (r, m), c in carried.items() if m == minute}, now_us)
        return matched

    @translate_text_errors
    def classify_struct(self, requests: Any, top_k: int = TOP_K) -> pa.StructArray:
        """ruvector_classify_request: the top ``top_k`` (label, probability) sorted, top_category, confidence;
        NULL for NULL/blank requests."""
        x, valid = self.classifier.embeddings(requests)
        return classify(self.snapshot(), x, valid, top_k=top_k)

    # -- SQL ----------------------------------------------------------------------------------------------------
    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with every ruvector_* function bound to this engine."""
        from tinydancer_duck._connect import connect_engine

        return connect_engine(self)


def connect(store: str | Path | None = None, *, embedder: str | Embedder = "static",
            settings: Settings | None = None, storage_options: Mapping[str, str] | None = None
            ) -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB with the routing functions over the LanceDB store at ``store``.

    store : the LanceDB directory (default ``$TINYDANCER_HOME``, else ``~/.tinydancer``) or an object-store URI
        (with ``storage_options``); connections on one store see each other's writes.
    """
    return Engine(store, embedder=embedder, settings=settings, storage_options=storage_options).connect()
