"""The store's tables, defined once (DESIGN §4): pyarrow schemas, no LanceDB.

``agents``, ``routes``, ``models``, ``usage``, plus ``route_examples`` (a semantic route's example utterances,
several vectors per route) and ``budgets``. Vector tables carry the embedding dimension in their type and the
embedder's identity in their metadata, so a store can refuse vectors from another embedder.
"""

from __future__ import annotations

import pyarrow as pa

IDENTITY_KEY = b"tinydancer.embedder"
TABLES = ("agents", "routes", "models", "usage", "route_examples", "budgets")
_TIMESTAMP = pa.timestamp("us", tz="UTC")


def agents_schema(dim: int, identity: str) -> pa.Schema:
    return pa.schema(
        [
            pa.field("name", pa.string(), nullable=False),
            pa.field("agent_type", pa.string(), nullable=False),
            pa.field("capabilities", pa.list_(pa.string())),
            pa.field("capability_embedding", pa.list_(pa.float32(), dim)),
            pa.field("cost_per_1k_tokens", pa.float64()),
            pa.field("cost_per_call", pa.float64()),
            pa.field("cost_per_second", pa.float64()),
            pa.field("avg_output_tokens", pa.float64()),
            pa.field("avg_latency_ms", pa.float64()),
            pa.field("p99_latency_ms", pa.float64()),
            pa.field("quality_score", pa.float64()),
            pa.field("success_rate", pa.float64()),
            pa.field("total_requests", pa.int64()),
            pa.field("metadata", pa.string()),
            pa.field("active", pa.bool_()),
            pa.field("created_at", _TIMESTAMP),
            pa.field("updated_at", _TIMESTAMP),
            # added after the first release: nullable and last, so older stores gain them on open (Store._migrated)
            pa.field("description", pa.string()),
            pa.field("examples", pa.list_(pa.string())),
            pa.field("context_window", pa.int64()),
            pa.field("max_output_tokens", pa.int64()),
            pa.field("scope", pa.string()),  # 'general' | 'specialist' (NULL in an older store: from agent_type)
        ],
        metadata={IDENTITY_KEY: identity.encode()},
    )


def routes_schema(dim: int, identity: str) -> pa.Schema:
    return pa.schema(
        [
            pa.field("name", pa.string(), nullable=False),
            pa.field("description", pa.string()),
            pa.field("embedding", pa.list_(pa.float32(), dim)),
            pa.field("target_agent", pa.string()),
            pa.field("priority", pa.int32()),
            pa.field("min_similarity", pa.float64()),
            pa.field("conditions", pa.string()),
            pa.field("created_at", _TIMESTAMP),
        ],
        metadata={IDENTITY_KEY: identity.encode()},
    )


def route_examples_schema(dim: int, identity: str) -> pa.Schema:
    """Example utterances of semantic routes: a route scores as the max over its own and its examples' vectors."""
    return pa.schema(
        [
            pa.field("route", pa.string(), nullable=False),
            pa.field("text", pa.string()),
            pa.field("embedding", pa.list_(pa.float32(), dim)),
            pa.field("created_at", _TIMESTAMP),
        ],
        metadata={IDENTITY_KEY: identity.encode()},
    )


MODELS_SCHEMA = pa.schema(
    [
        pa.field("name", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("kind", pa.string()),
        pa.field("weights", pa.large_binary()),
        pa.field("labels", pa.list_(pa.string())),
        pa.field("metrics", pa.string()),
        pa.field("created_at", _TIMESTAMP),
    ]
)

USAGE_SCHEMA = pa.schema(
    [
        pa.field("ts", _TIMESTAMP),
        pa.field("request_id", pa.string()),
        pa.field("agent", pa.string()),
        pa.field("route", pa.string()),
        pa.field("category", pa.string()),
        pa.field("tokens_in", pa.int64()),
        pa.field("tokens_out", pa.int64()),
        pa.field("cost", pa.float64()),
        pa.field("latency_ms", pa.float64()),
        pa.field("success", pa.bool_()),
        pa.field("quality", pa.float64()),
        # added after the first release (nullable and last: older stores gain them on open): the probability the
        # routing policy had of choosing this agent, and the policy's name, so a replay can weigh what was tried
        pa.field("propensity", pa.float64()),
        pa.field("policy", pa.string()),
    ]
)

#: Spending limits (tinydancer_duck/budget/_budgets.py): one row per (scope, agent); scope 'global' has agent ''.
#: period is 'day', 'week' or 'month' (calendar periods in UTC).
BUDGETS_SCHEMA = pa.schema(
    [
        pa.field("scope", pa.string(), nullable=False),
        pa.field("agent", pa.string(), nullable=False),
        pa.field("amount", pa.float64()),
        pa.field("period", pa.string()),
        pa.field("created_at", _TIMESTAMP),
    ]
)


def expected_schema(name: str, dim: int, identity: str) -> pa.Schema:
    """The schema this version writes for table ``name``."""
    vector = {"agents": agents_schema, "routes": routes_schema, "route_examples": route_examples_schema}
    if name in vector:
        return vector[name](dim, identity)
    return {"models": MODELS_SCHEMA, "usage": USAGE_SCHEMA, "budgets": BUDGETS_SCHEMA}[name]


def appended_fields(found: pa.Schema, expected: pa.Schema) -> pa.Schema | None:
    """The nullable columns a newer version appended to ``expected`` that a table of schema ``found`` lacks (a
    store written by an older version), or None when the difference is anything else."""
    missing = expected.names[len(found.names):]
    if not missing or found.names != expected.names[:len(found.names)] \
            or not all(expected.field(field).nullable for field in missing):
        return None
    return pa.schema([expected.field(field) for field in missing])


def check_schema(store: object, name: str, found: pa.Schema, expected: pa.Schema) -> None:
    """StoreError when table ``name`` of the store at ``store`` was made by another embedder or version."""
    from tinydancer_duck.errors import StoreError

    want = (expected.metadata or {}).get(IDENTITY_KEY)
    have = (found.metadata or {}).get(IDENTITY_KEY)
    if want is not None and have != want:
        raise StoreError(
            f"store {store} table {name!r} holds vectors from embedder "
            f"{(have or b'unknown').decode()!r}, but this connection uses {want.decode()!r}; "
            f"open it with the same embedder, or move it to this one with `tinydancer reembed --store {store}`"
        )
    if found.names != expected.names:
        raise StoreError(
            f"store {store} table {name!r} has columns {found.names}, expected {expected.names}; "
            "it was written by an incompatible version"
        )
