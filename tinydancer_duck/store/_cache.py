"""Table snapshots cached by version, and extended by the store's own recent appends instead of read again.

A snapshot cached at version v is still exact at version v' when every version in (v, v'] is an append this Store
made: the table is then the old rows followed by those appended, in order. Anything else in between (another
process's write, an upsert, a delete, a compaction) breaks the chain and the snapshot is rebuilt from a full read.
This is what keeps routing fast in a live loop that records usage after every request: without it, each record
made the next route re-read the whole usage table (0.4 s at 1M rows).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import pyarrow as pa

T = TypeVar("T")

#: Bytes of appended rows kept per table (a usage row is ~100 bytes; a models row holds a model's weights); older
#: appends are forgotten, and a snapshot older than them is rebuilt from a full read.
MAX_BYTES = 32 * 1024 * 1024
#: A cached table extended by appends is made contiguous again past this many chunks (each append adds one).
MAX_CHUNKS = 64


class AppendLog:
    """The last appends to one table: (version the append made, its rows), at most ``max_bytes`` of rows."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: deque[tuple[int, pa.Table]] = deque()
        self._bytes = 0

    def record(self, version: int, rows: pa.Table) -> None:
        self._entries.append((version, rows))
        self._bytes += rows.nbytes
        while self._bytes > self.max_bytes:
            _, dropped = self._entries.popleft()
            self._bytes -= dropped.nbytes

    def rows_between(self, since: int, until: int) -> pa.Table | None:
        """The rows appended by the versions since (exclusive) to until (inclusive), when those appends made every
        version in between; None when any version in between was not one of them (or was forgotten)."""
        if until <= since:
            return None
        appended = [(version, rows) for version, rows in self._entries if since < version <= until]
        if [version for version, _ in appended] != list(range(since + 1, until + 1)):
            return None
        return pa.concat_tables([rows for _, rows in appended])


class SnapshotCache:
    """Whole tables and values built from them, cached per table version (the Store calls it under its lock).

    read : ``read(name, version)`` reads the whole table from storage.
    """

    def __init__(self, read: Callable[[str, int], pa.Table]) -> None:
        self._read = read
        self._tables: dict[str, tuple[int, pa.Table]] = {}
        self._values: dict[tuple[str, str], tuple[int, Any]] = {}
        self._appends: dict[str, AppendLog] = {}

    def clear(self) -> None:
        """Forget every cached table and value: the next request of each reads from storage (benchmarks use it)."""
        self._tables.clear()
        self._values.clear()

    def appended(self, name: str, version: int, rows: pa.Table) -> None:
        """This store's append of ``rows`` to ``name`` made ``version``."""
        self._appends.setdefault(name, AppendLog()).record(version, rows)

    def value(self, name: str, version: int, kind: str, build: Callable[[pa.Table], T],
              extend: Callable[[T, pa.Table], T] | None = None) -> T:
        """``build(table)`` at ``version``, cached by (name, kind); ``extend(cached, rows)`` instead of a build
        when own appends are the only changes since the cached version."""
        hit = self._values.get((name, kind))
        if hit is not None and hit[0] == version:
            return hit[1]
        appended = self._rows_between(name, hit[0], version) if hit is not None and extend is not None else None
        value = extend(hit[1], appended) if appended is not None else build(self.table(name, version))
        self._values[(name, kind)] = (version, value)
        return value

    def table(self, name: str, version: int) -> pa.Table:
        """The whole table at ``version``: the cached read, extended by own appends, or a new read."""
        hit = self._tables.get(name)
        if hit is not None and hit[0] == version:
            return hit[1]
        appended = self._rows_between(name, hit[0], version) if hit is not None else None
        if appended is not None:
            table = pa.concat_tables([hit[1], appended])
            table = table.combine_chunks() if table[table.column_names[0]].num_chunks > MAX_CHUNKS else table
        else:
            table = self._read(name, version)
        self._tables[name] = (version, table)
        return table

    def _rows_between(self, name: str, since: int, until: int) -> pa.Table | None:
        log = self._appends.get(name)
        return log.rows_between(since, until) if log is not None else None
