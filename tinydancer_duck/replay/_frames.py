"""A log prepared for replay: batches of requests decided by the engine's router and evaluated against the log.

Each :class:`Frame` holds, over the snapshot's A agents, what the router expects (quality, estimated cost) and what
the evaluation uses (:mod:`tinydancer_duck.replay._evidence`). Quality of an (request, agent) pair, first available
of (:data:`QUALITY_SOURCES`): ``observed`` (the log's outcome for that agent on that row: a wide per-agent column, or
the logged choice's quality when it is that agent), ``category_mean`` (the agent's cross-fitted, shrunk mean on the
row's category across the log), ``predicted`` (the active outcome router), ``quality_score`` (the agent's
registered prior). Cost (:data:`COST_SOURCES`): ``logged`` (the log's per-agent cost, or the logged cost of the
logged choice), else ``per_token_price``, ``fitted_from_log`` or ``registered_price``; the counts group the last
three as ``estimated``.

A :class:`Replay` also says what a reader of its figures should know (:attr:`Replay.warnings`): agents of the log that
are not registered and registered agents the log never observed, and a replay that is in-sample for the active
outcome router (trained on this log, without the same ``holdout``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow.compute as pc

from tinydancer_duck._decide import requests_from, signals_for
from tinydancer_duck._logs import (
    DEFAULT_BATCH_ROWS,
    LogBatch,
    LogSpec,
    held_out,
    iter_batches,
    log_agents,
    open_log,
    resolved_path,
)
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.options import Policy
from tinydancer_duck.routing import OptionColumns, Requests, Signals, score_batch
from tinydancer_duck.snapshot import RoutingSnapshot

from ._costs import COST_SOURCES
from ._evidence import QUALITY_SOURCES, Evidence

#: A figure's count of decisions per source of their quality and cost (each group adds up to the decisions made).
SOURCE_COUNTS = (*(f"{source}_rows" for source in QUALITY_SOURCES), "logged_cost_rows", "estimated_cost_rows")
#: The estimated costs' count per source (adding up to ``estimated_cost_rows``).
COST_DETAIL_COUNTS = tuple(f"{source}_cost_rows" for source in COST_SOURCES[1:])
_NAMED = 5  # agents named in a warning before "+N more"


@dataclass(frozen=True)
class Frame:
    """One log batch prepared for decisions and evaluation; (n, A) matrices over the snapshot's agents.

    expected : the router's expected quality; quality/quality_source : the evaluation quality q̃ and its source code
    (index into QUALITY_SOURCES); cost/cost_source : evaluation cost and its source (index into COST_SOURCES);
    estimated : the router's cost estimate; actual : int (n,) the logged agent (-1: none or unknown); reward,
    propensity : float (n,) its logged outcome and propensity (NaN: none); q_hat, q_noise, cost_noise, code, tried:
    see :class:`~tinydancer_duck.replay._evidence.Quality`.
    """

    log: LogBatch
    requests: Requests
    options: OptionColumns
    signals: Signals
    expected: np.ndarray
    estimated: np.ndarray
    candidate: np.ndarray
    match: np.ndarray
    quality: np.ndarray
    quality_source: np.ndarray
    cost: np.ndarray
    cost_source: np.ndarray
    actual: np.ndarray
    reward: np.ndarray
    propensity: np.ndarray
    q_hat: np.ndarray
    q_noise: np.ndarray
    cost_noise: np.ndarray
    code: np.ndarray
    tried: np.ndarray

    def rows(self, keep: np.ndarray) -> Frame:
        """The evaluation arrays of the rows where ``keep`` (bool (n,)) is true (what a figure needs)."""
        names = ("quality", "quality_source", "cost", "cost_source", "actual", "reward", "propensity", "q_hat",
                 "q_noise", "cost_noise", "code", "tried")
        return replace(self, **{name: getattr(self, name)[keep] for name in names})

    def light(self) -> Frame:
        """The frame without embeddings and per-row signals (what a whole-log budget needs to keep)."""
        n = len(self.requests)
        return replace(self, requests=Requests(np.zeros((n, 0), np.float32), self.requests.valid,
                                               self.requests.tokens_in),
                       signals=Signals(unobserved=self.signals.unobserved))


class Replay:
    """Streams a log as :class:`Frame` batches for one routing snapshot, policy and column mapping.

    snapshot : the snapshot to replay with; its live state (circuit breakers, budgets) is dropped, since it
        describes now, not the log's past.
    policy : the routing options every request is decided with (a willingness to pay routes by expected quality -
        cost / w, as ruvector_route does); ``observed_only`` chooses only among the agents whose outcome the log
        holds for that request, so every quality figure is observed (no category mean, prediction or prior);
        ``holdout`` replays only the share of requests ``train-outcomes --holdout`` kept out of training.
    """

    def __init__(self, snapshot: RoutingSnapshot, log: Any, policy: Policy, *, columns: Any = None) -> None:
        self.routing = snapshot.for_replay()
        self.agents = self.routing.agents
        if not self.agents.size:
            raise InvalidArgument("agents", "none registered", "register agents before simulating a log "
                                  "(tinydancer agents import LOG registers the log's own)")
        self.names = self.agents.name_list()
        self.spec: LogSpec = open_log(log, agents=self.names, columns=columns)
        self.policy = policy
        self.objective = policy.optimize_for
        self.observed_only = policy.observed_only
        self.holdout = policy.holdout
        model = self.routing.outcome
        self.predicted = self.routing.outcome_columns >= 0
        self.model_label = (f"outcome router {model.metrics.get('name')!r} version {model.metrics.get('version')}"
                            if model is not None else None)
        self.evidence = Evidence.fit(self.spec, self.agents, self.routing.settings.bytes_per_token)
        self.n_rows = self.spec.n_rows
        self.warnings = self._agent_warnings(log, columns) + self._sample_warnings()
        self.ranked = self.predicted & self._learned_elsewhere()

    def included(self) -> np.ndarray:
        """bool (A,): the agents the policy may choose at all, every one but its ``excluded_agents`` (a list given
        once for the whole log; a per-row column excludes per request only)."""
        excluded = self.policy.options.excluded_agents
        excluded = set(excluded) if isinstance(excluded, tuple) else set()
        return np.array([name not in excluded for name in self.names], bool)

    def _agent_warnings(self, log: Any, columns: Any) -> list[str]:
        """The log's agents that are not registered (their outcomes are ignored) and registered agents the log
        never observed (their quality comes from a category mean, the outcome router or their prior)."""
        in_log = log_agents(open_log(log, columns=columns))
        registered = set(self.names)
        missing = [a for a in in_log if a not in registered]
        unseen = [a for a in self.names if a not in set(in_log)] if in_log else []
        out = []
        if missing:
            out.append(f"{len(missing)} agent(s) of the log are not registered, so their outcomes are ignored: "
                       f"{_listed(missing)} (tinydancer agents import LOG registers them)")
        if unseen:
            out.append(f"{len(unseen)} registered agent(s) never appear in the log, so their quality is not "
                       f"observed: {_listed(unseen)}")
        return out

    def _learned_elsewhere(self) -> bool:
        """The active outcome router learned from other requests than this log's (another log, or data given to
        it directly): its predictions are then a prior independent of the log's outcomes, which the outcome model
        may shrink toward (:meth:`Evidence.quality`). Trained on this log, even on its other requests, it shares
        their outcomes and a policy that follows it picks the agents whose few outcomes looked best."""
        model = self.routing.outcome
        trained = {} if model is None else model.metrics.get("log") or {}
        return model is not None and trained.get("path") != resolved_path(self.spec.path)

    def _sample_warnings(self) -> list[str]:
        """In-sample: the active outcome router was trained on this very log and the replay does not keep to the
        requests its training held out."""
        model = self.routing.outcome
        trained = {} if model is None else model.metrics.get("log") or {}
        if trained.get("path") != resolved_path(self.spec.path) or trained.get("rows") != self.n_rows:
            return []
        held = trained.get("holdout")
        if held is not None and self.holdout == held:
            return []
        fix = (f"replay with holdout {held} (the share it kept out)" if held is not None
               else "train with --holdout FRACTION, then simulate with the same --holdout")
        warning = (f"in-sample: {self.model_label} was trained on this log, so its predicted quality has seen these "
                   f"outcomes; {fix}")
        return [warning]

    def frames(self, rows: int = DEFAULT_BATCH_ROWS, progress: Callable[[int, int], None] | None = None
               ) -> Iterator[Frame]:
        """The log's frames, batch by batch (with ``holdout``, only the held-out requests); ``progress(read,
        n_rows)`` after each batch is used, counting the log's rows read (held out or not), so it ends at n_rows."""
        snapshot, read = self.routing, 0
        for log in iter_batches(self.spec, self.names, rows=rows):
            read += len(log)
            if self.holdout is not None:
                log = log.take(held_out(log.request, self.holdout))
            if len(log):
                batch = requests_from(snapshot, log.request)
                signals, options = signals_for(snapshot, batch, OptionColumns.of(self.policy.options, len(batch)))
                observed, cost, actual = self._observed(log)
                if self.observed_only:
                    signals = replace(signals, unobserved=np.isnan(observed))
                scored = score_batch(batch, options, self.agents, snapshot.settings, signals)
                yield self._frame(log, batch, options, signals, scored, observed, cost, actual)
            if progress is not None:
                progress(read, self.n_rows)

    def _observed(self, log: LogBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(observed outcome, logged cost) float64 (n, A), NaN where the log has none, and the logged agent."""
        n = len(log)
        actual = np.full(n, -1)
        if "agent" in log.columns:
            actual = pc.index_in(log.columns["agent"], value_set=self.agents.names).fill_null(-1).to_numpy(
                zero_copy_only=False).astype(np.int64)
        rows = np.flatnonzero(actual >= 0)
        observed, cost = log.outcome.copy(), log.outcome_cost.copy()
        for matrix, name in ((observed, "quality"), (cost, "cost")):
            if name in log.columns:
                fill = np.isnan(matrix[rows, actual[rows]])
                matrix[rows[fill], actual[rows[fill]]] = log.columns[name][rows[fill]]
        return observed, cost, actual

    def _frame(self, log: LogBatch, batch: Requests, options: OptionColumns, signals: Signals, scored: Any,
               observed: np.ndarray, cost: np.ndarray, actual: np.ndarray) -> Frame:
        n, a = len(batch), self.agents.size
        expected = np.array(np.broadcast_to(scored.quality, (n, a)), np.float64)
        quality = self.evidence.quality(log, observed, actual, self.predicted, expected, self.agents.quality,
                                        ranked=self.ranked)
        cost, cost_source, cost_noise = self.evidence.costs(log, quality.code, scored.cost, cost)
        nothing = np.full(n, np.nan)
        reward = np.where(actual >= 0, observed[np.arange(n), np.maximum(actual, 0)], np.nan)
        propensity = np.where(actual >= 0, log.columns.get("propensity", nothing), np.nan)
        return Frame(log, batch, options, signals, expected, scored.cost, scored.candidate, scored.match,
                     quality.quality, quality.source, cost, cost_source, actual, reward, propensity, quality.q_hat,
                     quality.noise, cost_noise, quality.code, quality.tried)


def source_counts(quality: np.ndarray, cost: np.ndarray) -> dict[str, int]:
    """The decisions per source (:data:`SOURCE_COUNTS` and :data:`COST_DETAIL_COUNTS`) from their counts per
    QUALITY_SOURCES and COST_SOURCES (a stochastic policy's are expected counts, rounded)."""
    quality, cost = [round(float(c)) for c in quality], [round(float(c)) for c in cost]
    return {**dict(zip(SOURCE_COUNTS, [*quality, cost[0], sum(cost[1:])])), **dict(zip(COST_DETAIL_COUNTS, cost[1:]))}


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_NAMED])
    return shown + (f", +{len(names) - _NAMED} more" if len(names) > _NAMED else "")


@dataclass
class LoggedSums:
    """Running totals of the log's own choices over its frames: the sum of its cost column and the mean of its
    quality column, each over the rows that log one (what "actual" means in a summary, a what-if and a report)."""

    cost: float = 0.0
    cost_rows: int = 0
    quality: float = 0.0
    quality_rows: int = 0

    def add(self, frame: Frame) -> None:
        for name in ("cost", "quality"):
            values = frame.log.columns.get(name)
            if values is not None:
                known = ~np.isnan(values)
                setattr(self, name, getattr(self, name) + float(values[known].sum()))
                setattr(self, f"{name}_rows", getattr(self, f"{name}_rows") + int(known.sum()))

    @property
    def total_cost(self) -> float | None:
        return self.cost if self.cost_rows else None

    @property
    def mean_quality(self) -> float | None:
        return self.quality / self.quality_rows if self.quality_rows else None


def actual_point(total_cost: float | None, mean_quality: float | None, requests: int) -> dict[str, Any] | None:
    """The log's actual policy as the charts and tables draw it (total_cost, cost per request, quality, requests);
    None when the log has no cost of a choice made."""
    if total_cost is None:
        return None
    return {"total_cost": total_cost, "cost": total_cost / max(requests, 1), "quality": mean_quality,
            "requests": requests}


def constraints_only(policy: Policy | None, values: dict[str, Any], what: str) -> Policy:
    """The policy of a replay that sweeps the choice itself (the curve, the what-if): its constraints only; an
    objective, a willingness to pay or a budget is an error naming it."""
    chosen = Policy.of(policy, **values)
    for name, value in (("optimize_for", values.get("optimize_for")), ("budget", chosen.budget),
                        ("willingness_to_pay", chosen.options.willingness_to_pay),
                        ("explore", chosen.options.explore)):
        if value is not None:
            raise InvalidArgument(name, value, f"does not apply to {what}, which sweeps the choice itself")
    return Policy.of(chosen, optimize_for="quality")


def as_snapshot(source: RoutingSnapshot | Any) -> RoutingSnapshot:
    """The snapshot to replay with: ``source`` itself, or an Engine's snapshot of now (the Python API's
    convenience; a replay itself only ever sees a snapshot)."""
    if isinstance(source, RoutingSnapshot):
        return source
    snapshot = getattr(source, "snapshot", None)
    if not callable(snapshot):
        raise InvalidArgument("snapshot", type(source).__name__, "must be a RoutingSnapshot or an Engine")
    return snapshot()
