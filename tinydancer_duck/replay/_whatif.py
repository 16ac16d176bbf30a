"""Budget what-if: what each total budget would have bought over a log (DESIGN §1 job 3).

For every budget B the log's requests are allocated together by the router's Lagrangian batch allocation
(:func:`tinydancer_duck.routing._batch.batch_route` with ``budget := B``: maximize total expected quality subject to total
cost <= B, λ by bisection, leftover spent on the best quality-per-dollar upgrades; when B cannot pay for the cheapest
agent everywhere, the cheapest requests are served first). The cost the allocation is held to is the log's per-agent
cost where the log has one (the router's estimate elsewhere), so ``spend`` stays within B and ``budget_overrun``
reports the rare case it cannot. Budgets are totals for the whole log (last month's log, monthly budgets). Each row
reports the spend and quality measured as a simulation measures them, the router's estimate of that spend, the
willingness to pay the budget implies (1/λ: ``ruvector_route(willingness_to_pay := w)`` makes the same choices before
the upgrades), requests served, the agent mix (polars group-by) and the decisions behind each figure's source.

``quality_threshold`` marks the budgets whose allocation serves every request at a mean expected quality at or above
it (and the cheapest such budget); the policy's ``max_latency_ms`` removes agents slower than it on average.

:func:`whatif_frontier` returns, from the same pass over the log, what a what-if chart draws beside the budgets:
each single agent (always that agent) and the log's own policy, so the chart costs no second replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from tinydancer_duck._logs import DEFAULT_BATCH_ROWS
from tinydancer_duck._offpolicy import one_hot
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.options import BUDGET, QUALITY_THRESHOLD, Policy
from tinydancer_duck.snapshot import RoutingSnapshot

from ._evaluation import Evaluation
from ._frames import (
    COST_DETAIL_COUNTS,
    SOURCE_COUNTS,
    Frame,
    LoggedSums,
    Replay,
    actual_point,
    as_snapshot,
    constraints_only,
    source_counts,
)
from ._simulate import MIX_TYPE, Progress, budget_decisions

WHATIF_TYPE = pa.struct([("budget", pa.float64()), ("estimated_spend", pa.float64()), ("spend", pa.float64()),
                         ("budget_overrun", pa.float64()), ("willingness_to_pay", pa.float64()),
                         ("expected_quality", pa.float64()), ("quality", pa.float64()),
                         ("requests", pa.int64()), ("served", pa.int64()), ("served_share", pa.float64()),
                         ("meets_quality_threshold", pa.bool_()), ("agent_mix", pa.list_(MIX_TYPE)),
                         *((name, pa.int64()) for name in (*SOURCE_COUNTS, *COST_DETAIL_COUNTS)),
                         ("spend_low", pa.float64()), ("spend_high", pa.float64()), ("quality_low", pa.float64()),
                         ("quality_high", pa.float64()), ("quality_estimator", pa.string()),
                         ("warnings", pa.list_(pa.string()))])


def check_budgets(budgets: Any) -> list[float]:
    """A non-empty list of finite budgets >= 0; errors name ``budgets`` and the bad value."""
    if budgets is None or isinstance(budgets, (str, bytes)):
        raise InvalidArgument("budgets", budgets, "must be a non-empty list of numbers >= 0")
    if isinstance(budgets, (int, float, np.integer, np.floating)) and not isinstance(budgets, bool):
        budgets = [budgets]
    values = list(budgets)
    if not values:
        raise InvalidArgument("budgets", values, "must be a non-empty list of numbers >= 0")
    return [BUDGET.check.scalar("budgets", value) for value in values]


@dataclass(frozen=True)
class Frontier:
    """A what-if's rows and what its chart draws beside them, from one pass over the log.

    table : one row per budget (:data:`WHATIF_TYPE`).
    single_agents : per agent the policy may choose, always that agent: label, total_cost, quality (mean over the
        requests, the direct method's figure, as the cost-quality curve's single agents).
    actual : the log's own policy (total_cost, cost per request, quality, requests), None when it logs no cost.
    """

    table: pa.Table
    single_agents: list[dict[str, Any]]
    actual: dict[str, Any] | None


def budget_whatif(source: RoutingSnapshot | Any, log: Any, budgets: Sequence[float], policy: Policy | None = None,
                  *, quality_threshold: float | None = None, columns: Any = None, rows: int = DEFAULT_BATCH_ROWS,
                  progress: Progress | None = None, **values: Any) -> pa.Table:
    """One row per budget (:data:`WHATIF_TYPE`), in the order given; the arguments as :func:`whatif_frontier`."""
    return whatif_frontier(source, log, budgets, policy, quality_threshold=quality_threshold, columns=columns,
                           rows=rows, progress=progress, **values).table


def whatif_frontier(source: RoutingSnapshot | Any, log: Any, budgets: Sequence[float], policy: Policy | None = None,
                    *, quality_threshold: float | None = None, columns: Any = None, rows: int = DEFAULT_BATCH_ROWS,
                    progress: Progress | None = None, **values: Any) -> Frontier:
    """The what-if rows (:class:`Frontier`), with the single agents and the log's actual policy.

    policy, values : the replay's constraints (max_latency_ms drops agents slower than it on average),
        ``observed_only``, ``holdout`` and the estimate (:class:`~tinydancer_duck.options.Policy`: each row's spend
        and quality carry an interval); each budget decides the choice, so an objective, a willingness to pay or a
        budget is an error.
    quality_threshold : marks the budgets whose allocation serves every request at a mean expected quality at or
        above it.
    """
    amounts = check_budgets(budgets)
    quality_threshold = QUALITY_THRESHOLD.value(quality_threshold)
    replay = Replay(as_snapshot(source), log, constraints_only(policy, values, "the budget what-if"),
                    columns=columns)
    frames = [frame.light() for frame in replay.frames(rows, progress)]
    if not frames:
        raise InvalidArgument("log", replay.spec.path, "has no rows")
    evaluation = Evaluation.build(replay.evidence, replay.policy.estimate)
    expected = np.concatenate([f.expected for f in frames])
    quality = np.concatenate([f.quality for f in frames])
    cost = np.concatenate([f.cost for f in frames])
    estimated = np.concatenate([f.estimated for f in frames])
    n = len(expected)
    names = pl.Series("agent", replay.names, pl.String)
    out = []
    for budget in amounts:
        decided = budget_decisions(replay, frames, budget, "quality")
        served = np.flatnonzero(decided.agent >= 0)
        picked = decided.agent[served]
        figures = _figures(replay, evaluation, frames, decided.agent)
        frame = pl.DataFrame({"agent": names.gather(picked), "cost": cost[served, picked],
                              "quality": quality[served, picked], "expected": expected[served, picked],
                              "estimated": estimated[served, picked]})
        totals = frame.select(pl.col("estimated").sum(), pl.col("cost").sum(), pl.col("expected").mean()).row(0)
        mix = (frame.group_by("agent").agg(pl.len().cast(pl.Int64).alias("requests"), pl.col("cost").sum(),
                                           pl.col("quality").mean())
               .with_columns((pl.col("requests") / max(len(served), 1)).alias("share"))
               .sort(["requests", "agent"], descending=[True, False])
               .select("agent", "requests", "share", "cost", "quality"))
        mean_expected = totals[2] if len(served) else None
        meets = None if quality_threshold is None else bool(
            len(served) == n and mean_expected is not None and mean_expected >= quality_threshold - 1e-12)
        spend = float(totals[1] or 0.0)
        out.append({"budget": budget, "estimated_spend": float(totals[0] or 0.0), "spend": spend,
                    "budget_overrun": max(0.0, spend - budget), "willingness_to_pay": decided.willingness_to_pay,
                    "expected_quality": mean_expected,
                    "requests": n, "served": len(served), "served_share": len(served) / n if n else None,
                    "meets_quality_threshold": meets, "agent_mix": mix.to_dicts(), **figures,
                    "warnings": replay.warnings})
    table = pa.Table.from_pylist(out, schema=pa.schema(list(WHATIF_TYPE)))
    return Frontier(table, _single_agents(replay, frames, cost, quality), _actual(frames))


def _single_agents(replay: Replay, frames: list[Frame], cost: np.ndarray, quality: np.ndarray
                   ) -> list[dict[str, Any]]:
    """Always agent j, for each agent the policy may choose: its total cost and mean quality over the requests the
    router could read (the curve's zero router, from the frames already in hand)."""
    valid = np.concatenate([f.requests.valid for f in frames])
    if not valid.any():
        return []
    totals, means = cost[valid].sum(axis=0), quality[valid].mean(axis=0)
    return [{"label": replay.names[j], "total_cost": float(totals[j]), "quality": float(means[j])}
            for j in np.flatnonzero(replay.included())]


def _actual(frames: list[Frame]) -> dict[str, Any] | None:
    """The log's own choices over the frames, as a simulation's summary reports them."""
    logged = LoggedSums()
    for frame in frames:
        logged.add(frame)
    return actual_point(logged.total_cost, logged.mean_quality, sum(len(f.log) for f in frames))


def _figures(replay: Replay, evaluation: Evaluation, frames: list[Frame], agent: np.ndarray) -> dict[str, Any]:
    """One budget's quality estimate, its interval, the interval of its spend and the decisions per source, over
    the frames' decisions."""
    figures = evaluation.figures(replay.evidence)
    start = 0
    for frame in frames:
        stop = start + len(frame.actual)
        figures.add(frame, one_hot(agent[start:stop], replay.agents.size))
        start = stop
    quality, low, high = evaluation.quality(figures, replay.evidence)
    _, cost_low, cost_high = evaluation.cost(figures, replay.evidence)
    spend = [None if c is None else c * figures.n for c in (cost_low, cost_high)]
    return {"quality": quality, "spend_low": spend[0], "spend_high": spend[1], "quality_low": low,
            "quality_high": high, "quality_estimator": evaluation.label,
            **source_counts(figures.quality_sources, figures.cost_sources)}
