"""The LanceDB store: the only module that talks to LanceDB.

The tables and their schemas are defined once in :mod:`tinydancer_duck.store._schemas` (DESIGN §4). The embedding
dimension and the identity of the embedder that made the vectors are part of the vector tables' schemas, so a store
refuses vectors from another embedder instead of silently mixing spaces.

Readers get Arrow tables (and numpy snapshots built from them) cached by table version: a read costs one version
check unless another connection or process wrote since. Values from users reach LanceDB filters only through
:func:`._literal.sql_literal`, which quotes them as data.

Reliability (README "Reliability"): every commit holds the table's write lock and goes through :func:`_retry`
(conflicts retried with backoff and jitter, on top of LanceDB's own retries); the files it adds are checksummed and
the table's highest version noted (:mod:`._integrity`), so a read refuses a truncated or bit-flipped file or a lost
manifest, and a table folder that exists but cannot be opened is an error, never replaced by a new empty table. A
write computed from a read runs inside :meth:`Store.locked`, whose reads skip the 50 ms version cache. A process
killed mid-write leaves the previous version readable (LanceDB commits by writing one manifest). Compaction is
decided by the table itself: the writer whose commit makes a version divisible by :data:`COMPACT_CHECK_EVERY` reads
the table's fragment statistics and compacts past :data:`COMPACT_FRAGMENTS` small fragments (or on every
:data:`CLEANUP_EVERY_CHECKS`-th check), keeping versions younger than :data:`CLEANUP_OLDER_THAN` for readers still on
them, so short-lived processes that each write once are compacted as well as one long-lived writer.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from tinydancer_duck.errors import InvalidArgument, StoreError

from . import _journal as journal
from ._cache import SnapshotCache
from ._inspect import table_info
from ._integrity import Integrity, Unchecked
from ._journal import JOURNAL_LOCK
from ._ledger import Ledger
from ._literal import in_filter
from ._location import default_store_path, side_folder, store_location
from ._locks import LOCK_TIMEOUT_S, LockTimeout, held, write_locked  # noqa: F401 - write_locked is re-exported
from ._names import known_table
from ._open import migrated, open_table
from ._retry import foreign_failure, translated
from ._retry import retry as _retry
from ._schemas import (
    BUDGETS_SCHEMA,
    MODELS_SCHEMA,
    TABLES,
    USAGE_SCHEMA,
    agents_schema,
    check_schema,
    route_examples_schema,
    routes_schema,
)
from ._stamps import Seen, manifest_stamp, settled

T = TypeVar("T")

#: Seconds a table version read from LanceDB is trusted before asking again (see Store.version).
CONSISTENCY_INTERVAL_S = 0.05
_local_writes: dict[tuple[str, str], int] = {}  # (store directory, table) -> writes made by this process
_local_lock = threading.Lock()

#: The writer whose commit makes a version divisible by this reads the table's fragment statistics ...
COMPACT_CHECK_EVERY = 8
#: ... and compacts it when it has at least this many small fragments. A cold read costs ~0.2 ms per fragment
#: (lancedb 0.40, this machine), so a table stays within ~5 ms of its compacted read time.
COMPACT_FRAGMENTS = 16
#: Every this many checks a table is compacted anyway, which also removes its old versions (a table rewritten by
#: upserts keeps one fragment but gains a version per write).
CLEANUP_EVERY_CHECKS = 8
#: Versions younger than this survive cleanup: readers pinned to them keep working.
CLEANUP_OLDER_THAN = timedelta(minutes=2)


class Store:
    """A LanceDB directory holding the tables, for one embedder identity and dimension.

    Thread-safe for the engine's use: DuckDB may call UDFs from several threads (one at a time under the GIL, but
    interleaved), so table handles and caches are guarded by a lock.
    """

    def __init__(self, path: str | Path | None, *, embedder_identity: str, dim: int,
                 consistency_interval_s: float = CONSISTENCY_INTERVAL_S,
                 storage_options: dict[str, str] | None = None, lock_timeout_s: float = LOCK_TIMEOUT_S) -> None:
        # an object-store URI stays a string (README "Beyond one machine": what is safe there without file locks)
        self.path, self.remote = store_location(path, default_store_path())
        try:
            self._key = str(self.path) if self.remote else str(self.path.resolve())
        except OSError as exc:  # e.g. /proc/1/root: a folder this user may not resolve
            raise StoreError(f"cannot open store at {self.path}: {exc.strerror or exc}") from None
        self.lock_timeout_s = float(lock_timeout_s)
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
        self._versions: dict[str, Seen] = {}
        self._tables: dict[str, Any] = {}
        self._snapshots = SnapshotCache(self._read_version)
        # the side files (locks, checksums, budget ledger, journal) need a local folder: a remote store's are kept
        # on this machine and hold across its processes only (README "Beyond one machine")
        self.side = side_folder(self.path, self.remote)
        self.integrity = Unchecked(self.side) if self.remote else Integrity(self.path)
        self.ledger = Ledger(self.side)
        self._recovering = False
        #: What the last recovery could not finish (intents quarantined or left pending), one sentence each.
        self.recovery_notes: list[str] = []
        try:
            self.side.mkdir(parents=True, exist_ok=True)
            # interval 0: every read checks the latest version, so other connections' writes are seen at once.
            import lancedb  # ~2 s to import: only when a store is opened

            self._db = lancedb.connect(str(self.path), read_consistency_interval=timedelta(0),
                                       storage_options=self.storage_options or None)
        except OSError as exc:
            raise StoreError(f"cannot open store at {self.path}: {exc.strerror or exc}") from None
        except Exception as exc:
            raise StoreError(f"cannot open store at {self.path}: {exc}") from exc

    # -- tables -------------------------------------------------------------------------------------------------
    def table(self, name: str) -> Any:
        """The open LanceDB table, created on first use; checks the embedder identity of vector tables and that no
        committed version was lost."""
        with self._lock:
            handle = self._tables.get(name)
            if handle is not None:
                return handle
            handle = open_table(self, known_table(name))
            check_schema(self.path, name, migrated(self, name, handle, self._schemas[name]), self._schemas[name])
            self.integrity.check_version(name, lambda: int(handle.version))
            self._tables[name] = handle
            return handle

    def schema(self, name: str) -> pa.Schema:
        """The schema this version writes ``name`` with."""
        return self._schemas[known_table(name)]

    def held(self, name: str, *, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
        """Lock ``name`` of this store (:func:`._locks.held`), waiting at most the store's lock timeout."""
        return held(self.side, self._key, name, timeout=self.lock_timeout_s if timeout is None else timeout)

    def version(self, name: str) -> int:
        """The table's latest version, asking LanceDB at most once per ``consistency_interval_s``, and after that
        only when the table's manifests changed (:mod:`._stamps`: a stat of a local store's folder).

        Asking costs ~0.45 ms and a routing call reads up to six tables: writes made in this process (through any
        Store on the same directory) invalidate an answer at once, other processes' writes are seen within the
        interval. A version lower than one seen before means a lost manifest: StoreError.
        """
        key = (self._key, name)
        writes = _local_writes.get(key, 0)
        cached = self._versions.get(name)
        now = time.monotonic()
        if cached is not None and cached.writes == writes and now - cached.at < self.consistency_interval_s:
            return cached.version
        stamp = None if self.remote else manifest_stamp(self.path, name)
        if cached is not None and cached.still(writes, stamp):
            self._versions[name] = replace(cached, at=now)
            return cached.version
        read_at = time.time_ns()
        with translated(f"cannot read version of {name!r}"):
            version = int(self.table(name).version)
        if cached is not None and version < cached.version:
            self.integrity.check_version(name, lambda: version)
            raise StoreError(f"table {name!r} in {self.path} went back from version {cached.version} to "
                             f"{version}: a manifest was lost; run `tinydancer doctor --store {self.path}`")
        self._versions[name] = Seen(version, now, writes, stamp, settled(stamp, read_at))
        return version

    def _wrote(self, name: str) -> None:
        """Tell every Store of this process on this directory that ``name`` changed."""
        with _local_lock:
            key = (self._key, name)
            _local_writes[key] = _local_writes.get(key, 0) + 1

    @contextlib.contextmanager
    def locked(self, *names: str) -> Iterator[None]:
        """Hold the write lock of tables ``names`` (in this order) across threads and processes.

        Use it around a read-modify-write: no other writer can interleave (every commit holds its table's lock),
        and reads inside see every write made before the lock was taken (each table's version is asked afresh once;
        after that, only this process can change the locked tables, and its own writes refresh the version).
        Re-entrant.
        """
        with contextlib.ExitStack() as stack:
            for name in names:
                stack.enter_context(self.held(name))
            self._versions.clear()
            if JOURNAL_LOCK in names and not self._recovering and journal.pending(self.side):
                self.recover()
            yield

    def transact(self, steps: list[journal.Step]) -> list[int]:
        """Commit ``steps`` (on several tables) all-or-nothing (:mod:`._journal`); returns each step's version."""
        with self.locked(JOURNAL_LOCK):
            return journal.run(self, steps)

    def pending(self) -> list[str]:
        """Writes that killed processes left half done (finished by :meth:`recover`), one line each."""
        return journal.describe(self.side)

    def recover(self, *, wait: bool = True) -> int:
        """Finish the writes that killed processes left half done (:mod:`._journal`); how many there were. Never
        raises for an intent: one that cannot be finished is quarantined or left pending, and said so in
        :attr:`recovery_notes`. ``wait=False`` (opening an Engine): do nothing when another writer holds the
        journal lock (it finishes what it started; the next writer finishes what a killed one left)."""
        if not journal.pending(self.side):
            return 0
        try:
            with self.held(JOURNAL_LOCK, timeout=None if wait else 0):
                self._recovering = True
                try:
                    done, self.recovery_notes = journal.recover(self)
                    return done
                finally:
                    self._recovering = False
        except LockTimeout:
            if wait:
                raise
            return 0

    # -- reads --------------------------------------------------------------------------------------------------
    def read(self, name: str) -> pa.Table:
        """The whole table as Arrow, cached until its version changes."""
        with self._lock:
            return self._snapshots.table(name, self.version(name))

    def snapshot(self, name: str, kind: str, build: Callable[[pa.Table], T],
                 extend: Callable[[T, pa.Table], T] | None = None) -> T:
        """``build(table)``, cached by (table, kind) and recomputed only when the table's version changes.

        extend : ``extend(cached, rows)`` gives the value after ``rows`` were appended; used instead of a full read
            when this Store's own appends are the only changes since the cached version (:mod:`._cache`).
        """
        with self._lock:
            return self._snapshots.value(name, self.version(name), kind, build, extend)

    def _read_version(self, name: str, version: int) -> pa.Table:
        """A full read, after checking the table's files against their checksums and its version against the
        highest committed (StoreError naming what is damaged)."""
        handle = self.table(name)
        if version < (self.integrity.high_water(name) or 0):  # stale, or a lost manifest: ask for the latest
            self.integrity.check_version(name, lambda: int(handle.version))
        self.integrity.verify(name, int(handle.version))
        with translated(f"cannot read {name!r} in {self.path}", f"; run `tinydancer doctor --store {self.path}`"):
            arrow = handle.to_arrow()
        return arrow.cast(self._schemas[name]) if arrow.schema != self._schemas[name] else arrow

    def latest_version(self, name: str) -> int:
        """The table's version asked afresh (no interval): what recovery decides by."""
        self._versions.pop(name, None)
        return self.version(name)

    def read_at(self, name: str, version: int) -> pa.Table | None:
        """The table as it was at ``version``; None when that version is no longer kept or does not read."""
        try:
            handle = self._db.open_table(known_table(name))
            handle.checkout(int(version))
            return handle.to_arrow()
        except BaseException as exc:
            if not foreign_failure(exc):
                raise
            return None

    def count(self, name: str, where: str | None = None) -> int:
        with translated(f"cannot count {name!r}"):
            return int(self.table(name).count_rows(where))

    # -- writes -------------------------------------------------------------------------------------------------
    def upsert(self, name: str, rows: pa.Table, key: str | list[str] = "name") -> int:
        """Insert new keys, replace existing ones; other rows are not touched. Returns the version written."""
        if rows.num_rows == 0:
            return self.version(name)
        rows = rows.select(self._schemas[name].names).cast(self._schemas[name])
        return self._commit(name, f"cannot write {rows.num_rows} row(s) to {name!r}",
                            lambda table: table.merge_insert(key).when_matched_update_all()
                            .when_not_matched_insert_all().execute(rows))

    def append(self, name: str, rows: pa.Table | pa.RecordBatchReader) -> int:
        """Append rows (a table, or a reader of batches: streamed into one commit); returns the version written."""
        streamed = isinstance(rows, pa.RecordBatchReader)
        if not streamed:
            if rows.num_rows == 0:
                return self.version(name)
            rows = rows.select(self._schemas[name].names).cast(self._schemas[name])
        version = self._commit(name, f"cannot append to {name!r}", lambda table: table.add(rows))
        if not streamed:
            with self._lock:
                self._snapshots.appended(name, version, rows)
        return version

    def delete_keys(self, name: str, column: str, values: Iterable[str]) -> int | None:
        """Delete rows whose ``column`` is one of ``values`` (quoted as data); the version written."""
        values = list(values)
        if not values:
            return None
        where = in_filter(column, values)
        return self._commit(name, f"cannot delete from {name!r}", lambda table: table.delete(where))

    def delete_all(self, name: str) -> int:
        return self._commit(name, f"cannot clear {name!r}", lambda table: table.delete("true"))

    def _commit(self, name: str, what: str, write: Callable[[Any], Any], *, maintain: bool = True) -> int:
        """One commit to ``name`` under its write lock: retried on conflicts, its new files checksummed, the
        version it made returned; then maybe a compaction (see the module docstring)."""
        table = self.table(name)
        with self.held(name):
            try:
                result = _retry(what, lambda: write(table))
            finally:
                self._wrote(name)
            version = getattr(result, "version", None)
            version = int(version) if version is not None else int(table.version)
            self.integrity.record(name, version)
        if maintain:
            self._maybe_compact(name, version)
        return version

    # -- maintenance --------------------------------------------------------------------------------------------
    def _maybe_compact(self, name: str, version: int) -> None:
        """When ``version`` is a multiple of COMPACT_CHECK_EVERY: compact if the table's small fragments piled up
        (whoever wrote them: the count is read from the table, not from this process's writes)."""
        if version % COMPACT_CHECK_EVERY:
            return
        try:
            small = int(self.table(name).stats()["fragment_stats"]["num_small_fragments"])
            if small >= COMPACT_FRAGMENTS or (version // COMPACT_CHECK_EVERY) % CLEANUP_EVERY_CHECKS == 0:
                self._compact(name, CLEANUP_OLDER_THAN)
        except (StoreError, KeyError, TypeError):
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
            with self.held(table_name):
                before = self.info(table_name)
                self._compact(table_name, cleanup_older_than)
                after = self.info(table_name)
            report[table_name] = {"fragments_before": before["fragments"], "fragments_after": after["fragments"],
                                  "versions_before": before["versions"], "versions_after": after["versions"]}
        return report

    def _compact(self, name: str, cleanup_older_than: timedelta) -> None:
        with self.held(name):
            self._commit(name, f"cannot compact {name!r}",
                         lambda table: table.optimize(cleanup_older_than=cleanup_older_than), maintain=False)
            self.integrity.forget_missing(name)

    def info(self, name: str) -> dict[str, int]:
        """rows, fragments, small_fragments, version and versions (kept on disk) of one table."""
        with translated(f"cannot inspect {name!r}"):
            return table_info(self.table(name))
