"""The demo job: register agents, write a Parquet request log of real requests, route it in SQL, summarize.

Runs on a fresh temporary store in well under a minute, so a newcomer sees the whole path:
SQL macro -> vectorized UDF -> numpy router -> LanceDB-backed registry.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tinydancer_duck.engine import connect

#: The seed plan's three registrations, verbatim.
SEED_AGENTS_SQL = """
SELECT ruvector_register_agent(
name := 'gpt-4',
agent_type := 'llm',
capabilities := ARRAY['reasoning', 'code', 'analysis', 'creative'],
cost_per_1k_tokens := 0.03,
avg_latency_ms := 2500,
quality_score := 0.95,
metadata := '{"provider": "openai", "context_window": 128000}'
);
SELECT ruvector_register_agent(
name := 'claude-3-haiku',
agent_type := 'llm',
capabilities := ARRAY['fast-response', 'simple-tasks', 'classification'],
cost_per_1k_tokens := 0.00025,
avg_latency_ms := 400,
quality_score := 0.80,
metadata := '{"provider": "anthropic", "context_window": 200000}'
);
SELECT ruvector_register_agent(
name := 'code-specialist',
agent_type := 'tool',
capabilities := ARRAY['code-execution', 'debugging', 'testing'],
cost_per_call := 0.001,
avg_latency_ms := 100,
quality_score := 0.90
);
"""

ROUTE_LOG_SQL = """
SELECT request_id, request,
       ruvector_route(request, optimize_for := 'cost') AS by_cost,
       ruvector_route(request, optimize_for := 'quality') AS by_quality
FROM read_parquet(?)
"""


def shipped(name: str) -> str:
    """Text of a file shipped in the package's datasets/."""
    return resources.files("tinydancer_duck.datasets").joinpath(name).read_text(encoding="utf-8")


def write_request_log(path: Path, rows: int, *, random_state: int = 0) -> int:
    """Write a Parquet request log of real CLINC150 requests (val + out-of-scope), shuffled; returns its row count."""
    data = json.loads(shipped("clinc150_train_val.json"))
    texts = [text for text, _ in data["val"] + data["oos_val"] + data["train"]][:max(rows, 0)]
    order = np.random.default_rng(random_state).permutation(len(texts))
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    table = pa.table({
        "request_id": pa.array(np.arange(len(texts)), pa.int64()),
        "ts": pa.array([start + timedelta(seconds=37 * i) for i in range(len(texts))], pa.timestamp("us", tz="UTC")),
        "request": pa.array([texts[i] for i in order], pa.string()),
    })
    pq.write_table(table, path)
    return table.num_rows


def run_demo(store: str | Path | None = None, *, rows: int = 3000, echo: Callable[[str], None] = print) -> dict:
    """Run the demo end to end and print a summary; returns the figures it printed (for tests)."""
    with tempfile.TemporaryDirectory(prefix="tinydancer-demo-") as scratch:
        store = Path(store) if store is not None else Path(scratch) / "store"
        con = connect(store)
        con.execute(SEED_AGENTS_SQL).fetchall()
        for config in json.loads(shipped("agents.json"))[3:]:
            con.execute("SELECT ruvector_register_agent_full(?)", [json.dumps(config)]).fetchall()
        agents = con.sql("SELECT name, agent_type, capabilities FROM ruvector_list_agents()").fetchall()
        echo(f"registered {len(agents)} agents in {store}:")
        for name, kind, caps in agents:
            echo(f"  {name:<18} {kind:<9} {', '.join(caps)}")

        log = Path(scratch) / "requests.parquet"
        n = write_request_log(log, rows)
        echo(f"\nwrote {n} real requests (CLINC150) to {log.name}; routing them in one SQL query:")
        echo("  " + " ".join(ROUTE_LOG_SQL.split()))
        started = time.perf_counter()
        routed = con.sql(ROUTE_LOG_SQL, params=[str(log)]).to_arrow_table()
        seconds = time.perf_counter() - started
        echo(f"  {routed.num_rows} rows x 2 objectives in {seconds:.2f} s "
             f"({2 * routed.num_rows / seconds:,.0f} decisions/s)\n")

        con.register("routed", routed)
        summary = {"rows": routed.num_rows, "seconds": seconds}
        for objective in ("by_cost", "by_quality"):
            figures = con.sql(f"""
                SELECT {objective}.agent_name AS agent, count(*) AS requests,
                       sum({objective}.estimated_cost) AS est_cost,
                       median({objective}.confidence) AS p50_confidence
                FROM routed GROUP BY ALL ORDER BY requests DESC""").fetchall()
            total = sum(cost or 0.0 for _, _, cost, _ in figures)
            summary[objective] = {"mix": {a: r for a, r, _, _ in figures}, "total_cost": total}
            echo(f"optimize_for := '{objective[3:]}': total estimated cost ${total:.4f}")
            echo(f"  {'agent':<18} {'requests':>8} {'est. cost':>10} {'p50 conf':>9}")
            for agent, count, cost, confidence in figures:
                echo(f"  {agent or '(none)':<18} {count:>8} {cost or 0.0:>10.4f} {confidence or 0.0:>9.2f}")
            echo("")
        echo("a few rows:")
        for request, cost_pick, quality_pick, why in con.sql("""
                SELECT request, by_cost.agent_name, by_quality.agent_name, by_quality.reasoning
                FROM routed ORDER BY request_id LIMIT 5""").fetchall():
            echo(f"  {request[:48]!r:<52} cost -> {cost_pick:<17} quality -> {quality_pick}")
            echo(f"      {why}")
        con.close()
        return summary
