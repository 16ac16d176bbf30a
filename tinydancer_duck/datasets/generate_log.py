"""Synthetic request logs with per-agent outcomes, for simulations, what-if analysis, tests and benchmarks.

Every request belongs to a category (math, code, writing) and every agent has a known probability of answering each
category correctly, so the right answers of a simulation are known by construction. The default agents:

- ``premium``: expensive, right 90% of the time on every category;
- ``math-tutor``: the cheapest, always right on math and always wrong elsewhere;
- ``generalist``: mid-priced, right 60% / 70% / 80% of the time on math / code / writing.

Wide format (like RouterBench): one row per request with ``request_id``, ``category``, ``request``, the logged choice
(``agent``, ``cost``, ``quality``, ``latency_ms``) and, per agent, its outcome in column ``<agent>`` (0/1) and its
dollar cost in ``<agent>|total_cost``. Long format (:func:`to_long`): one row per (request, agent) observed.
Production format (:func:`to_production`, ``--production``): one agent per request, its outcome, cost and propensity.

    python tinydancer_duck/datasets/generate_log.py out.parquet --rows 100000 --seed 0
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CATEGORIES = ("math", "code", "writing")

#: name -> price and per-category probability of a correct answer
AGENTS: dict[str, dict[str, Any]] = {
    "premium": {"cost_per_1k_tokens": 0.03, "avg_output_tokens": 300, "avg_latency_ms": 2500,
                "correct": {"math": 0.9, "code": 0.9, "writing": 0.9}},
    "math-tutor": {"cost_per_1k_tokens": 0.0005, "avg_output_tokens": 300, "avg_latency_ms": 300,
                   "correct": {"math": 1.0, "code": 0.0, "writing": 0.0}},
    "generalist": {"cost_per_1k_tokens": 0.004, "avg_output_tokens": 300, "avg_latency_ms": 900,
                   "correct": {"math": 0.6, "code": 0.7, "writing": 0.8}},
}

_TEMPLATES = {
    "math": ("What is {a} plus {b}?", "Solve for x: {a} x + {b} = {c}", "Compute the derivative of x to the power {a}",
             "What is {a} times {b} divided by {c}?", "Calculate the sum of the integers from {a} to {c}"),
    "code": ("Write a Python function that sorts a list of {a} numbers", "Fix the bug in this JavaScript loop over {a} items",
             "Implement a binary search in Rust for {b} elements", "Write a SQL query that counts {a} orders per customer",
             "Refactor this Java class with {b} methods into smaller functions"),
    "writing": ("Write a short poem about the {w} at dawn", "Draft a friendly email inviting {b} colleagues to a {w} party",
                "Write a story about a {w} who learns to sing", "Summarize this essay about the {w} in {a} words",
                "Compose a haiku about the {w}"),
}
_WORDS = ("ocean", "forest", "city", "mountain", "river", "garden", "winter", "robot", "teacher", "lighthouse")


def agent_specs(agents: Mapping[str, Mapping[str, Any]] = AGENTS, *, capabilities: Sequence[str] = ("general",)
                ) -> list[dict[str, Any]]:
    """Rows for ``Engine.register_agents``: every agent gets the same capabilities (so the capability match ties
    and the objective decides) and its mean correctness as quality_score."""
    return [{"name": name, "agent_type": "llm", "capabilities": list(capabilities),
             "cost_per_1k_tokens": spec["cost_per_1k_tokens"], "avg_output_tokens": spec["avg_output_tokens"],
             "avg_latency_ms": spec["avg_latency_ms"],
             "quality_score": float(np.mean(list(spec["correct"].values())))} for name, spec in agents.items()]


def generate_log(rows: int, *, seed: int = 0, agents: Mapping[str, Mapping[str, Any]] = AGENTS,
                 categories: Sequence[str] = CATEGORIES, weights: Sequence[float] | None = None,
                 actual: str | None = "premium", bytes_per_token: float = 4.0) -> pa.Table:
    """A wide log of ``rows`` requests.

    actual : the agent every logged request went to (None: a uniformly random agent per row).
    Cost of agent a on a request = cost_per_1k_tokens * (ceil(bytes / bytes_per_token) + avg_output_tokens) / 1000,
    the router's own estimate, so estimated and logged costs agree.
    """
    rng = np.random.default_rng(seed)
    probs = None if weights is None else np.asarray(weights, float) / np.sum(weights)
    category = rng.choice(len(categories), size=rows, p=probs)
    template = rng.integers(0, 5, size=rows)
    a, b, c = rng.integers(2, 99, size=(3, rows))
    w = rng.integers(0, len(_WORDS), size=rows)
    texts = [_TEMPLATES[categories[k] if categories[k] in _TEMPLATES else "writing"][t].format(
        a=ai, b=bi, c=ci, w=_WORDS[wi]) for k, t, ai, bi, ci, wi in zip(category.tolist(), template.tolist(),
                                                                        a.tolist(), b.tolist(), c.tolist(), w.tolist())]
    request = pa.array(texts, pa.string())
    import pyarrow.compute as pc

    tokens = np.ceil(pc.binary_length(request).to_numpy() / bytes_per_token)
    names = list(agents)
    outcome, cost = {}, {}
    for name in names:
        spec = agents[name]
        p = np.array([spec["correct"].get(cat, 0.0) for cat in categories])[category]
        outcome[name] = (rng.random(rows) < p).astype(np.float64)
        cost[name] = spec["cost_per_1k_tokens"] * (tokens + spec["avg_output_tokens"]) / 1000.0
    if actual is None:
        chosen = rng.integers(0, len(names), size=rows)
    else:
        if actual not in agents:
            raise ValueError(f"actual={actual!r} is not one of the agents {names}")
        chosen = np.full(rows, names.index(actual))
    quality_matrix = np.column_stack([outcome[n] for n in names])
    cost_matrix = np.column_stack([cost[n] for n in names])
    latency = np.array([agents[n]["avg_latency_ms"] for n in names], float)[chosen]
    picked = np.arange(rows)
    columns: dict[str, Any] = {
        "request_id": pa.array([f"r{i}" for i in range(rows)], pa.string()),
        "category": pa.array(np.array(categories, dtype=object)[category].tolist(), pa.string()),
        "request": request,
        "agent": pa.array(np.array(names, dtype=object)[chosen].tolist(), pa.string()),
        "cost": cost_matrix[picked, chosen],
        "quality": quality_matrix[picked, chosen],
        "latency_ms": latency,
    }
    for name in names:
        columns[name] = outcome[name]
        columns[f"{name}|total_cost"] = cost[name]
    return pa.table(columns)


def to_long(wide: pa.Table, agents: Sequence[str] = tuple(AGENTS), *, observe: float = 1.0, seed: int = 0) -> pa.Table:
    """The long format: one row per (request, agent) with request_id, request, category, agent, quality, cost;
    each pair kept with probability ``observe`` (the logged choice always)."""
    rng = np.random.default_rng(seed)
    parts = []
    logged = np.asarray(wide["agent"].to_pylist(), dtype=object)
    for name in agents:
        keep = (rng.random(wide.num_rows) < observe) | (logged == name)
        rows = wide.filter(pa.array(keep))
        parts.append(pa.table({"request_id": rows["request_id"], "request": rows["request"],
                               "category": rows["category"], "agent": pa.array([name] * rows.num_rows, pa.string()),
                               "quality": rows[name], "cost": rows[f"{name}|total_cost"]}))
    return pa.concat_tables(parts)


def to_production(wide: pa.Table, agents: Sequence[str] = tuple(AGENTS), *, seed: int = 0) -> pa.Table:
    """A production log: per request one agent drawn by a context-dependent logging policy (math requests go to the
    agents with probabilities 0.2, 0.2, 0.6, others 0.4, 0.3, 0.3 for three agents; uniform otherwise), only that
    agent's outcome and cost, and the ``propensity`` it was drawn with."""
    rng = np.random.default_rng(seed)
    names = list(agents)
    uniform = np.full(len(names), 1.0 / len(names))
    math_p, other_p = ((np.array([0.2, 0.2, 0.6]), np.array([0.4, 0.3, 0.3])) if len(names) == 3
                       else (uniform, uniform))
    math = np.asarray(wide["category"].to_pylist(), dtype=object) == "math"
    p = np.where(math[:, None], math_p, other_p)
    chosen = np.minimum((rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(axis=1), len(names) - 1)
    rows = np.arange(len(p))
    quality = np.column_stack([wide[a].to_numpy() for a in names])[rows, chosen]
    cost = np.column_stack([wide[f"{a}|total_cost"].to_numpy() for a in names])[rows, chosen]
    return pa.table({"request_id": wide["request_id"], "category": wide["category"], "request": wide["request"],
                     "agent": pa.array(np.asarray(names, dtype=object)[chosen].tolist(), pa.string()),
                     "quality": quality, "cost": cost, "propensity": p[rows, chosen]})


def write_log(path: str, rows: int, *, seed: int = 0, batch_rows: int = 200_000, production: bool = False,
              **options: Any) -> str:
    """Write a wide log of ``rows`` requests (a production log with ``production``, :func:`to_production`) to a
    Parquet file in batches (bounded memory)."""
    writer = None
    try:
        for start in range(0, rows, batch_rows):
            part = generate_log(min(batch_rows, rows - start), seed=seed + start, **options)
            ids = pa.array([f"r{i}" for i in range(start, start + part.num_rows)], pa.string())
            part = part.set_column(0, "request_id", ids)
            if production:
                part = to_production(part, seed=seed + start)
            if writer is None:
                writer = pq.ParquetWriter(path, part.schema)
            writer.write_table(part)
    finally:
        if writer is not None:
            writer.close()
    return path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic request log with per-agent outcomes.")
    parser.add_argument("path")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--production", action="store_true",
                        help="one agent's outcome per request, with the logging policy's propensity")
    args = parser.parse_args(argv)
    write_log(args.path, args.rows, seed=args.seed, production=args.production)
    print(f"wrote {args.rows} rows to {args.path}")


if __name__ == "__main__":
    main()
