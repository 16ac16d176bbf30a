"""Cost-quality curves of a router over a log, their non-decreasing convex hulls and RouterBench's AIQ.

Router curve: for a willingness-to-pay λ, every request takes argmax over its candidates of q̂ - λ·ĉ (q̂: the expected
quality the router uses, from the outcome router or quality_score; ĉ: the router's cost estimate), λ swept over 0, a
log-spaced grid and ∞ (cheapest candidate). Each λ gives one point: mean cost and mean quality per request, both
measured as the simulation measures them (logged cost and observed outcome where the log has them, see
:mod:`tinydancer_duck.replay._simulate`). A request without a candidate counts as cost 0 and quality 0.
Zero router: each single agent for every request is one point; its hull is what mixing single agents at random
achieves (RouterBench's "zero router"). Oracle: per request the agent with the best observed quality, the cheapest
among ties: one point.

Non-decreasing convex hull (Hu et al., "RouterBench: A Benchmark for Multi-LLM Routing System", arXiv:2403.12031,
§3): the upper convex hull of the points that improve quality over every cheaper point; any point on it is reachable
by randomly mixing its two neighbours. AIQ (Average Improvement in Quality, same paper):
AIQ = 1/(c_max - c_min) ∫_{c_min}^{c_max} R̃(c) dc, R̃ the hull interpolated linearly, held flat after its most expensive
point and 0 before its cheapest; [c_min, c_max] is the cost range shared by the curves being compared (here the router
and the zero router), so their AIQs are comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from tinydancer_duck._logs import DEFAULT_BATCH_ROWS
from tinydancer_duck._validate import check_int
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.snapshot import RoutingSnapshot

from ._simulate import Frame, Progress, Replay, as_snapshot

CURVE_TYPE = pa.struct([("series", pa.string()), ("label", pa.string()), ("lambda", pa.float64()),
                        ("cost", pa.float64()), ("quality", pa.float64()), ("total_cost", pa.float64()),
                        ("requests", pa.int64()), ("on_hull", pa.bool_()), ("aiq", pa.float64())])


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


def lambda_grid(points: int, scale: float) -> np.ndarray:
    """0, ``points - 2`` log-spaced values around 1/scale (1e-3/scale .. 1e3/scale), and ∞."""
    return np.concatenate([[0.0], np.geomspace(1e-3, 1e3, max(points - 2, 1)) / max(scale, 1e-12), [np.inf]])


def _choose(value: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    best = np.argmax(np.where(candidate, value, -np.inf), axis=1)
    return np.where(candidate.any(axis=1), best, -1)


class _Sums:
    """Running sums of one curve over a log's frames: the router at each λ of the grid, each single agent, and
    the oracle (the best agent per row, cheapest among equals)."""

    def __init__(self, points: int, n_agents: int) -> None:
        self.points = points
        self.grid: np.ndarray | None = None
        self.cost = self.quality = self.counts = np.zeros(0)
        self.single_cost, self.single_quality = np.zeros(n_agents), np.zeros(n_agents)
        self.oracle_cost = self.oracle_quality = 0.0
        self.n_valid = 0

    def add(self, frame: Frame) -> None:
        valid, cand = frame.requests.valid, frame.candidate
        if self.grid is None:  # λ is a price per unit of quality: scale it to the log's typical cost
            positive = frame.estimated[cand & (frame.estimated > 0)]
            self.grid = lambda_grid(self.points, float(np.median(positive)) if len(positive) else 1.0)
            self.cost, self.quality = np.zeros(len(self.grid)), np.zeros(len(self.grid))
            self.counts = np.zeros(len(self.grid), np.int64)
        rows = np.arange(len(valid))
        for k, lam in enumerate(self.grid):
            if np.isinf(lam):
                value = -frame.estimated + 1e-12 * frame.expected
            else:
                value = frame.expected - (lam + 1e-12) * frame.estimated
            pick = _choose(value, cand)
            chosen = pick >= 0
            safe = np.maximum(pick, 0)
            self.cost[k] += float(frame.cost[rows, safe][chosen].sum())
            self.quality[k] += float(frame.quality[rows, safe][chosen].sum())
            self.counts[k] += int(chosen.sum())
        self.single_cost += frame.cost[valid].sum(axis=0)
        self.single_quality += frame.quality[valid].sum(axis=0)
        span = float(frame.cost.max()) + 1e-12 if frame.cost.size else 1.0
        best = np.argmax(frame.quality - 1e-6 * frame.cost / span, axis=1)
        self.oracle_cost += float(frame.cost[rows, best][valid].sum())
        self.oracle_quality += float(frame.quality[rows, best][valid].sum())
        self.n_valid += int(valid.sum())

    def table(self, names: list[str]) -> tuple[pa.Table, dict[str, float]]:
        """The :data:`CURVE_TYPE` rows and the AIQs (see :func:`curve`)."""
        n, grid = self.n_valid, self.grid
        r_cost, r_quality = self.cost / n, self.quality / n
        s_cost, s_quality = self.single_cost / n, self.single_quality / n
        everything = np.concatenate([r_cost, s_cost])
        c_min, c_max = float(everything.min()), float(everything.max())
        result = {"aiq_router": aiq(r_cost, r_quality, c_min, c_max),
                  "aiq_zero_router": aiq(s_cost, s_quality, c_min, c_max), "c_min": c_min, "c_max": c_max}
        r_hull = np.zeros(len(grid), bool)
        r_hull[nondecreasing_hull(r_cost, r_quality)] = True
        s_hull = np.zeros(len(names), bool)
        s_hull[nondecreasing_hull(s_cost, s_quality)] = True
        out = [{"series": "router", "label": "cheapest" if np.isinf(lam) else f"lambda={lam:.4g}",
                "lambda": None if np.isinf(lam) else float(lam), "cost": float(r_cost[k]),
                "quality": float(r_quality[k]), "total_cost": float(self.cost[k]), "requests": int(self.counts[k]),
                "on_hull": bool(r_hull[k]), "aiq": result["aiq_router"]} for k, lam in enumerate(grid)]
        out += [{"series": "zero_router", "label": names[j], "lambda": None, "cost": float(s_cost[j]),
                 "quality": float(s_quality[j]), "total_cost": float(self.single_cost[j]), "requests": n,
                 "on_hull": bool(s_hull[j]), "aiq": result["aiq_zero_router"]} for j in range(len(names))]
        out.append({"series": "oracle", "label": "oracle", "lambda": None, "cost": self.oracle_cost / n,
                    "quality": self.oracle_quality / n, "total_cost": self.oracle_cost, "requests": n,
                    "on_hull": True, "aiq": None})
        return pa.Table.from_pylist(out, schema=pa.schema(list(CURVE_TYPE))), result


def curve(source: RoutingSnapshot | Any, log: Any, *, points: int = 40, columns: Any = None,
          rows: int = DEFAULT_BATCH_ROWS, progress: Progress | None = None,
          **constraints: Any) -> tuple[pa.Table, dict[str, float]]:
    """The router's λ curve, the zero router (single agents) and the oracle over ``log``, streamed in batches.

    Returns (table of :data:`CURVE_TYPE` rows, {"aiq_router", "aiq_zero_router", "c_min", "c_max"}).
    constraints : ruvector_route's constraints (they shape the router's candidates, not the single agents).
    """
    check_int("points", points, minimum=3, maximum=1000)
    replay = Replay(as_snapshot(source), log, columns=columns, optimize_for="quality", **constraints)
    sums, done = _Sums(points, replay.agents.size), 0
    for frame in replay.frames(rows):
        sums.add(frame)
        done += len(frame.log)
        if progress is not None:
            progress(done, replay.n_rows)
    if sums.grid is None or sums.n_valid == 0:
        raise InvalidArgument("log", replay.spec.path, "has no usable requests")
    return sums.table(replay.names)
