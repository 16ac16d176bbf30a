"""The LanceDB store: the only module that talks to LanceDB.

Four tables, schemas defined once here (DESIGN §4): ``agents``, ``routes``, ``models``, ``usage``, plus
``route_examples`` (a semantic route's example utterances, several vectors per route). The embedding
dimension and the identity of the embedder that made the vectors are part of the ``agents``/``routes`` schemas, so a
store refuses vectors from another embedder instead of silently mixing spaces.

Readers get Arrow tables (and numpy snapshots built from them) cached by table version: a read costs one version
check unless another connection or process wrote since. Values from users reach LanceDB filters only through
:func:`sql_literal`, which quotes them as data.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import lancedb
import pyarrow as pa
import pyarrow.compute as pc

from .errors import StoreError

T = TypeVar("T")

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
    ]
)

#: Spending limits (tinydancer_duck/budget.py): one row per (scope, agent); scope 'global' has agent ''.
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


#: Seconds a table version read from LanceDB is trusted before asking again (see Store.version).
CONSISTENCY_INTERVAL_S = 0.05
_local_writes: dict[tuple[str, str], int] = {}  # (store directory, table) -> writes made by this process
_local_lock = threading.Lock()


def default_store_path() -> Path:
    """``$TINYDANCER_HOME`` if set, else ``~/.tinydancer``."""
    home = os.environ.get("TINYDANCER_HOME")
    return Path(home).expanduser() if home else Path.home() / ".tinydancer"


def sql_literal(value: str) -> str:
    """Quote a user string as a LanceDB (DataFusion) SQL string literal: data, never SQL."""
    if not isinstance(value, str):
        raise StoreError(f"filter value must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise StoreError("filter value contains a NUL character")
    return "'" + value.replace("'", "''") + "'"


def in_filter(column: str, values: Iterable[str]) -> str:
    """``column IN ('a', 'b')`` with every value quoted by :func:`sql_literal`."""
    return f"{column} IN ({', '.join(sql_literal(v) for v in values)})"


class Store:
    """A LanceDB directory holding the four tables, for one embedder identity and dimension.

    Thread-safe for the engine's use: DuckDB may call UDFs from several threads (one at a time under the GIL, but
    interleaved), so table handles and caches are guarded by a lock.
    """

    def __init__(self, path: str | Path | None, *, embedder_identity: str, dim: int,
                 consistency_interval_s: float = CONSISTENCY_INTERVAL_S) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        self._key = str(self.path.resolve())
        self.identity = embedder_identity
        self.dim = dim
        self._schemas = {
            "agents": agents_schema(dim, embedder_identity),
            "routes": routes_schema(dim, embedder_identity),
            "models": MODELS_SCHEMA,
            "usage": USAGE_SCHEMA,
            "budgets": BUDGETS_SCHEMA,
            "route_examples": route_examples_schema(dim, embedder_identity),
            "route_examples": route_examples_schema(dim, embedder_identity),
        }
        self._lock = threading.RLock()
        self.consistency_interval_s = consistency_interval_s
        self._versions: dict[str, tuple[int, float, int]] = {}
        self._tables: dict[str, Any] = {}
        self._cache: dict[tuple[str, str], tuple[int, Any]] = {}
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            # interval 0: every read checks the latest version, so other connections' writes are seen at once.
            self._db = lancedb.connect(str(self.path), read_consistency_interval=timedelta(0))
        except Exception as exc:
            raise StoreError(f"cannot open store at {self.path}: {exc}") from exc

    # -- tables -------------------------------------------------------------------------------------------------
    def table(self, name: str) -> Any:
        """The open LanceDB table, created on first use; checks the embedder identity of vector tables."""
        with self._lock:
            handle = self._tables.get(name)
            if handle is not None:
                return handle
            schema = self._schemas[name]
            try:
                handle = self._db.open_table(name)
            except Exception:  # noqa: BLE001 - LanceDB signals "no such table" with several exception types
                try:
                    handle = self._db.create_table(name, schema=schema, exist_ok=True)
                except Exception as exc:
                    raise StoreError(f"cannot open table {name!r} in {self.path}: {exc}") from exc
            self._check_schema(name, handle.schema, schema)
            self._tables[name] = handle
            return handle

    def _check_schema(self, name: str, found: pa.Schema, expected: pa.Schema) -> None:
        want = (expected.metadata or {}).get(IDENTITY_KEY)
        have = (found.metadata or {}).get(IDENTITY_KEY)
        if want is not None and have != want:
            raise StoreError(
                f"store {self.path} table {name!r} holds vectors from embedder "
                f"{(have or b'unknown').decode()!r}, but this connection uses {want.decode()!r}; "
                "open it with the same embedder or use another store directory"
            )
        if found.names != expected.names:
            raise StoreError(
                f"store {self.path} table {name!r} has columns {found.names}, expected {expected.names}; "
                "it was written by an incompatible version"
            )

    def version(self, name: str) -> int:
        """The table's latest version, asking LanceDB at most once per ``consistency_interval_s``.

        Asking costs ~0.15 ms and a routing call reads up to five tables, so an answer is reused briefly: writes made
        in this process (through any Store on the same directory) invalidate it at once, other processes' writes are
        seen within the interval.
        """
        key = (self._key, name)
        writes = _local_writes.get(key, 0)
        cached = self._versions.get(name)
        now = time.monotonic()
        if cached is not None and cached[2] == writes and now - cached[1] < self.consistency_interval_s:
            return cached[0]
        try:
            version = int(self.table(name).version)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot read version of {name!r}: {exc}") from exc
        self._versions[name] = (version, now, writes)
        return version

    def _wrote(self, name: str) -> None:
        """Tell every Store of this process on this directory that ``name`` changed."""
        with _local_lock:
            key = (self._key, name)
            _local_writes[key] = _local_writes.get(key, 0) + 1

    # -- reads --------------------------------------------------------------------------------------------------
    def read(self, name: str) -> pa.Table:
        """The whole table as Arrow, cached until its version changes."""
        return self.snapshot(name, "arrow", lambda table: table)

    def snapshot(self, name: str, kind: str, build: Callable[[pa.Table], T]) -> T:
        """``build(table)``, cached by (table, kind) and recomputed only when the table's version changes."""
        with self._lock:
            version = self.version(name)
            hit = self._cache.get((name, kind))
            if hit is not None and hit[0] == version:
                return hit[1]
            raw = self._cache.get((name, "arrow"))
            if raw is not None and raw[0] == version:
                arrow = raw[1]
            else:
                arrow = self._read_version(name, version)
                self._cache[(name, "arrow")] = (version, arrow)
            value = build(arrow)
            self._cache[(name, kind)] = (version, value)
            return value

    def _read_version(self, name: str, version: int) -> pa.Table:
        try:
            handle = self.table(name)
            arrow = handle.to_arrow()
        except Exception as exc:
            raise StoreError(f"cannot read {name!r}: {exc}") from exc
        return arrow.cast(self._schemas[name]) if arrow.schema != self._schemas[name] else arrow

    def count(self, name: str, where: str | None = None) -> int:
        try:
            return int(self.table(name).count_rows(where))
        except Exception as exc:
            raise StoreError(f"cannot count {name!r}: {exc}") from exc

    # -- writes -------------------------------------------------------------------------------------------------
    def upsert(self, name: str, rows: pa.Table, key: str = "name") -> None:
        """Insert new keys, replace existing ones; other rows are not touched."""
        if rows.num_rows == 0:
            return
        rows = rows.select(self._schemas[name].names).cast(self._schemas[name])
        try:
            (
                self.table(name)
                .merge_insert(key)
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(rows)
            )
        except Exception as exc:
            raise StoreError(f"cannot write {rows.num_rows} row(s) to {name!r}: {exc}") from exc
        finally:
            self._wrote(name)

    def append(self, name: str, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        rows = rows.select(self._schemas[name].names).cast(self._schemas[name])
        try:
            self.table(name).add(rows)
        except Exception as exc:
            raise StoreError(f"cannot append {rows.num_rows} row(s) to {name!r}: {exc}") from exc
        finally:
            self._wrote(name)

    def delete_keys(self, name: str, column: str, values: Iterable[str]) -> None:
        """Delete rows whose ``column`` is one of ``values`` (quoted as data)."""
        values = list(values)
        if not values:
            return
        try:
            self.table(name).delete(in_filter(column, values))
        except Exception as exc:
            raise StoreError(f"cannot delete from {name!r}: {exc}") from exc
        finally:
            self._wrote(name)

    def delete_all(self, name: str) -> None:
        try:
            self.table(name).delete("true")
        except Exception as exc:
            raise StoreError(f"cannot clear {name!r}: {exc}") from exc
        finally:
            self._wrote(name)

    # -- models -------------------------------------------------------------------------------------------------
    def save_model(self, row: Mapping[str, Any]) -> int:
        """Append one ``models`` row as the next version of its name (1 for a new name); returns that version.

        row : name, kind, weights (bytes), labels (list of str), metrics (JSON text); version and created_at are
        set here. Versions are assigned under this Store's lock; two processes saving one name at the same moment
        may pick the same version (the newer created_at then wins as "newest").
        """
        with self._lock:
            models = self.read("models")
            same = models.filter(pc.equal(models["name"], pa.scalar(row["name"], pa.string())))
            version = 1 + int(pc.max(same["version"]).as_py() or 0) if same.num_rows else 1
            table = pa.table({
                "name": [row["name"]],
                "version": pa.array([version], pa.int64()),
                "kind": [row["kind"]],
                "weights": pa.array([row["weights"]], pa.large_binary()),
                "labels": pa.array([list(row["labels"])], pa.list_(pa.string())),
                "metrics": [row.get("metrics")],
                "created_at": pa.array([datetime.now(timezone.utc)], _TIMESTAMP),
            })
            self.append("models", table)
        return version
