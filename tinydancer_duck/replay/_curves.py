"""Cost-quality curves of a router over a log, their non-decreasing convex hulls and RouterBench's AIQ.

Router curve: for a willingness to pay w (dollars per unit of expected quality), every request takes the candidate of
best q̂ - ĉ / w (q̂: the expected quality the router uses, from the outcome router or quality_score; ĉ: the router's
cost estimate; :func:`tinydancer_duck._numeric.value_scores`, so ``ruvector_route(willingness_to_pay := w)`` makes
the same choices), w swept over 0 (cheapest candidate), a log-spaced grid and ∞ (best expected quality). Each w gives
one point: mean cost and mean quality per request, both measured as the simulation measures them (logged cost and
observed outcome where the log has them, :mod:`tinydancer_duck.replay._frames`), with the count of decisions behind
each source. A request without a candidate counts as cost 0 and quality 0.
Zero router: each single agent for every request is one point; its hull is what mixing single agents at random
achieves (RouterBench's "zero router"). Oracle: per request the agent with the best observed quality, the cheapest
among ties: one point. Agents the policy's ``excluded_agents`` names are no option anywhere: not for the router, not
as single agents, not for the oracle.

Non-decreasing convex hull (Hu et al., "RouterBench: A Benchmark for Multi-LLM Routing System", arXiv:2403.12031,
§3): the upper convex hull of the points that improve quality over every cheaper point; any point on it is reachable
by randomly mixing its two neighbours. AIQ (Average Improvement in Quality, same paper):
AIQ = 1/(c_max - c_min) ∫_{c_min}^{c_max} R̃(c) dc, R̃ the hull interpolated linearly, held flat after its most expensive
point and 0 before its cheapest; [c_min, c_max] is the cost range shared by the curves being compared (here the router
and the zero router), so their AIQs are comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa

from tinydancer_duck._logs import DEFAULT_BATCH_ROWS
from tinydancer_duck._numeric import value_scores, willingness_grid
from tinydancer_duck._offpolicy import one_hot
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.options import POINTS, Policy
from tinydancer_duck.snapshot import RoutingSnapshot

from ._evaluation import Evaluation
from ._evidence import Evidence
from ._frames import COST_DETAIL_COUNTS, SOURCE_COUNTS, Frame, Replay, as_snapshot, constraints_only, source_counts
from ._simulate import Progress

CURVE_TYPE = pa.struct([("series", pa.string()), ("label", pa.string()), ("willingness_to_pay", pa.float64()),
                        ("cost", pa.float64()), ("quality", pa.float64()), ("total_cost", pa.float64()),
                        ("requests", pa.int64()), ("on_hull", pa.bool_()), ("aiq", pa.float64()),
                        *((name, pa.int64()) for name in (*SOURCE_COUNTS, *COST_DETAIL_COUNTS)),
                        ("cost_low", pa.float64()), ("cost_high", pa.float64()), ("quality_low", pa.float64()),
                        ("quality_high", pa.float64())])


def nondecreasing_hull(cost: Sequence[float], quality: Sequence[float]) -> np.ndarray:
    """Indices of the points on the non-decreasing convex hull, by increasing cost."""
    x, y = np.asarray(cost, float), np.asarray(quality, float)
    order = np.lexsort((-y, x))
    frontier: list[int] = []
    for i in order:  # keep points that beat every cheaper (or equally cheap) point
        if not frontier or y[i] > y[frontier[-1]]:
            if frontier and x[i] == x[frontier[-1]]:
                continue
            frontier.append(int(i))
    hull: list[int] = []
    for i in frontier:  # upper hull, left to right: drop the middle point unless the chain turns clockwise
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (x[b] - x[a]) * (y[i] - y[a]) - (y[b] - y[a]) * (x[i] - x[a])
            if cross >= 0:
                hull.pop()
            else:
                break
        hull.append(i)
    return np.array(hull, np.int64)


def aiq(cost: Sequence[float], quality: Sequence[float], c_min: float | None = None,
        c_max: float | None = None) -> float:
    """Area under the non-decreasing convex hull of the points over [c_min, c_max], divided by c_max - c_min
    (module docstring); defaults: the points' own cost range. NaN for an empty or zero-width range."""
    x, y = np.asarray(cost, float), np.asarray(quality, float)
    if not len(x):
        return float("nan")
    lo = float(x.min()) if c_min is None else float(c_min)
    hi = float(x.max()) if c_max is None else float(c_max)
    if not hi > lo:
        return float("nan")
    hull = nondecreasing_hull(x, y)
    hx, hy = x[hull], y[hull]
    start, stop = max(lo, hx[0]), min(hi, hx[-1])
    area = 0.0
    if stop > start:
        inside = (hx > start) & (hx < stop)
        xs = np.concatenate([[start], hx[inside], [stop]])
        area += float(np.trapezoid(np.interp(xs, hx, hy), xs))
    if hi > max(hx[-1], lo):
        area += float(hy[-1]) * (hi - max(hx[-1], lo))
    return area / (hi - lo)


def cost_at_quality(cost: Sequence[float], quality: Sequence[float], target: float) -> float:
    """The least mean cost at which the hull of the points reaches ``target`` quality (interpolated); NaN if never."""
    x, y = np.asarray(cost, float), np.asarray(quality, float)
    hull = nondecreasing_hull(x, y)
    hx, hy = x[hull], y[hull]
    if not len(hx) or hy[-1] < target:
        return float("nan")
    if hy[0] >= target:
        return float(hx[0])
    k = int(np.argmax(hy >= target))
    return float(hx[k - 1] + (target - hy[k - 1]) * (hx[k] - hx[k - 1]) / (hy[k] - hy[k - 1]))


def _choose(value: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    best = np.argmax(np.where(candidate, value, -np.inf), axis=1)
    return np.where(candidate.any(axis=1), best, -1)


class _Point:
    """Running sums of one point of a curve: its decisions' figures and their count per source."""

    def __init__(self, evaluation: Evaluation, evidence: Evidence, agents: int) -> None:
        self.evaluation, self.evidence, self.agents = evaluation, evidence, agents
        self.figures = evaluation.figures(evidence)

    def add(self, frame: Frame, pick: np.ndarray) -> None:
        """Add the decisions ``pick`` (int (n,), -1: none) of one frame."""
        self.figures.add(frame, one_hot(pick, self.agents))

    def means(self, n: int) -> tuple[float, float]:
        """(mean cost, mean quality) per request of the n replayed (a request without a decision counts 0)."""
        served = self.figures.n / n
        return (self.figures.cost_mean() or 0.0) * served, (self.figures.estimate(self.evaluation.estimator)
                                                             or 0.0) * served

    def row(self, series: str, label: str, w: float | None, n: int, on_hull: bool, aiq_: float | None) -> dict:
        served = self.figures.n / n
        cost, quality = self.means(n)
        _, q_low, q_high = self.evaluation.quality(self.figures, self.evidence)
        _, c_low, c_high = self.evaluation.cost(self.figures, self.evidence)
        scaled = [None if v is None else v * served for v in (c_low, c_high, q_low, q_high)]
        return {"series": series, "label": label, "willingness_to_pay": w, "cost": cost, "quality": quality,
                "total_cost": cost * n, "requests": self.figures.n, "on_hull": on_hull, "aiq": aiq_,
                **source_counts(self.figures.quality_sources, self.figures.cost_sources),
                **dict(zip(("cost_low", "cost_high", "quality_low", "quality_high"), scaled))}


class _Sums:
    """Running sums of one curve over a log's frames: the router at each willingness to pay of the grid, each
    single agent, and the oracle (the best agent per row, cheapest among equals)."""

    def __init__(self, points: int, included: np.ndarray, evaluation: Evaluation, evidence: Evidence) -> None:
        self.points = points
        self.grid: np.ndarray | None = None
        self.router: list[_Point] = []
        self.included = included
        self.point = lambda: _Point(evaluation, evidence, len(included))
        self.single = [self.point() for _ in range(len(included))]
        # the oracle picks by the outcomes themselves, so no estimator beyond them applies: the direct method
        self.oracle = _Point(replace(evaluation, estimator="dm", interval="model"), evidence, len(included))
        self.n_valid = 0

    def add(self, frame: Frame) -> None:
        valid, cand = frame.requests.valid, frame.candidate
        if self.grid is None:  # w is a price per unit of quality: scale it to the log's typical cost
            self.grid = willingness_grid(frame.estimated[cand], self.points)
            self.router = [self.point() for _ in self.grid]
        for point, w in zip(self.router, self.grid):
            point.add(frame, _choose(value_scores(frame.expected, frame.estimated, w), cand))
        everyone = np.where(valid, 0, -1)
        for j, point in enumerate(self.single):
            point.add(frame, everyone + j * valid)
        span = float(frame.cost.max()) + 1e-12 if frame.cost.size else 1.0
        best = np.argmax(np.where(self.included, frame.quality - 1e-6 * frame.cost / span, -np.inf), axis=1)
        self.oracle.add(frame, np.where(valid, best, -1))
        self.n_valid += int(valid.sum())

    def table(self, names: list[str]) -> tuple[pa.Table, dict[str, float]]:
        """The :data:`CURVE_TYPE` rows and the AIQs (see :func:`curve`)."""
        n, grid = self.n_valid, self.grid
        kept = np.flatnonzero(self.included)
        names, single = [names[j] for j in kept], [self.single[j] for j in kept]
        r_cost, r_quality = np.array([p.means(n) for p in self.router]).T
        s_cost, s_quality = np.array([p.means(n) for p in single]).T
        everything = np.concatenate([r_cost, s_cost])
        c_min, c_max = float(everything.min()), float(everything.max())
        result = {"aiq_router": aiq(r_cost, r_quality, c_min, c_max),
                  "aiq_zero_router": aiq(s_cost, s_quality, c_min, c_max), "c_min": c_min, "c_max": c_max}
        r_hull = np.zeros(len(grid), bool)
        r_hull[nondecreasing_hull(r_cost, r_quality)] = True
        s_hull = np.zeros(len(names), bool)
        s_hull[nondecreasing_hull(s_cost, s_quality)] = True
        out = [p.row("router", _label(w), float(w), n, bool(r_hull[k]), result["aiq_router"])
               for k, (p, w) in enumerate(zip(self.router, grid))]
        out += [p.row("zero_router", names[j], None, n, bool(s_hull[j]), result["aiq_zero_router"])
                for j, p in enumerate(single)]
        out.append(self.oracle.row("oracle", "oracle", None, n, True, None))
        return pa.Table.from_pylist(out, schema=pa.schema(list(CURVE_TYPE))), result


def _label(w: float) -> str:
    if w == 0:
        return "cheapest"
    return "best expected quality" if np.isinf(w) else f"willingness_to_pay={w:.4g}"


def curve(source: RoutingSnapshot | Any, log: Any, policy: Policy | None = None, *, points: int = 40,
          columns: Any = None, rows: int = DEFAULT_BATCH_ROWS, progress: Progress | None = None,
          **values: Any) -> tuple[pa.Table, dict[str, Any]]:
    """The router's willingness-to-pay curve, the zero router (single agents) and the oracle over ``log``, streamed
    in batches.

    Returns (table of :data:`CURVE_TYPE` rows, {"aiq_router", "aiq_zero_router", "c_min", "c_max", "warnings"}).
    policy, values : the replay's constraints (they shape the router's candidates, not the single agents; an
        excluded agent is left out of the single agents and the oracle too),
        ``observed_only``, ``holdout`` and the estimate (:class:`~tinydancer_duck.options.Policy`; each point's cost
        and quality carry an interval: ``cost_low``, ``cost_high``, ``quality_low``, ``quality_high``); the curve
        sweeps the choice itself, so an objective, a willingness to pay or a budget is an error.
    """
    points = POINTS.value(points)
    replay = Replay(as_snapshot(source), log, constraints_only(policy, values, "the cost-quality curve"),
                    columns=columns)
    included = replay.included()
    if not included.any():
        raise InvalidArgument("excluded_agents", list(replay.policy.options.excluded_agents),
                              "leaves no agent to compare")
    evaluation = Evaluation.build(replay.evidence, replay.policy.estimate)
    sums = _Sums(points, included, evaluation, replay.evidence)
    for frame in replay.frames(rows, progress):
        sums.add(frame)
    if sums.grid is None or sums.n_valid == 0:
        raise InvalidArgument("log", replay.spec.path, "has no usable requests")
    table, result = sums.table(replay.names)
    return table, {**result, "warnings": replay.warnings}
