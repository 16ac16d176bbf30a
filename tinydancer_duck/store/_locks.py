"""Write locks across threads and processes: an exclusive ``flock`` on a file per table under ``<store>/.locks``.

Every commit to a table holds its lock (so the files new in the table's folder are that commit's own, see
:mod:`tinydancer_duck.store._integrity`), and so does every read-modify-write (agent stats, model versions,
removals), so two processes never both compute from the same old row. Local file systems only; on a platform
without ``fcntl`` only the threads of one process are serialized.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# (store directory, lock name) -> [thread lock, open lock file or None, depth]: one flock per process and name, so
# two Stores of one process on one directory share it instead of deadlocking on each other.
_file_locks: dict[tuple[str, str], list[Any]] = {}
_registry_lock = threading.Lock()


def write_locked(*tables: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate a service method (its object has ``.store``) to run inside ``self.store.locked(*tables)``."""
    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def locked_method(self: Any, *args: Any, **kwargs: Any) -> T:
            with self.store.locked(*tables):
                return method(self, *args, **kwargs)
        return locked_method
    return decorate


def lock_file(path: Path) -> Any:
    """Open ``path`` and take an exclusive flock on it (released when the file is closed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+b")  # noqa: SIM115 - closed by the caller when the lock is released
    try:
        import fcntl
    except ImportError:  # not POSIX: threads are still serialized by the caller's RLock
        return handle
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    return handle


@contextlib.contextmanager
def held(root: Path, key: str, name: str) -> Iterator[None]:
    """Hold lock ``name`` of the store at ``root`` (``key``: its resolved path): re-entrant within a thread,
    exclusive across threads and processes."""
    with _registry_lock:
        entry = _file_locks.setdefault((key, name), [threading.RLock(), None, 0])
    with entry[0]:
        if entry[2] == 0:
            entry[1] = lock_file(root / ".locks" / f"{name}.lock")
        entry[2] += 1
        try:
            yield
        finally:
            entry[2] -= 1
            if entry[2] == 0 and entry[1] is not None:
                entry[1].close()  # closing the file releases the flock
                entry[1] = None
