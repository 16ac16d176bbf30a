"""Every SQL block in the README runs as written, in order, on a fresh store (so the docs cannot drift)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import tinydancer_duck as td

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def sql_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", README, flags=re.DOTALL)


def write_fixtures(folder: Path) -> None:
    """The files the README's examples read: requests, usage log, outcomes log, production log and training Parquet
    files."""
    data = json.loads((REPO / "tinydancer_duck" / "datasets" / "clinc150_train_val.json").read_text())
    texts = [text for text, _ in data["val"][:300]]
    pq.write_table(pa.table({"request_id": list(range(len(texts))), "request": texts}), folder / "requests.parquet")
    start = datetime.now(timezone.utc) - timedelta(days=1)
    pq.write_table(pa.table({
        "agent": ["gpt-4", "claude-3-haiku", "code-specialist"] * 20,
        "cost": [0.02, 0.0003, 0.001] * 20,
        "success": [True, True, False] * 20,
        "latency_ms": [2400.0, 380.0, 120.0] * 20,
        "ts": pa.array([start + timedelta(minutes=i) for i in range(60)], pa.timestamp("us", tz="UTC")),
        "category": ["analysis", "chat", "code"] * 20,
    }), folder / "log.parquet")
    (folder / "old.csv").write_text("agent,cost,success,latency_ms\ngpt-4,0.02,true,2100\nclaude-3-haiku,0.0004,true,"
                                    "300\n")  # a log without timestamps
    rng = np.random.default_rng(0)
    outcomes = {"request_id": [f"q{i}" for i in range(200)], "request": texts[:200],
                "category": [data["val"][i][1] for i in range(200)]}
    for agent, accuracy, price in (("gpt-4", 0.9, 0.01), ("claude-3-haiku", 0.7, 0.0003), ("code-specialist", 0.5,
                                                                                           0.001)):
        outcomes[agent] = (rng.random(200) < accuracy).astype(float)
        outcomes[f"{agent}|total_cost"] = np.full(200, price)
    pq.write_table(pa.table(outcomes), folder / "outcomes.parquet")
    agents, chance = ["gpt-4", "claude-3-haiku", "code-specialist"], [0.5, 0.3, 0.2]
    pick = rng.choice(3, size=200, p=chance)  # a production log: one agent per request, with its propensity
    pq.write_table(pa.table({"request": texts[:200], "category": outcomes["category"],
                             "agent": [agents[k] for k in pick],
                             "quality": [outcomes[agents[k]][i] for i, k in enumerate(pick)],
                             "cost": [outcomes[f"{agents[k]}|total_cost"][i] for i, k in enumerate(pick)],
                             "propensity": [chance[k] for k in pick]}), folder / "production.parquet")
    picked = [row for row in data["train"] if row[1] in ("balance", "weather", "timer")]
    pq.write_table(pa.table({"text": [t for t, _ in picked], "label": [lab for _, lab in picked]}),
                   folder / "train.parquet")


def test_readme_sql_blocks_run_in_order(tmp_path, monkeypatch):
    write_fixtures(tmp_path)
    monkeypatch.chdir(tmp_path)
    con = td.connect(tmp_path / "store")
    con.execute("CREATE TABLE pending_requests AS SELECT request_id, request AS content FROM 'requests.parquet'")
    blocks = sql_blocks()
    assert len(blocks) >= 6
    ran = 0
    for block in blocks:
        for statement in con.extract_statements(block):
            try:
                con.execute(statement).fetchall()
            except duckdb.Error as exc:  # pragma: no cover - the message is the point
                raise AssertionError(f"README SQL failed:\n{statement.query}\n{exc}") from exc
            ran += 1
    assert ran >= 20
    assert con.execute("SELECT count(*) FROM ruvector_list_agents()").fetchone()[0] >= 3
    assert con.execute("SELECT count(*) FROM ruvector_list_routes()").fetchone()[0] == 2
