"""Shared fixtures: a real LanceDB store in tmp_path, a real DuckDB connection, the seed plan's agents."""

from __future__ import annotations

import pytest

import tinydancer_duck as td

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


@pytest.fixture
def store(tmp_path):
    return tmp_path / "store"


@pytest.fixture
def engine(store):
    return td.Engine(store)


@pytest.fixture
def con(engine):
    connection = engine.connect()
    yield connection
    connection.close()


@pytest.fixture
def seed_con(con):
    """A connection whose store holds the seed plan's three agents, registered by its SQL verbatim."""
    con.execute(SEED_AGENTS_SQL).fetchall()
    return con


def rows(con, query, params=None):
    """Result rows as dicts."""
    result = con.execute(query, params or [])
    names = [d[0] for d in result.description]
    return [dict(zip(names, row)) for row in result.fetchall()]
