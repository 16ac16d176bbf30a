"""The LanceDB store: the only module that talks to LanceDB.

The tables and their schemas are defined once in :mod:`tinydancer_duck.store._schemas` (DESIGN §4). The embedding
dimension and the identity of the embedder that made the vectors are part of the vector tables' schemas, so a store
refuses vectors from another embedder instead of silently mixing spaces.

Readers get Arrow tables (and numpy snapshots built from them) cached by table version: a read costs one version
check unless another connection or process wrote since. Values from users reach LanceDB filters only through
:func:`sql_literal`, which quotes them as data.

Reliability (README "Reliability"): every commit goes through :func:`_retry` (conflicts retried with backoff and
jitter, on top of LanceDB's own retries); a write computed from a read runs inside :meth:`Store.locked`, a per-table
lock across threads and processes whose reads skip the 50 ms version cache; a process killed mid-write leaves the
previous version readable (LanceDB commits by writing one manifest); after every :data:`COMPACT_CHECK_EVERY` writes
a table is checked and compacted past :data:`COMPACT_FRAGMENTS` small fragments (or every
:data:`CLEANUP_EVERY_CHECKS`-th check), keeping versions younger than :data:`CLEANUP_OLDER_THAN` for readers still
on them; :meth:`Store.compact` does the same on demand.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from tinydancer_duck.errors import InvalidArgument, StoreError

from ._cache import SnapshotCache
from ._inspect import table_info
from ._location import store_location
from ._locks import lock_file, write_locked  # noqa: F401 - write_locked is re-exported for the services

T = TypeVar("T")

from ._schemas import (
    BUDGETS_SCHEMA,
    IDENTITY_KEY,
    MODELS_SCHEMA,
    TABLES,
    USAGE_SCHEMA,
    agents_schema,
    route_examples_schema,
    routes_schema,
)

#: Seconds a table version read from LanceDB is trusted before asking again (see Store.version).
CONSISTENCY_INTERVAL_S = 0.05
_local_writes: dict[tuple[str, str], int] = {}  # (store directory, table) -> writes made by this process
_local_lock = threading.Lock()

#: Commit attempts for one write before giving up, and the first backoff (doubled each retry, with jitter).
WRITE_ATTEMPTS = 8
WRITE_BACKOFF_S = 0.02
#: A process checks a table's fragments after this many of its own writes to it ...
COMPACT_CHECK_EVERY = 32
#: ... and compacts it when it has at least this many small fragments.
COMPACT_FRAGMENTS = 64
#: Every this many checks a table is compacted anyway, which also removes its old versions (a table rewritten by
#: upserts keeps one fragment but gains a version per write).
CLEANUP_EVERY_CHECKS = 8
#: Versions younger than this survive cleanup: readers pinned to them keep working.
CLEANUP_OLDER_THAN = timedelta(minutes=2)
#: Commit conflicts this process retried (LanceDB retries appends and merge_inserts internally first).
conflicts_retried = 0
_RETRYABLE = ("conflict", "retryable", "too many concurrent", "temporarily unavailable")
# (store directory, table) -> [thread lock, open lock file or None, depth]: one flock per process and table, so two
# Stores of one process on one directory share it instead of deadlocking on each other.
_file_locks: dict[tuple[str, str], list[Any]] = {}


def _retryable(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(word in text for word in _RETRYABLE)


def _retry(what: str, write: Callable[[], T]) -> T:
    """Run one LanceDB write; retry commit conflicts with exponential backoff; other failures become StoreError."""
    for attempt in range(WRITE_ATTEMPTS):
        try:
            return write()
        except Exception as exc:
            if attempt + 1 < WRITE_ATTEMPTS and _retryable(exc):
                global conflicts_retried
                conflicts_retried += 1
                time.sleep(WRITE_BACKOFF_S * 2**attempt * (0.5 + random.random()))
                continue
            raise StoreError(f"{what}: {exc}") from exc
    raise AssertionError("unreachable")


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
                 consistency_interval_s: float = CONSISTENCY_INTERVAL_S,
                 storage_options: dict[str, str] | None = None) -> None:
        # an object-store URI stays a string (README "Beyond one machine": what is safe there without file locks)
        self.path, self.remote = store_location(path, default_store_path())
        self._key = str(self.path) if self.remote else str(self.path.resolve())
        self.storage_options = dict(storage_options or {})
        self.identity = embedder_identity
        self.dim = dim
        self._schemas = {
            "agents": agents_schema(dim, embedder_identity),
            "routes": routes_schema(dim, embedder_identity),
            "models": MODELS_SCHEMA,
            "usage": USAGE_SCHEMA,
            "budgets": BUDGETS_SCHEMA,
            "route_examples": route_examples_schema(dim, embedder_identity),
        }
        self._lock = threading.RLock()
        self.consistency_interval_s = consistency_interval_s
        self._versions: dict[str, tuple[int, float, int]] = {}
        self._tables: dict[str, Any] = {}
        self._snapshots = SnapshotCache(self._read_version)
        self._fresh = 0  # > 0 inside locked(): reads ask LanceDB for the latest version every time
        self._writes_since_check: dict[str, int] = {}
        self._checks: dict[str, int] = {}
        try:
            if not self.remote:
                self.path.mkdir(parents=True, exist_ok=True)
            # interval 0: every read checks the latest version, so other connections' writes are seen at once.
            import lancedb  # ~2 s to import: only when a store is opened

            self._db = lancedb.connect(str(self.path), read_consistency_interval=timedelta(0),
                                       storage_options=self.storage_options or None)
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
            self._check_schema(name, self._migrated(name, handle, schema), schema)
            self._tables[name] = handle
            return handle

    def _migrated(self, name: str, handle: Any, expected: pa.Schema) -> pa.Schema:
        """The table's schema after adding the nullable columns a newer version appended to it (all NULL in the
        rows already stored), so a store written by an older version keeps working."""
        found = handle.schema
        missing = expected.names[len(found.names):]
        if not missing or found.names != expected.names[:len(found.names)] \
                or not all(expected.field(field).nullable for field in missing):
            return found
        try:
            _retry(f"cannot add columns {missing} to {name!r}",
                   lambda: handle.add_columns(pa.schema([expected.field(field) for field in missing])))
        finally:
            self._wrote(name)
        return handle.schema

    def _check_schema(self, name: str, found: pa.Schema, expected: pa.Schema) -> None:
        want = (expected.metadata or {}).get(IDENTITY_KEY)
        have = (found.metadata or {}).get(IDENTITY_KEY)
        if want is not None and have != want:
            raise StoreError(
                f"store {self.path} table {name!r} holds vectors from embedder "
                f"{(have or b'unknown').decode()!r}, but this connection uses {want.decode()!r}; "
                f"open it with the same embedder, or move it to this one with `tinydancer reembed --store {self.path}`"
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
        if (cached is not None and cached[2] == writes and now - cached[1] < self.consistency_interval_s
                and not self._fresh):
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

    @contextlib.contextmanager
    def locked(self, *names: str) -> Iterator[None]:
        """Hold the write lock of tables ``names`` (in this order) across threads and processes.

        Use it around a read-modify-write: reads inside see the latest version (no 50 ms cache), and no other
        writer that also locks can interleave. Re-entrant. Plain appends and upserts do not need it.
        """
        with contextlib.ExitStack() as stack:
            for name in names:
                stack.enter_context(self._file_lock(name))
            self._fresh += 1
            try:
                yield
            finally:
                self._fresh -= 1

    @contextlib.contextmanager
    def _file_lock(self, name: str) -> Iterator[None]:
        with _local_lock:
            entry = _file_locks.setdefault((self._key, name), [threading.RLock(), None, 0])
        with entry[0]:
            if entry[2] == 0 and not self.remote:  # object storage has no file locks: threads only
                entry[1] = lock_file(self.path / ".locks" / f"{name}.lock")
            entry[2] += 1
            try:
                yield
            finally:
                entry[2] -= 1
                if entry[2] == 0 and entry[1] is not None:
                    entry[1].close()  # closing the file releases the flock
                    entry[1] = None

    # -- reads --------------------------------------------------------------------------------------------------
    def read(self, name: str) -> pa.Table:
        """The whole table as Arrow, cached until its version changes."""
        with self._lock:
            return self._snapshots.table(name, self.version(name))

    def snapshot(self, name: str, kind: str, build: Callable[[pa.Table], T],
                 extend: Callable[[T, pa.Table], T] | None = None) -> T:
        """``build(table)``, cached by (table, kind) and recomputed only when the table's version changes.

        extend : ``extend(cached, rows)`` gives the value after ``rows`` were appended; used instead of a full read
            when this Store's own appends are the only changes since the cached version (:mod:`.appends`).
        """
        with self._lock:
            return self._snapshots.value(name, self.version(name), kind, build, extend)

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
        table = self.table(name)
        try:
            _retry(f"cannot write {rows.num_rows} row(s) to {name!r}",
                   lambda: table.merge_insert(key).when_matched_update_all().when_not_matched_insert_all()
                   .execute(rows))
        finally:
            self._wrote(name)
        self._maybe_compact(name)

    def append(self, name: str, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        rows = rows.select(self._schemas[name].names).cast(self._schemas[name])
        table = self.table(name)
        try:
            added = _retry(f"cannot append {rows.num_rows} row(s) to {name!r}", lambda: table.add(rows))
            version = getattr(added, "version", None)  # the version this append made (lancedb >= 0.22)
            if version is not None:
                with self._lock:
                    self._snapshots.appended(name, int(version), rows)
        finally:
            self._wrote(name)
        self._maybe_compact(name)

    def delete_keys(self, name: str, column: str, values: Iterable[str]) -> None:
        """Delete rows whose ``column`` is one of ``values`` (quoted as data)."""
        values = list(values)
        if not values:
            return
        where = in_filter(column, values)
        table = self.table(name)
        try:
            _retry(f"cannot delete from {name!r}", lambda: table.delete(where))
        finally:
            self._wrote(name)
        self._maybe_compact(name)

    def delete_all(self, name: str) -> None:
        table = self.table(name)
        try:
            _retry(f"cannot clear {name!r}", lambda: table.delete("true"))
        finally:
            self._wrote(name)
        self._maybe_compact(name)

    # -- maintenance --------------------------------------------------------------------------------------------
    def _maybe_compact(self, name: str) -> None:
        """After every COMPACT_CHECK_EVERY writes of this process to ``name``: compact if fragments piled up."""
        done = self._writes_since_check.get(name, 0) + 1
        self._writes_since_check[name] = done
        if done < COMPACT_CHECK_EVERY:
            return
        self._writes_since_check[name] = 0
        checks = self._checks[name] = self._checks.get(name, 0) + 1
        try:
            small = int(self.table(name).stats()["fragment_stats"]["num_small_fragments"])
            if small >= COMPACT_FRAGMENTS or checks % CLEANUP_EVERY_CHECKS == 0:
                self.compact(name)
        except StoreError:
            pass  # maintenance only: the write itself succeeded; the next check tries again

    def compact(self, name: str | None = None, *,
                cleanup_older_than: timedelta = CLEANUP_OLDER_THAN) -> dict[str, dict[str, int]]:
        """Merge small fragments of one table (or all) and remove versions older than ``cleanup_older_than``.

        Readers keep working: compaction commits a new version and older ones stay until they are older than the
        margin. Returns per table its fragments and versions before and after.
        """
        if not isinstance(cleanup_older_than, timedelta) or cleanup_older_than < timedelta(0):
            raise InvalidArgument("cleanup_older_than", cleanup_older_than, "must be a timedelta >= 0")
        if name is not None and name not in TABLES:
            raise InvalidArgument("table", name, f"must be one of {', '.join(TABLES)}")
        report = {}
        for table_name in (name,) if name is not None else TABLES:
            before = self.info(table_name)
            table = self.table(table_name)
            try:
                _retry(f"cannot compact {table_name!r}",
                       lambda table=table: table.optimize(cleanup_older_than=cleanup_older_than))
            finally:
                self._wrote(table_name)
            after = self.info(table_name)
            report[table_name] = {"fragments_before": before["fragments"], "fragments_after": after["fragments"],
                                  "versions_before": before["versions"], "versions_after": after["versions"]}
        return report

    def info(self, name: str) -> dict[str, int]:
        """rows, fragments, small_fragments, version and versions (kept on disk) of one table."""
        try:
            return table_info(self.table(name))
        except Exception as exc:
            raise StoreError(f"cannot inspect {name!r}: {exc}") from exc
