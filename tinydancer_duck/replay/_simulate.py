"""Re-routing simulation: replay a request log under a policy with the engine's own router (DESIGN §1 job 2).

Decisions come from the router code that answers live requests: :func:`tinydancer_duck.routing._router.route` for the
per-request objectives, :func:`tinydancer_duck.routing._batch.batch_route` for ``total_cost`` and for ``budget := B`` (the
Lagrangian over the whole log), with the signals :meth:`Engine.signals` gives (classifier match, semantic routes, the
outcome router's predicted quality). A replay ignores today's circuit breakers and budgets: they describe now, not
the log's past.

Each decision is then evaluated against what the log knows (:mod:`tinydancer_duck.replay._frames`: quality observed,
a category mean, predicted or the agent's quality_score; cost logged or estimated). The summary counts how many
decisions each figure took from each source (the counts add up to ``routed``), carries the replay's warnings (agents
that differ between log and store, an in-sample outcome router) and, with a budget, what was spent against it: the
budget is held in the evaluation's cost (logged where the log has it), so ``budget_overrun`` is 0 unless the cheapest
choice for the requests served first already exceeds it.

Without a budget the log streams in record batches (bounded memory; ``progress(done, total)`` after each); with a
budget the per-(request, agent) matrices of the whole log are held (n·A·~40 bytes), not its embeddings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck._logs import DEFAULT_BATCH_ROWS
from tinydancer_duck._offpolicy import one_hot
from tinydancer_duck.options import Policy
from tinydancer_duck.routing import (
    BatchDecisions,
    OptionColumns,
    Requests,
    Signals,
    batch_route,
    per_request_objective,
    route,
)
from tinydancer_duck.snapshot import RoutingSnapshot

from ._evaluation import Evaluation, summary_figures, untried_warning
from ._frames import (
    COST_DETAIL_COUNTS,
    COST_SOURCES,
    QUALITY_SOURCES,
    SOURCE_COUNTS,
    Frame,
    LoggedSums,
    Replay,
    as_snapshot,
    source_counts,
)

Progress = Callable[[int, int], None]

ROW_TYPE = pa.struct([("row", pa.int64()), ("request_id", pa.string()), ("category", pa.string()),
                      ("agent_name", pa.string()), ("propensity", pa.float64()), ("expected_quality", pa.float64()),
                      ("quality", pa.float64()),
                      ("quality_source", pa.string()), ("cost", pa.float64()), ("cost_source", pa.string()),
                      ("estimated_cost", pa.float64()), ("latency_ms", pa.float64()), ("actual_agent", pa.string()),
                      ("actual_cost", pa.float64()), ("actual_quality", pa.float64()), ("reasoning", pa.string())])
#: The summary's figures that carry an interval (``<figure>_low``, ``<figure>_high``).
INTERVAL_FIGURES = ("mean_quality", "mean_cost", "total_cost", "savings", "savings_pct")
MIX_TYPE = pa.struct([("agent", pa.string()), ("requests", pa.int64()), ("share", pa.float64()),
                      ("cost", pa.float64()), ("quality", pa.float64())])
SUMMARY_TYPE = pa.struct([("rows", pa.int64()), ("routed", pa.int64()), ("total_cost", pa.float64()),
                          ("mean_cost", pa.float64()), ("cost_source", pa.string()),
                          ("mean_expected_quality", pa.float64()), ("expected_quality_source", pa.string()),
                          ("mean_quality", pa.float64()), ("quality_source", pa.string()),
                          ("realized_quality", pa.float64()), ("realized_rows", pa.int64()),
                          ("mean_latency_ms", pa.float64()), ("actual_total_cost", pa.float64()),
                          ("actual_mean_quality", pa.float64()), ("actual_over_window", pa.int64()),
                          ("savings", pa.float64()),
                          ("savings_pct", pa.float64()), ("agent_mix", pa.list_(MIX_TYPE)),
                          *((name, pa.int64()) for name in (*SOURCE_COUNTS, *COST_DETAIL_COUNTS)),
                          *((f"{figure}_{end}", pa.float64()) for figure in INTERVAL_FIGURES
                            for end in ("low", "high")),
                          ("quality_estimator", pa.string()), ("propensities", pa.string()),
                          ("interval_method", pa.string()), ("confidence", pa.float64()),
                          ("effective_sample_size", pa.float64()), ("untried_decisions", pa.int64()),
                          ("budget", pa.float64()), ("budget_overrun", pa.float64()),
                          ("warnings", pa.list_(pa.string())),
                          ("seconds", pa.float64()), ("rows_per_second", pa.float64())])


def simulate_frames(replay: Replay, *, optimize_for: str, budget: float | None, rows: int = DEFAULT_BATCH_ROWS,
                    progress: Progress | None = None) -> Iterator[tuple[Frame, np.ndarray, pa.Array, np.ndarray]]:
    """(frame, chosen agent int (n,) with -1 for none, reasoning, propensity float64 (n,)) per log batch, decided
    by the engine's router; the propensity is 1 for a deterministic choice (a budget, total_cost, no exploring)."""
    agents, settings = replay.agents, replay.routing.settings
    if budget is None:
        for frame in replay.frames(rows, progress):
            if optimize_for == "total_cost":
                decided = batch_route(frame.requests, agents, settings, optimize_for="total_cost", budget=None,
                                      options=frame.options, signals=frame.signals)
                yield frame, decided.agent, decided.reasoning, _certain(decided.agent)
            else:
                decided = route(frame.requests, frame.options, agents, settings, frame.signals)
                yield frame, decided.agent, decided.reasoning, decided.propensity
        return
    frames = [frame.light() for frame in replay.frames(rows, progress)]
    decided = budget_decisions(replay, frames, budget, optimize_for)
    agent, reasoning = decided.agent, decided.reasoning
    start = 0
    for frame in frames:
        stop = start + len(frame.log)
        yield frame, agent[start:stop], reasoning.slice(start, stop - start), _certain(agent[start:stop])
        start = stop


def _certain(agent: np.ndarray) -> np.ndarray:
    """The propensity of a deterministic choice: 1 where an agent was chosen, NaN where none was."""
    return np.where(agent >= 0, 1.0, np.nan)


def budget_decisions(replay: Replay, frames: list[Frame], budget: float, optimize_for: str = "quality"
                     ) -> BatchDecisions:
    """batch_route with ``budget`` over every frame at once (the match and expected quality are passed as
    signals, so no embeddings are needed)."""
    if not frames:
        return BatchDecisions(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.nan, pa.array([], pa.string()))
    n = sum(len(f.log) for f in frames)
    requests = Requests(np.zeros((n, 0), np.float32), np.concatenate([f.requests.valid for f in frames]),
                        np.concatenate([f.requests.tokens_in for f in frames]))
    unobserved = [f.signals.unobserved for f in frames]
    signals = Signals(match=np.concatenate([f.match for f in frames]),
                      quality=np.concatenate([f.expected for f in frames]),
                      cost=np.concatenate([f.cost for f in frames]),  # logged where known: the budget holds there
                      unobserved=None if unobserved[0] is None else np.concatenate(unobserved))
    objective = per_request_objective(optimize_for)
    options = OptionColumns.of(replace(replay.policy.options, optimize_for=objective), n)
    decided = batch_route(requests, replay.agents, replay.routing.settings, optimize_for=objective, budget=budget,
                          options=options, signals=signals)
    return decided


def _pick(matrix: np.ndarray, agent: np.ndarray) -> np.ndarray:
    chosen = agent >= 0
    return np.where(chosen, matrix[np.arange(len(agent)), np.maximum(agent, 0)], np.nan)


def decision_rows(replay: Replay, frame: Frame, agent: np.ndarray, reasoning: pa.Array,
                  propensity: np.ndarray) -> pa.RecordBatch:
    """The per-row simulation output (:data:`ROW_TYPE`) of one frame."""
    log, names = frame.log, replay.agents.names
    chosen = agent >= 0
    safe = pa.array(np.maximum(agent, 0), pa.int64())
    n = len(agent)

    def text(values: np.ndarray, codes: np.ndarray, vocabulary: tuple[str, ...]) -> pa.Array:
        return pa.array(np.asarray(vocabulary, dtype=object)[np.maximum(codes, 0)].tolist(), pa.string(), mask=~chosen)

    q_source = _pick(frame.quality_source.astype(np.float64), agent)
    c_source = _pick(frame.cost_source.astype(np.float64), agent)
    nulls = pa.nulls(n, pa.string())
    arrays = [
        pa.array(log.index, pa.int64()),
        log.columns.get("request_id", nulls), log.columns.get("category", nulls),
        pc.if_else(pa.array(chosen), names.take(safe), nulls),
        pa.array(propensity, pa.float64(), mask=~chosen),
        pa.array(_pick(frame.expected, agent), mask=~chosen),
        pa.array(_pick(frame.quality, agent), mask=~chosen),
        text(q_source, np.nan_to_num(q_source).astype(int), QUALITY_SOURCES),
        pa.array(_pick(frame.cost, agent), mask=~chosen),
        text(c_source, np.nan_to_num(c_source).astype(int), COST_SOURCES),
        pa.array(_pick(frame.estimated, agent), mask=~chosen),
        pa.array(np.where(chosen, replay.agents.latency_ms[np.maximum(agent, 0)], np.nan), mask=~chosen),
        log.columns.get("agent", nulls),
        pa.array(log.columns.get("cost", np.full(n, np.nan)), from_pandas=True),
        pa.array(log.columns.get("quality", np.full(n, np.nan)), from_pandas=True),
        reasoning.cast(pa.string()),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(list(ROW_TYPE)))


def simulate(source: RoutingSnapshot | Any, log: Any, policy: Policy | None = None, *, columns: Any = None,
             rows: int = DEFAULT_BATCH_ROWS, progress: Progress | None = None, keep_rows: bool = True,
             sink: Callable[[pa.RecordBatch], None] | None = None, **values: Any) -> tuple[pa.Table | None, dict]:
    """Replay ``log`` under a policy; returns (per-row decisions or None when ``keep_rows`` is false, summary dict).

    policy, values : a :class:`~tinydancer_duck.options.Policy`, or its fields and ruvector_route's options by name
        (``simulate(snapshot, log, optimize_for="cost", max_cost=0.01, budget=5)``; values apply over policy)
    columns : the log's column mapping (JSON text or a dict); rows : rows per batch
    sink : called with each batch of per-row decisions (e.g. a ParquetWriter's write_batch) as it is made

    The policy's ``estimate`` (``estimator``, ``confidence``, ``interval`` by name) says how the summary's figures
    and their intervals are estimated (:mod:`tinydancer_duck.replay._evaluation`).
    """
    chosen = Policy.of(policy, **values)
    started = time.perf_counter()
    replay = Replay(as_snapshot(source), log, chosen, columns=columns)
    evaluation = Evaluation.build(replay.evidence, chosen.estimate)
    summary = Summary(replay, chosen.budget, evaluation)
    kept = []
    for frame, agent, reasoning, propensity in simulate_frames(replay, optimize_for=chosen.optimize_for,
                                                               budget=chosen.budget, rows=rows, progress=progress):
        summary.add(frame, agent)
        if keep_rows or sink is not None:
            batch = decision_rows(replay, frame, agent, reasoning, propensity)
            if sink is not None:
                sink(batch)
            if keep_rows:
                kept.append(batch)
    table = pa.Table.from_batches(kept, schema=pa.schema(list(ROW_TYPE))) if keep_rows else None
    return table, summary.finish(time.perf_counter() - started)


class Summary:
    """Running totals of a simulation, finished into one :data:`SUMMARY_TYPE` dict."""

    def __init__(self, replay: Replay, budget: float | None = None, evaluation: Evaluation | None = None) -> None:
        self.replay = replay
        self.budget = budget
        self.evaluation = evaluation or Evaluation.build(replay.evidence)
        self.figures = self.evaluation.figures(replay.evidence)
        a = replay.agents.size
        self.rows = self.routed = self.realized_rows = 0
        self.cost = self.expected = self.latency = self.realized = 0.0
        self.expected_predicted = 0
        self.mix_requests, self.mix_cost, self.mix_quality = np.zeros(a, np.int64), np.zeros(a), np.zeros(a)
        self.logged = LoggedSums()
        self.actual_over_window = 0

    def add(self, frame: Frame, agent: np.ndarray) -> None:
        chosen = agent >= 0
        rows, picked = np.flatnonzero(chosen), agent[chosen]
        self.rows += len(agent)
        self.routed += len(rows)
        cost = frame.cost[rows, picked]
        quality = frame.quality[rows, picked]
        source = frame.quality_source[rows, picked]
        self.cost += float(cost.sum())
        self.expected += float(frame.expected[rows, picked].sum())
        self.expected_predicted += int(self.replay.predicted[picked].sum())
        self.realized += float(quality[source == 0].sum())
        self.realized_rows += int((source == 0).sum())
        self.latency += float(self.replay.agents.latency_ms[picked].sum())
        self.figures.add(frame, one_hot(agent, len(self.mix_requests)))
        self.mix_requests += np.bincount(picked, minlength=len(self.mix_requests))
        self.mix_cost += np.bincount(picked, weights=cost, minlength=len(self.mix_cost))
        self.mix_quality += np.bincount(picked, weights=quality, minlength=len(self.mix_quality))
        self.actual_over_window += self._over_window(frame)
        self.logged.add(frame)

    def _over_window(self, frame: Frame) -> int:
        """Logged requests whose logged agent could not have read them (tokens in + its output > its window): the
        log's own policy broke a constraint the router keeps (issue 18)."""
        agents, actual = self.replay.agents, frame.actual
        logged = np.flatnonzero(actual >= 0)
        if not len(logged) or not agents.windowed.any():
            return 0
        picked = actual[logged]
        need = frame.requests.tokens_in[logged] + agents.output_tokens[picked]
        return int((need > agents.context_window[picked]).sum())  # NaN window: unlimited, never over

    def finish(self, seconds: float) -> dict[str, Any]:
        routed = max(self.routed, 1)
        names = self.replay.names
        used = np.flatnonzero(self.mix_requests)
        mix = [{"agent": names[i], "requests": int(self.mix_requests[i]),
                "share": float(self.mix_requests[i] / routed), "cost": float(self.mix_cost[i]),
                "quality": float(self.mix_quality[i] / self.mix_requests[i])}
               for i in used[np.argsort(-self.mix_requests[used], kind="stable")]]
        actual_cost = self.logged.total_cost
        expected_source = "quality_score" if not self.expected_predicted else (
            self.replay.model_label if self.expected_predicted == self.routed
            else f"{self.replay.model_label} for {self.expected_predicted / routed:.0%}, else quality_score")
        none = self.routed == 0
        return {
            "rows": self.rows, "routed": self.routed,
            "cost_source": _shares(self.figures.cost_sources, COST_SOURCES),
            "mean_expected_quality": None if none else self.expected / routed,
            "expected_quality_source": expected_source,
            "quality_source": _shares(self.figures.quality_sources, QUALITY_SOURCES),
            "realized_quality": self.realized / self.realized_rows if self.realized_rows else None,
            "realized_rows": self.realized_rows,
            "mean_latency_ms": None if none else self.latency / routed,
            "actual_total_cost": actual_cost,
            "actual_mean_quality": self.logged.mean_quality,
            "actual_over_window": self.actual_over_window,
            "agent_mix": mix,
            **source_counts(self.figures.quality_sources, self.figures.cost_sources),
            **summary_figures(self.evaluation, self.figures, self.replay.evidence, actual_cost),
            "budget": self.budget,
            "budget_overrun": None if self.budget is None else max(0.0, self.cost - self.budget),
            "warnings": self.replay.warnings + untried_warning(round(self.figures.positivity), self.routed),
            "seconds": seconds, "rows_per_second": self.rows / seconds if seconds > 0 else None,
        }


def _shares(counts: np.ndarray, names: tuple[str, ...]) -> str:
    """'observed 75%, quality_score 25%' (sources with a share, largest first); '' when nothing was counted."""
    total = counts.sum()
    if not total:
        return ""
    order = np.argsort(-counts, kind="stable")
    return ", ".join(f"{names[i]} {counts[i] / total:.0%}" for i in order if counts[i])


__all__ = ["COST_SOURCES", "QUALITY_SOURCES", "Replay", "as_snapshot", "simulate"]
