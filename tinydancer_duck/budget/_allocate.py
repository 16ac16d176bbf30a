"""Budget allocation across agents from demand per category (DESIGN §1 job 3, §5 "Budgets"), in polars + numpy.

Inputs: demand per category (requests per month and avg input tokens per request), the agent snapshot, a monthly
budget and quality/latency thresholds.

1. **Eligible agents** per category: active, quality_score >= quality_threshold, avg_latency_ms <=
   latency_threshold_ms; if any eligible agent lists the category among its capabilities, only those, else every
   eligible agent. A category without an eligible agent is unserved.
2. **Cost per request**: :func:`tinydancer_duck.registry._costs.estimated_cost` with the category's avg input tokens (the
   agent's avg_output_tokens as output), all price components added; an agent with no price is free.
3. **Coverage first** (fractional knapsack): each category's cheapest eligible agent (ties: higher quality, then
   name) is funded, categories in order of quality per dollar (free ones first), by sort + cum_sum, until the budget
   runs out; the category at the boundary is funded fractionally, the rest is unserved demand.
4. **Marginal upgrades**: with budget left once every request is served, requests move to better agents along
   each category's upper convex hull of (cost, quality), steps funded in order of quality gain per extra dollar
   (sort + cum_sum across categories), the last fractionally. This is the LP optimum of "maximize expected quality
   given every request is served" (the multiple-choice knapsack relaxation).

Output (one frame, stable shape): ``kind`` 'agent' rows (sorted by allocation, then name), then exactly one
'unserved' row (agent NULL; expected_requests = demand left unserved, categories = the categories short of it) and
one 'unallocated' row (agent NULL; allocation = budget not needed). Columns: kind, agent, categories,
expected_requests, allocation, expected_spend, expected_quality, share, basis (where the demand came from: recorded
usage, the demand given, or an assumption when neither exists). For agent rows allocation = expected_spend;
sum(allocation) = monthly_budget, sum(expected_spend) <= monthly_budget and sum(expected_requests) = total demand,
always.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import polars as pl
import pyarrow as pa

from tinydancer_duck.options import LATENCY_CEILING, MONTHLY_BUDGET, QUALITY_FLOOR
from tinydancer_duck.registry import AgentSnapshot, estimated_cost

#: One row of ruvector_optimize_budget (the allocation frame's columns).
OPTIMIZE_TYPE = pa.struct([("kind", pa.string()), ("agent", pa.string()), ("categories", pa.list_(pa.string())),
                           ("expected_requests", pa.float64()), ("allocation", pa.float64()),
                           ("expected_spend", pa.float64()), ("expected_quality", pa.float64()),
                           ("share", pa.float64()), ("basis", pa.string())])
OUTPUT_SCHEMA = dict(pl.from_arrow(pa.schema(list(OPTIMIZE_TYPE)).empty_table()).schema)


def check_thresholds(monthly_budget: float, quality_threshold: float, latency_threshold_ms: float) -> None:
    """The allocation's arguments, checked by their declarations (a missing budget is not a number)."""
    for param, value in ((MONTHLY_BUDGET, monthly_budget), (QUALITY_FLOOR, quality_threshold),
                         (LATENCY_CEILING, latency_threshold_ms)):
        param.check.scalar(param.name, value)


def eligible_matrix(categories: list[str], snapshot: AgentSnapshot, quality_threshold: float,
                    latency_threshold_ms: float) -> np.ndarray:
    """bool (C, A): agent a may serve category c (step 1 of the module docstring)."""
    eligible = snapshot.active & (snapshot.quality >= quality_threshold) & (snapshot.latency_ms <= latency_threshold_ms)
    vocab = {name: i for i, name in enumerate(snapshot.capability_vocab.to_pylist())}
    allowed = np.repeat(eligible[None, :], len(categories), axis=0)
    for c, category in enumerate(categories):
        row = vocab.get(category)
        if row is not None and (snapshot.has_capability[row] & eligible).any():
            allowed[c] = snapshot.has_capability[row] & eligible
    return allowed


def hull_steps(cost: np.ndarray, quality: np.ndarray, allowed: np.ndarray) -> tuple[int, list[tuple[int, int]]]:
    """For one category: the base agent (cheapest, ties by higher quality then index) and the upgrade steps
    (from, to) along the upper convex hull of (cost, quality), with strictly decreasing quality gain per dollar.
    Returns (-1, []) when no agent is allowed."""
    agents = np.flatnonzero(allowed)
    if not agents.size:
        return -1, []
    order = agents[np.lexsort((agents, -quality[agents], cost[agents]))]
    hull = [int(order[0])]
    for a in order[1:]:
        if quality[a] <= quality[hull[-1]] or cost[a] <= cost[hull[-1]]:
            continue  # dominated: no better, or no dearer than a better-or-equal cheaper one
        while len(hull) >= 2:  # drop the last point if it lies on or under the chord to a
            p, q = hull[-2], hull[-1]
            if (quality[q] - quality[p]) * (cost[a] - cost[p]) <= (quality[a] - quality[p]) * (cost[q] - cost[p]):
                hull.pop()
            else:
                break
        hull.append(int(a))
    return hull[0], list(pairwise(hull))


def optimize(demand: pl.DataFrame, snapshot: AgentSnapshot, monthly_budget: float, quality_threshold: float,
             latency_threshold_ms: float, basis: str = "demand given") -> pl.DataFrame:
    """The allocation (module docstring). demand: category (str), requests (float >= 0, > 0 in total),
    avg_tokens (float >= 0): one row per category; ``basis`` says where it came from."""
    check_thresholds(monthly_budget, quality_threshold, latency_threshold_ms)
    budget = float(monthly_budget)
    categories = demand["category"].to_list()
    requests = demand["requests"].to_numpy().astype(np.float64)
    cost = estimated_cost(demand["avg_tokens"].to_numpy().astype(np.float64), snapshot)  # (C, A)
    allowed = eligible_matrix(categories, snapshot, quality_threshold, latency_threshold_ms)
    hulls = [hull_steps(cost[c], snapshot.quality, allowed[c]) for c in range(len(categories))]
    base = np.array([h[0] for h in hulls], dtype=np.int64)
    served = base >= 0
    rows = np.arange(len(categories))
    base_cost = np.where(served, cost[rows, np.maximum(base, 0)], 0.0)
    base_quality = np.where(served, snapshot.quality[np.maximum(base, 0)], 0.0)

    # 3. coverage: categories by quality per dollar (free first), funded in dollars until the budget runs out
    cover = (pl.DataFrame({"c": rows[served], "requests": requests[served], "unit": base_cost[served],
                           "quality": base_quality[served]})
             .with_columns((pl.col("unit") == 0).alias("free"),
                           (pl.col("quality") / pl.when(pl.col("unit") > 0).then(pl.col("unit"))).alias("value"))
             .sort(["free", "value", "c"], descending=[True, True, False], nulls_last=True)
             .with_columns((pl.col("requests") * pl.col("unit")).alias("full"))
             .with_columns((pl.col("full").cum_sum() - pl.col("full")).alias("before"))
             .with_columns(pl.min_horizontal("full", (budget - pl.col("before")).clip(lower_bound=0)).alias("spend"))
             .with_columns(pl.when(pl.col("free")).then(pl.col("requests"))
                           .otherwise(pl.col("spend") / pl.when(pl.col("unit") > 0).then(pl.col("unit")))
                           .alias("funded")))
    x = np.zeros_like(cost)  # requests of category c given to agent a
    funded = np.zeros(len(categories))
    funded[cover["c"].to_numpy()] = np.minimum(cover["funded"].to_numpy(), cover["requests"].to_numpy())
    x[rows[served], base[served]] = funded[served]
    spent = math.fsum(cover["spend"].to_list())

    # 4. marginal upgrades once every request is served
    left = budget - spent
    if left > 0 and np.allclose(funded[served], requests[served]):
        steps = [(c, a, b, requests[c] * (cost[c, b] - cost[c, a]), (snapshot.quality[b] - snapshot.quality[a])
                  / (cost[c, b] - cost[c, a]), i) for c, (_, chain) in enumerate(hulls)
                 for i, (a, b) in enumerate(chain) if requests[c] > 0]
        if steps:
            up = (pl.DataFrame(steps, schema=["c", "src", "dst", "extra", "gain", "i"], orient="row")
                  .sort(["gain", "c", "i"], descending=[True, False, False])
                  .with_columns((pl.col("extra").cum_sum() - pl.col("extra")).alias("before"))
                  .with_columns(((left - pl.col("before")) / pl.col("extra")).clip(0.0, 1.0).alias("fraction")))
            for c, src, dst, extra, fraction in up.select("c", "src", "dst", "extra", "fraction").iter_rows():
                if fraction > 0:
                    moved = fraction * requests[c]
                    x[c, src] -= moved
                    x[c, dst] += moved
    return _report(x, cost, requests, categories, snapshot, budget).with_columns(pl.lit(basis).alias("basis"))


def _report(x: np.ndarray, cost: np.ndarray, requests: np.ndarray, categories: list[str], snapshot: AgentSnapshot,
            budget: float) -> pl.DataFrame:
    x = np.clip(x, 0.0, None)
    spend = (x * cost).sum(axis=0)
    while math.fsum(spend.tolist()) > budget:  # float rounding of the cumulative sums: trim the largest spender
        a = int(np.argmax(spend))
        factor = (spend[a] - (math.fsum(spend.tolist()) - budget)) / spend[a] * (1.0 - 1e-15)
        x[:, a] *= factor
        spend[a] *= factor
    names = snapshot.name_list()
    agent_rows = []
    for a in np.flatnonzero(x.sum(axis=0) > 0):
        agent_rows.append({"kind": "agent", "agent": names[a],
                           "categories": [categories[c] for c in np.flatnonzero(x[:, a] > 0)],
                           "expected_requests": float(x[:, a].sum()), "allocation": float(spend[a]),
                           "expected_spend": float(spend[a]), "expected_quality": float(snapshot.quality[a])})
    agent_rows.sort(key=lambda r: (-r["allocation"], r["agent"]))
    short = requests - x.sum(axis=1)
    short = np.where(short > 1e-9 * np.maximum(requests, 1.0), short, 0.0)
    unserved = {"kind": "unserved", "agent": None, "categories": [categories[c] for c in np.flatnonzero(short > 0)],
                "expected_requests": float(short.sum()), "allocation": 0.0, "expected_spend": 0.0,
                "expected_quality": None}
    used = math.fsum(r["allocation"] for r in agent_rows)
    unallocated = {"kind": "unallocated", "agent": None, "categories": [], "expected_requests": 0.0,
                   "allocation": budget - used if budget - used > 1e-12 * budget else 0.0, "expected_spend": 0.0,
                   "expected_quality": None}
    frame = pl.DataFrame([*agent_rows, unserved, unallocated], schema={k: v for k, v in OUTPUT_SCHEMA.items()
                                                                       if k not in ("share", "basis")})
    return frame.with_columns((pl.col("allocation") / budget).alias("share"))


#: The demand assumed when no usage is recorded and none is given: this many requests a month, spread equally over
#: the capabilities of the active agents, each of this many input tokens. Stated in the ``basis`` column.
ASSUMED_MONTHLY_REQUESTS = 10_000
ASSUMED_TOKENS = 256


def assumed_demand(snapshot: AgentSnapshot) -> tuple[pl.DataFrame, str]:
    """Equal demand over the active agents' capabilities (every agent's name when none has any), and the sentence
    that says so."""
    held = snapshot.has_capability[:, snapshot.active].any(axis=1) if snapshot.size else np.zeros(0, bool)
    categories = [c for c, h in zip(snapshot.capability_vocab.to_pylist(), held) if h] or ["general"]
    per = ASSUMED_MONTHLY_REQUESTS / len(categories)
    basis = (f"assumed: no usage is recorded, so {ASSUMED_MONTHLY_REQUESTS:,} requests a month spread equally over "
             f"{len(categories)} capabilities, {ASSUMED_TOKENS} input tokens each; record usage or pass demand := "
             "for an allocation from real demand")
    return pl.DataFrame({"category": categories, "requests": [per] * len(categories),
                         "avg_tokens": [float(ASSUMED_TOKENS)] * len(categories)}), basis
