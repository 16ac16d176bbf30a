"""Shared by the distributed tests: a store with agents and semantic routes, a Parquet log of real requests, the
SQL path's decisions for it, and a comparison of routed tables with them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import tinydancer_duck as td
from tinydancer_duck.cli._demo import write_request_log

REPO = Path(__file__).resolve().parents[1]
SQL_ROUTE = "SELECT request_id, ruvector_route(request) AS r FROM read_parquet(?) ORDER BY request_id"
FLOATS = ("confidence", "estimated_cost", "estimated_latency_ms")


def routing_engine(store: str | Path, **kwargs) -> td.Engine:
    """An engine on ``store`` with the packaged agents and one semantic route (with a target agent)."""
    engine = td.Engine(store, **kwargs)
    engine.register_agents(json.loads((REPO / "tinydancer_duck" / "datasets" / "agents.json").read_text()))
    target = engine.list_agents()["name"][0].as_py()
    engine.routes.create_route("weather", "questions about the weather forecast", target)
    examples = ["what is the weather like today", "will it rain tomorrow", "how hot is it outside",
                "is it going to snow this week", "what's the forecast for the weekend"]
    engine.routes.add_examples(["weather"] * len(examples), examples)
    return engine


def request_log(path: Path, rows: int) -> Path:
    """A Parquet log of ``rows`` real requests (CLINC150, repeated to size), request_id 0..rows-1, with NULLs."""
    base = path.with_suffix(".base.parquet")
    write_request_log(base, rows)
    table = pq.read_table(base)
    while table.num_rows < rows:
        table = pa.concat_tables([table, table]).slice(0, rows)
    requests = table["request"].to_pylist()
    requests[7] = None
    requests[11] = ""
    table = table.set_column(0, "request_id", pa.array(np.arange(rows), pa.int64()))
    table = table.set_column(2, "request", pa.array(requests, pa.string()))
    pq.write_table(table, path, row_group_size=max(rows // 5, 1))
    return path


def sql_decisions(engine: td.Engine, log: Path) -> pa.Table:
    """request_id and ruvector_route's fields through the SQL path (DuckDB's 2048-row chunks)."""
    con = engine.connect()
    try:
        table = con.sql(SQL_ROUTE, params=[str(log)]).to_arrow_table()
    finally:
        con.close()
    fields = pa.Table.from_struct_array(table["r"].combine_chunks())
    return fields.add_column(0, "request_id", table["request_id"])


def assert_same_decisions(got: pa.Table, want: pa.Table) -> None:
    """Agents, reasoning and candidates identical per request_id; floats within 5e-6 (a probability of serving is
    computed in float32 from similarities whose last bits differ with the batch a row falls in, and confidence, a
    softmax at temperature 0.1, magnifies that tenfold)."""
    got = got.sort_by("request_id")
    assert got["request_id"].to_pylist() == want["request_id"].to_pylist()
    for name in ("agent_name", "candidates", "reasoning"):
        assert got[name].to_pylist() == want[name].to_pylist(), name
    for name in FLOATS:
        a = got[name].to_numpy(zero_copy_only=False).astype(float)
        b = want[name].to_numpy(zero_copy_only=False).astype(float)
        np.testing.assert_allclose(a, b, rtol=0, atol=5e-6, equal_nan=True, err_msg=name)
