"""The example files the README's journey reads, written by `tinydancer example-data DIR`.

All of them are synthetic, generated here by :mod:`tinydancer_duck.datasets.generate_log` (seeded, so the same
files every time; part of this package, MIT): no third-party data is redistributed.

- ``outcomes.parquet``: an outcome log in RouterBench's wide shape: per request (request_id, category, request),
  each agent's outcome in its own column (``premium``, ``math-tutor``, ``generalist``: 0 or 1) and its dollar cost
  in ``<agent>|total_cost``; beside them the log's own choice (``agent``, ``cost``, ``quality``, ``latency_ms``:
  every request went to ``premium``, the actual policy a replay is compared with);
- ``requests.parquet``: request texts to route (request_id, request), other requests of the same kinds;
- ``usage.parquet``: what the log's own policy did, as a usage log for ``ruvector_ingest_usage`` (ts, request_id,
  agent, category, cost, latency_ms, success, quality);
- ``agents.parquet``: the three agents as registration rows (name, agent_type, capabilities, cost_per_1k_tokens,
  avg_output_tokens, avg_latency_ms, quality_score) for ``Engine.register_agents``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .generate_log import agent_specs, generate_log

FILES = ("outcomes.parquet", "requests.parquet", "usage.parquet", "agents.parquet")
OUTCOME_ROWS = 2000
REQUEST_ROWS = 500
SEED = 7
#: The usage log's first event; one request every 37 seconds from then (history, not now).
USAGE_START = datetime(2026, 10, 1, tzinfo=timezone.utc)


def example_tables(*, outcome_rows: int = OUTCOME_ROWS, request_rows: int = REQUEST_ROWS,
                   seed: int = SEED) -> dict[str, pa.Table]:
    """The four example tables by file name (module docstring)."""
    outcomes = generate_log(outcome_rows, seed=seed)
    others = generate_log(request_rows, seed=seed + 1)
    requests = pa.table({"request_id": pc.binary_join_element_wise("q", others["request_id"], ""),
                         "request": others["request"]})
    n = outcomes.num_rows
    usage = pa.table({
        "ts": pa.array([USAGE_START + timedelta(seconds=37 * i) for i in range(n)], pa.timestamp("us", tz="UTC")),
        "request_id": outcomes["request_id"], "agent": outcomes["agent"], "category": outcomes["category"],
        "cost": outcomes["cost"], "latency_ms": outcomes["latency_ms"],
        "success": pa.array(np.asarray(outcomes["quality"]) >= 0.5), "quality": outcomes["quality"]})
    return {"outcomes.parquet": outcomes, "requests.parquet": requests, "usage.parquet": usage,
            "agents.parquet": pa.Table.from_pylist(agent_specs())}


def existing(folder: str | Path) -> list[Path]:
    """The example files already in ``folder`` (they would be replaced)."""
    return [Path(folder) / name for name in FILES if (Path(folder) / name).exists()]


def write_example_data(folder: str | Path) -> dict[str, int]:
    """Write the example files into ``folder`` (which must exist); file name -> rows written."""
    written = {}
    for name, table in example_tables().items():
        pq.write_table(table, Path(folder) / name)
        written[name] = table.num_rows
    return written
