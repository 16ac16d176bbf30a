"""The demo job: register agents, write a Parquet request log of real requests, route it in SQL, summarize.

Runs in well under a minute on a store in a named folder (./tinydancer-demo unless --store), so a newcomer sees the
whole path (SQL macro -> vectorized UDF -> numpy router -> LanceDB-backed registry) and can go on with the commands it
prints: route, simulate and report on the same store and log.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tinydancer_duck.engine import connect
from tinydancer_duck.errors import InvalidArgument

#: Where the demo keeps its store (and its request log) unless --store says otherwise: a folder you can see.
DEFAULT_STORE = "tinydancer-demo"

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
       ruvector_route(request, optimize_for := 'balanced') AS by_balanced
FROM read_parquet(?)
"""


def shipped(name: str) -> str:
    """Text of a file shipped in the package's datasets/."""
    return resources.files("tinydancer_duck.datasets").joinpath(name).read_text(encoding="utf-8")


def demo_requests() -> list[str]:
    """The real requests the demo can log: CLINC150's validation, out-of-scope validation and training texts."""
    data = json.loads(shipped("clinc150_train_val.json"))
    return [text for text, _ in data["val"] + data["oos_val"] + data["train"]]


def write_request_log(path: Path, rows: int, *, random_state: int = 0) -> int:
    """Write a Parquet request log of ``rows`` real CLINC150 requests (val + out-of-scope first), shuffled; returns
    its row count."""
    texts = demo_requests()[:max(rows, 0)]
    order = np.random.default_rng(random_state).permutation(len(texts))
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    table = pa.table({
        "request_id": pa.array(np.arange(len(texts)), pa.int64()),
        "ts": pa.array([start + timedelta(seconds=37 * i) for i in range(len(texts))], pa.timestamp("us", tz="UTC")),
        "request": pa.array([texts[i] for i in order], pa.string()),
    })
    pq.write_table(table, path)
    return table.num_rows


def check_rows(rows: int) -> int:
    """``rows`` when it lies within 1 and the number of requests the demo ships; else an error naming --rows."""
    available = len(demo_requests())
    if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= available:
        raise InvalidArgument("--rows", rows, f"must be between 1 and {available:,} (the real requests the demo "
                              "ships)")
    return rows


def next_commands(store: Path, log: Path) -> list[tuple[str, str]]:
    """(what it does, the command) for the three things to try next on the demo's store, quoted for a shell."""
    s, q = shlex.quote(str(store)), shlex.quote(str(log))
    return [("route one request with the demo's agents",
             f"tinydancer route \"my credit card was charged twice, please refund it\" --store {s}"),
            ("replay the whole log under the cost objective: spend, quality, agent mix",
             f"tinydancer simulate {q} --store {s} --optimize-for cost"),
            ("one HTML page of the log: cost-quality curve, budgets, agent mix",
             f"tinydancer report {q} --store {s} -o {shlex.quote(str(store / 'report.html'))}")]


def _register_agents(con: Any, store: Path, echo: Callable[[str], None]) -> None:
    """Step 1: the seed plan's three agents by its SQL, then the five more agents.json holds, shown as a table."""
    from ._table import fixed, money, show

    con.execute(SEED_AGENTS_SQL).fetchall()
    for config in json.loads(shipped("agents.json"))[3:]:
        con.execute("SELECT ruvector_register_agent_full(?)", [json.dumps(config)]).fetchall()
    agents = con.sql("SELECT name, agent_type, capabilities, cost_per_1k_tokens, cost_per_call, avg_latency_ms, "
                     "quality_score FROM ruvector_list_agents() ORDER BY name").fetchall()
    echo(f"1. registered {len(agents)} agents in the store {store} (the seed plan's three by its SQL, then five more):")
    show(("agent", "type", "capabilities", "$/1k tokens", "$/call", "latency (ms)", "quality (0-1)"),
         [(name, kind, ", ".join(caps), money(per_1k), money(per_call), f"{latency:g}", fixed(quality, 2))
          for name, kind, caps, per_1k, per_call, latency, quality in agents], echo=echo, indent="   ")


def run_demo(store: str | Path = DEFAULT_STORE, *, rows: int = 3000, echo: Callable[[str], None] = print) -> dict:
    """Run the demo end to end on the store folder ``store`` (made when missing; the request log is written inside
    it as requests.parquet) and print what it did, what each figure means and three commands to try next; returns
    the figures it printed (for tests)."""
    from ._paths import check_output
    from ._table import fixed, money, show

    rows = check_rows(rows)
    store = check_output("--store", str(store), ())
    store.mkdir(exist_ok=True)
    con = connect(store)
    _register_agents(con, store, echo)

    log = store / "requests.parquet"
    n = write_request_log(log, rows)
    echo(f"\n2. wrote {n:,} real requests (CLINC150, CC BY 3.0) to {log}, then routed them in one SQL query:")
    echo("   " + " ".join(ROUTE_LOG_SQL.split()))
    started = time.perf_counter()
    routed = con.sql(ROUTE_LOG_SQL, params=[str(log)]).to_arrow_table()
    seconds = time.perf_counter() - started
    echo(f"   {routed.num_rows:,} rows x 2 objectives in {seconds:.2f} s "
         f"({2 * routed.num_rows / seconds:,.0f} decisions/s)")

    con.register("routed", routed)
    summary: dict = {"rows": routed.num_rows, "seconds": seconds, "store": str(store), "log": str(log)}
    for step, objective in ((3, "by_cost"), (4, "by_balanced")):
        figures = con.sql(f"""
            SELECT {objective}.agent_name AS agent, count(*) AS requests,
                   sum({objective}.estimated_cost) AS est_cost,
                   median({objective}.confidence) AS p50_confidence
            FROM routed GROUP BY ALL ORDER BY requests DESC, agent""").fetchall()
        total = sum(cost or 0.0 for _, _, cost, _ in figures)
        summary[objective] = {"mix": {a: r for a, r, _, _ in figures}, "total_cost": total}
        echo(f"\n{step}. optimize_for := '{objective[3:]}': estimated cost of the whole log ${money(total)}")
        show(("agent", "requests", "est. cost ($)", "median confidence (0-1)"),
             [(agent, f"{count:,}", money(cost), fixed(confidence, 2)) for agent, count, cost, confidence in figures],
             echo=echo, indent="   ")
    echo("\n   requests: how many of the log's requests the objective sent to the agent; est. cost: the sum of the "
         "agent's registered price over them (no request was sent to any model); median confidence: the middle of "
         "the router's confidence in each choice, 0-1 (how clearly the chosen agent beat the runner-up).")
    echo("\n5. a few decisions (cost -> the cheapest agent that can serve the request, balanced -> cost, speed and "
         "quality weighed by the probability of serving it):")
    show(("request", "by cost", "balanced"),
         con.sql("SELECT request, by_cost.agent_name, by_balanced.agent_name FROM routed ORDER BY request_id "
                 "LIMIT 5").fetchall(), echo=echo, indent="   ")
    con.close()
    summary["next"] = next_commands(store, log)
    echo("\nnext, on the same store (copy and paste):")
    for what, command in summary["next"]:
        echo(f"  # {what}\n  {command}")
    echo("these agents' qualities are registered priors (the log holds no outcomes); to learn from outcomes, the "
         "README's journey continues with `tinydancer example-data`")
    return summary
