"""The one decision path: pure functions of a :class:`~tinydancer_duck.snapshot.RoutingSnapshot` and a batch.

The SQL UDFs, the Python API, replays and what-ifs all call these, so a live request and a replayed one are decided
by the same code. Nothing here reads a store or a clock: time comes in as ``now_us`` (the moment the caller decides
at) or per-row ``ts_us``.

- :func:`requests_from` turns texts or embeddings into a :class:`~tinydancer_duck.routing.Requests` batch;
- :func:`signals_for` is what the snapshot adds to the router for a batch (classifier match, the outcome router's
  expected quality, the best semantic route, open circuits, agents over budget, the global budget's cap);
- :func:`decide`, :func:`decide_multi` and :func:`decide_batch` route with those signals;
- :func:`semantic_matches` and :func:`classify` answer ``ruvector_semantic_route`` and
  ``ruvector_classify_request`` from the same snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.embed import (
    ROUTE_MARGIN,
    blank_texts,
    embedding_matrix,
    few_python_texts,
    is_vector_input,
    nonzero_rows,
)
from tinydancer_duck.errors import InvalidArgument, ModelError
from tinydancer_duck.learn import capability_match, classification_arrow, top_classes
from tinydancer_duck.registry import tokens_from_bytes
from tinydancer_duck.routing import (
    LEARNED,
    NO_SIGNALS,
    BatchDecisions,
    Decisions,
    OptionColumns,
    Requests,
    Signals,
    batch_route,
    check_strategy,
    route,
    route_multi,
)
from tinydancer_duck.semantic import US_PER_MIN, check_top_k, epoch_us, match_routes, matches_arrow, user_tiers
from tinydancer_duck.snapshot import RoutingSnapshot


# -- requests ---------------------------------------------------------------------------------------------------
def requests_from(snapshot: RoutingSnapshot, requests: Any) -> Requests:
    """A :class:`Requests` batch from texts (a list or an Arrow string column) or embeddings (numpy (n, D) or Arrow
    lists); tokens_in from the texts' UTF-8 bytes (DESIGN §5 step 2), a setting for embeddings."""
    settings = snapshot.settings
    if isinstance(requests, str):
        requests = [requests]
    if isinstance(requests, pa.ChunkedArray):
        requests = requests.combine_chunks() if requests.num_chunks != 1 else requests.chunk(0)
    if is_vector_input(requests):
        x, valid = embedding_matrix(requests, snapshot.dim, argument="request")
        return Requests(x, valid, np.full(len(valid), settings.input_tokens_for_embeddings))
    if few_python_texts(requests):  # a one-request call: no Arrow array (the embedder decides if it needs one)
        byte_lengths = np.array([len(t.encode()) if t else 0 for t in requests])
    else:
        if not isinstance(requests, pa.Array):
            try:
                requests = pa.array(list(requests), pa.string())
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
                raise InvalidArgument("request", requests, "must be text or an embedding") from None
        if not (pa.types.is_string(requests.type) or pa.types.is_large_string(requests.type)):
            raise InvalidArgument("request", str(requests.type), "must be text or an embedding")
        lengths = pc.binary_length(requests)
        lengths = lengths.fill_null(0) if lengths.null_count else lengths  # fill_null costs ~20 µs even on none
        byte_lengths = lengths.to_numpy(zero_copy_only=False)
    blank = blank_texts(requests)
    read = getattr(snapshot.embedder, "embed_read", None)
    if read is not None:
        x, counts, known, total = read(requests)
        return Requests(x, ~blank, tokens_from_bytes(byte_lengths, settings, counts, snapshot.embedder.max_tokens,
                                                     getattr(snapshot.embedder, "read_bytes", None)), known, total)
    x = snapshot.embedder.embed(requests)
    # an embedder that does not say what it read: a text it made nothing of (all zeros) is no evidence
    readable = nonzero_rows(x).astype(np.int64)
    return Requests(x, ~blank, tokens_from_bytes(byte_lengths, settings), readable, np.ones(len(x), np.int64))


# -- signals ----------------------------------------------------------------------------------------------------
def signals_for(snapshot: RoutingSnapshot, batch: Requests, options: OptionColumns, *, now_us: int | None = None,
                ts_us: np.ndarray | None = None, carried: dict[tuple[int, int], int] | None = None
                ) -> tuple[Signals, OptionColumns]:
    """What the snapshot adds to the router for ``batch``, and the options with the global budget's cap.

    Open circuits and agents past their own budget stop being candidates; a global budget caps every request's
    budget_remaining at what is left of it. Semantic-route conditions are checked at ``ts_us`` (per row), else at
    ``now_us``, else at the snapshot's ``as_of``; ``carried``: route matches other calls counted (rate limits).
    """
    options = learned_options(snapshot, options)
    agents = snapshot.agents
    if not agents.size:
        return NO_SIGNALS, options
    if not np.isnan(snapshot.global_remaining):
        options = replace(options, budget_remaining=np.fmin(options.budget_remaining, snapshot.global_remaining))
    signals = Signals(match=_classifier_match(snapshot, batch),
                      circuit_open=snapshot.circuit_open if snapshot.circuit_open.any() else None,
                      over_budget=snapshot.over_budget if snapshot.over_budget.any() else None,
                      quality=_expected_quality(snapshot, batch),
                      **_semantic_route(snapshot, batch, now_us, ts_us, carried))
    return signals, options


def learned_options(snapshot: RoutingSnapshot, options: OptionColumns) -> OptionColumns:
    """``optimize_for='learned'`` rows routed by the willingness to pay the active outcome router was calibrated to
    (cross-fitted on its training log, :mod:`tinydancer_duck.learn._calibrate`)."""
    if not (options.objective == LEARNED).any():
        return options
    model = snapshot.outcome
    value = None if model is None else model.default_willingness_to_pay
    if value is None:
        raise InvalidArgument("optimize_for", "learned", "needs a calibrated outcome router for this store's agents "
                              "and embedder: train one (ruvector_train_outcome_router or tinydancer train-outcomes)")
    return options.with_willingness_to_pay(value)


def _classifier_match(snapshot: RoutingSnapshot, batch: Requests) -> np.ndarray | None:
    """(n, A) probability mass on each agent's capabilities, when the classifier predicts capabilities (a model
    trained on capability names); a model of other labels (the shipped CLINC150 intents) leaves cosine matching."""
    model = snapshot.classifier
    if model is None or not snapshot.classifier_matches:
        return None
    agents = snapshot.agents
    return capability_match(model.probabilities(batch.embeddings), model.label_array, agents.has_capability,
                            agents.capability_vocab)


def _expected_quality(snapshot: RoutingSnapshot, batch: Requests) -> np.ndarray | None:
    """float64 (n, A) the outcome router's expected quality (agents it does not know keep their quality_score)."""
    if snapshot.outcome is None:
        return None
    return snapshot.outcome.expected_quality(batch.embeddings, snapshot.outcome_columns, snapshot.agents.quality)


def _semantic_route(snapshot: RoutingSnapshot, batch: Requests, now_us: int | None,
                    ts_us: np.ndarray | None, carried: dict[tuple[int, int], int] | None = None) -> dict[str, Any]:
    """Signals fields for the best semantic route per request (none when the store has no routes)."""
    routes = snapshot.routes
    if not routes.size:
        return {}
    n = len(batch)
    times = ts_us if ts_us is not None else np.full(n, snapshot.as_of_us if now_us is None else now_us, np.int64)
    listed, sims, _ = match_routes(routes, batch.embeddings, batch.valid, times,
                                   routes.conditions.tier_codes(None, n), k=2, carried=carried)
    if not listed.shape[1]:
        return {}
    found = np.isfinite(sims[:, 0])  # lists are padded with -inf similarities where fewer routes pass
    best = np.where(found, listed[:, 0], -1)
    similarity = np.where(found, sims[:, 0], np.nan)
    if listed.shape[1] == 2 and ROUTE_MARGIN > 0:  # a runner-up to another target within the margin: no decision
        codes = routes.target_codes
        other = np.isfinite(sims[:, 1]) & (codes[np.maximum(listed[:, 1], 0)] != codes[np.maximum(best, 0)])
        with np.errstate(invalid="ignore"):  # -inf - -inf where no route is listed: not 'other' anyway
            close = sims[:, 0] - sims[:, 1] < ROUTE_MARGIN
        best = np.where(other & close, -1, best)
    matched = best >= 0
    target = np.where(matched, snapshot.route_target[np.maximum(best, 0)], -1)
    return {"route": np.where(matched, best, -1), "route_target": target, "route_names": snapshot.route_names,
            "route_similarity": similarity, "route_threshold": routes.threshold[np.maximum(best, 0)]}


# -- decisions --------------------------------------------------------------------------------------------------
def decide(snapshot: RoutingSnapshot, batch: Requests, options: OptionColumns, *, now_us: int | None = None,
           ts_us: np.ndarray | None = None) -> Decisions:
    """Route every request of ``batch`` (:func:`tinydancer_duck.routing.route` with the snapshot's signals)."""
    signals, options = signals_for(snapshot, batch, options, now_us=now_us, ts_us=ts_us)
    return route(batch, options, snapshot.agents, snapshot.settings, signals)


@dataclass(frozen=True)
class Claims:
    """What live decisions take from the shared budgets and rate limits: agent -> (estimated cost, requests), and
    route -> matches in the current minute."""

    costs: dict[str, tuple[float, int]]
    routes: dict[str, int]


def decide_metered(snapshot: RoutingSnapshot, batch: Requests, options: OptionColumns, *, now_us: int,
                   held_agents: Mapping[str, float], held_total: float, held_routes: Mapping[str, int]
                   ) -> tuple[Decisions, Claims]:
    """:func:`decide` for live calls when budgets or route rate limits hold across calls and processes.

    held_agents, held_total : spend other calls hold (reserved, or recorded but not yet in the snapshot's usage),
        per agent and in all; held_routes : route -> matches other calls counted this minute.
    Requests are taken in row order: each sees the budget the rows before it left, so one call cannot spend a
    budget many times over (an agent's own budget stops it once nothing is left; the global budget caps each
    request's estimated cost at what is left). A row whose choice no longer fits is decided again with what is
    left (at most :data:`METERED_PASSES` times; rows still over then get no agent). Returns the decisions and what
    they claim. Pure: the caller reads and writes the ledger.
    """
    names = snapshot.agents.name_list()
    left = (snapshot.budget_left if snapshot.budget_left is not None else np.full(len(names), np.inf)) \
        - np.array([held_agents.get(name, 0.0) for name in names], dtype=np.float64)
    total = snapshot.global_remaining - held_total
    minute = now_us // US_PER_MIN
    index = {name: i for i, name in enumerate(snapshot.route_names)}
    counted = {(index[r], minute): c for r, c in held_routes.items() if r in index}
    parts: list[Decisions] = []
    claims = Claims({}, {})
    start, n = 0, len(batch)
    for attempt in range(METERED_PASSES + 1):
        rows = np.arange(start, n)
        sub_batch, sub_options = (batch, options) if start == 0 else (batch.take(rows), options.take(rows))
        capped = replace(snapshot, over_budget=snapshot.over_budget | (left <= 0), global_remaining=total)
        signals, sub_options = signals_for(capped, sub_batch, sub_options, now_us=now_us, carried=dict(counted))
        decided = route(sub_batch, sub_options, capped.agents, capped.settings, signals)
        fits = _fitting_prefix(decided, left, total) if capped.has_budgets else len(rows)
        if fits < len(rows) and attempt == METERED_PASSES:
            decided, fits = _none_left(decided, fits), len(rows)
        accepted = decided if fits == len(rows) else decided.take(slice(0, fits))
        parts.append(accepted)
        left, total = _claim(claims, accepted, names, left, total)
        for route_index in (signals.route[:fits] if signals.route is not None else ()):
            if route_index >= 0 and snapshot.routes.conditions.rate_limit[route_index] >= 0:
                name = snapshot.route_names[route_index]
                claims.routes[name] = claims.routes.get(name, 0) + 1
                counted[(int(route_index), minute)] = counted.get((int(route_index), minute), 0) + 1
        start += fits
        if start >= n:
            break
    return Decisions.concat(parts), claims


#: Re-decisions of a metered call's remaining rows when a budget runs out part way through it.
METERED_PASSES = 16
_SLACK = 1e-9


def _fitting_prefix(decided: Decisions, left: np.ndarray, total: float) -> int:
    """How many leading rows fit the budgets in order: the global total covers their estimated costs so far, and
    no row takes an agent whose own budget the rows before it used up."""
    cost = np.where(decided.agent >= 0, decided.estimated_cost, 0.0)
    fits = len(cost)
    if not np.isnan(total):
        over = np.flatnonzero(np.cumsum(cost) > total + _SLACK * max(1.0, abs(total)))
        fits = min(fits, int(over[0])) if len(over) else fits
    for agent in np.flatnonzero(np.isfinite(left)):
        mine = decided.agent == agent
        if mine.any():
            before = np.cumsum(np.where(mine, cost, 0.0)) - np.where(mine, cost, 0.0)
            over = np.flatnonzero(mine & (before >= left[agent]))
            fits = min(fits, int(over[0])) if len(over) else fits
    return fits


def _claim(claims: Claims, accepted: Decisions, names: list[str], left: np.ndarray, total: float
           ) -> tuple[np.ndarray, float]:
    """Add the accepted rows' agents and estimated costs to ``claims``; the budgets left after them."""
    chosen = accepted.agent >= 0
    if not chosen.any():
        return left, total
    agents, cost = accepted.agent[chosen], accepted.estimated_cost[chosen]
    spent = np.bincount(agents, weights=cost, minlength=len(names))
    counts = np.bincount(agents, minlength=len(names))
    for a in np.flatnonzero(counts):
        old_cost, old_count = claims.costs.get(names[a], (0.0, 0))
        claims.costs[names[a]] = (old_cost + float(spent[a]), old_count + int(counts[a]))
    return left - spent, total - float(cost.sum())


def _none_left(decided: Decisions, fits: int) -> Decisions:
    """The decisions with every row from ``fits`` on left without an agent: earlier rows took the budget."""
    return decided.without_agent_from(fits, "no agent: earlier requests of this call used the budget that was left")


def decide_multi(snapshot: RoutingSnapshot, batch: Requests, options: OptionColumns, *, strategies: list[Any],
                 counts: list[Any], now_us: int | None = None) -> pa.StructArray:
    """The ruvector_route_multi plan STRUCT per request; ``strategies`` and ``counts`` hold one value per request
    (rows sharing a (strategy, num_agents) pair are planned together, then put back in order)."""
    signals, options = signals_for(snapshot, batch, options, now_us=now_us)
    agents, settings = snapshot.agents, snapshot.settings
    pairs = sorted({(s, k) for s, k in zip(strategies, counts)}, key=repr) or [("pipeline", 3)]  # no rows
    if len(pairs) == 1:
        chosen, k = check_strategy(*pairs[0])
        return route_multi(batch, options, agents, settings, strategy=chosen, num_agents=k,
                           signals=signals).to_arrow(agents)
    parts, order = [], []
    for pair in pairs:
        rows = np.flatnonzero([(s, k) == pair for s, k in zip(strategies, counts)])
        chosen, k = check_strategy(*pair)
        plans = route_multi(batch.take(rows), options.take(rows), agents, settings, strategy=chosen, num_agents=k,
                            signals=signals.take(rows))
        parts.append(plans.to_arrow(agents))
        order.append(rows)
    inverse = np.argsort(np.concatenate(order), kind="stable")
    return pa.concat_arrays(parts).take(pa.array(inverse, pa.int64()))


def decide_batch(snapshot: RoutingSnapshot, batch: Requests, options: OptionColumns, *, objective: str,
                 budget: float | None, now_us: int | None = None) -> BatchDecisions:
    """Decide a whole batch together (``total_cost``, a per-request objective, or a total ``budget``)."""
    signals, options = signals_for(snapshot, batch, options, now_us=now_us)
    return batch_route(batch, snapshot.agents, snapshot.settings, optimize_for=objective, budget=budget,
                       options=options, signals=signals)


# -- semantic routes and classification ------------------------------------------------------------------------
def semantic_matches(snapshot: RoutingSnapshot, x: np.ndarray, valid: np.ndarray, *, top_k: Any = 3,
                     ts: Any = None, user_tier: Any = None, now_us: int | None = None,
                     carried: dict[tuple[int, int], int] | None = None) -> pa.ListArray:
    """LIST<STRUCT(route_name, similarity, target_agent, confidence, target_registered)> per query: the best route
    first, then the others by similarity, at most ``top_k``, only routes passing threshold and conditions.
    carried : route matches counted before (rate limits across calls), updated with this call's."""
    routes, n = snapshot.routes, len(valid)
    k = check_top_k(top_k)
    now = snapshot.as_of_us if now_us is None else now_us
    ts_us = np.full(n, now, np.int64) if ts is None else epoch_us(ts, n, now_us=now)
    tiers = routes.conditions.tier_codes(user_tiers(user_tier, n), n)
    idx, sim, conf = match_routes(routes, x, valid, ts_us, tiers, k=k, carried=carried)
    return matches_arrow(routes, idx, sim, conf, snapshot.route_target >= 0)


def classify(snapshot: RoutingSnapshot, x: np.ndarray, valid: np.ndarray, *, top_k: int) -> pa.StructArray:
    """ruvector_classify_request: the top ``top_k`` (label, probability), top_category and confidence per row with
    the snapshot's classifier; NULL for invalid rows. ModelError when no classifier fits the embedder."""
    model = snapshot.classifier
    if model is None:
        raise ModelError("no route classifier is active for this store's embedder; train one "
                         "(ruvector_train_classifier)")
    model.check_embedder(snapshot.embedder_identity, snapshot.dim, name=model.display_name)
    index, probs = top_classes(model.probabilities(x), top_k)
    return classification_arrow(index, probs, model.label_array, valid)
