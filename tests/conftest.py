"""Shared fixtures: a real LanceDB store in tmp_path, a real DuckDB connection, the seed plan's agents and routes."""

from __future__ import annotations

import pytest

import tinydancer_duck as td
from tinydancer_duck.cli._demo import SEED_AGENTS_SQL  # the seed plan's registrations, verbatim

SEED_ROUTES_SQL = """
SELECT ruvector_create_route(
name := 'customer_support',
description := 'Handle customer support inquiries, complaints, and feedback',
embedding := ruvector_embed('Customer support and help requests'),
target_agent := 'support-agent',
priority := 1
);
SELECT ruvector_create_route(
name := 'technical_docs',
description := 'Answer questions about technical documentation and APIs',
embedding := ruvector_embed('Technical documentation and API reference'),
target_agent := 'docs-agent',
priority := 2
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
