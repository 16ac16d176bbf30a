"""Write locks across threads and processes: an exclusive ``flock`` on a file per table under ``<store>/.locks``.

Every commit to a table holds its lock (so the files new in the table's folder are that commit's own, see
:mod:`tinydancer_duck.store._integrity`), and so does every read-modify-write (agent stats, model versions,
removals), so two processes never both compute from the same old row. Local file systems only; on a platform
without ``fcntl`` only the threads of one process are serialized.

A holder writes its process id into the lock file, and a wait is bounded (:data:`LOCK_TIMEOUT_S`, the
``lock_timeout_s`` setting): a holder that was paused (SIGSTOP) or hangs makes a writer fail with a StoreError
naming the lock, the holder's pid and its state, instead of waiting forever. Lock names are checked
(:func:`tinydancer_duck.store._names.safe_name`) before they become file names.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tinydancer_duck.errors import StoreError

from ._names import safe_name

T = TypeVar("T")

#: Seconds a writer waits for a lock before failing with the holder's pid (Settings.lock_timeout_s).
LOCK_TIMEOUT_S = 120.0
#: The longest pause between two attempts to take a held lock.
_POLL_MAX_S = 0.01

# (store directory, lock name) -> [thread lock, open lock file or None, depth]: one flock per process and name, so
# two Stores of one process on one directory share it instead of deadlocking on each other.
_file_locks: dict[tuple[str, str], list[Any]] = {}
_registry_lock = threading.Lock()


class LockTimeout(StoreError):
    """A lock stayed held by another process (or thread) for longer than the wait allowed."""


def write_locked(*tables: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate a service method (its object has ``.store``) to run inside ``self.store.locked(*tables)``."""
    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def locked_method(self: Any, *args: Any, **kwargs: Any) -> T:
            with self.store.locked(*tables):
                return method(self, *args, **kwargs)
        return locked_method
    return decorate


def lock_file(path: Path, timeout: float = LOCK_TIMEOUT_S) -> Any:
    """Open ``path``, take an exclusive flock on it (released when the file is closed) and write this process's
    id into it; LockTimeout after ``timeout`` seconds (0: one attempt)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+b")  # noqa: SIM115 - closed by the caller when the lock is released
    try:
        import fcntl
    except ImportError:  # not POSIX: threads are still serialized by the caller's RLock
        return handle
    deadline, pause = time.monotonic() + timeout, 0.0005
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                raise LockTimeout(f"lock {path.stem!r} of the store at {path.parent.parent} is held by "
                                  f"{holder(path)}; waited {timeout:g} s (the lock_timeout_s setting). Resume or "
                                  "end that process; a lock is released when its holder exits") from None
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX_S)
    os.ftruncate(handle.fileno(), 0)
    os.write(handle.fileno(), f"{os.getpid()}\n".encode())
    return handle


def holder(path: Path) -> str:
    """Who holds the lock file ``path``, in words: its pid, and whether that process runs or is stopped."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return "another process (its pid is not recorded)"
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return f"process {pid}"
    return f"process {pid} ({'stopped (SIGSTOP?)' if state in ('T', 't') else 'running'})"


@contextlib.contextmanager
def held(root: Path, key: str, name: str, *, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold lock ``name`` of the store at ``root`` (``key``: its resolved path): re-entrant within a thread,
    exclusive across threads and processes; LockTimeout after waiting ``timeout`` seconds."""
    safe_name(name, "a lock name")
    with _registry_lock:
        entry = _file_locks.setdefault((key, name), [threading.RLock(), None, 0])
    acquired = entry[0].acquire(timeout=timeout) if timeout > 0 else entry[0].acquire(blocking=False)
    if not acquired:
        raise LockTimeout(f"lock {name!r} of the store at {root} is held by another thread of this process; waited "
                          f"{timeout:g} s (the lock_timeout_s setting)")
    try:
        if entry[2] == 0:
            entry[1] = lock_file(root / ".locks" / f"{name}.lock", timeout)
        entry[2] += 1
        try:
            yield
        finally:
            entry[2] -= 1
            if entry[2] == 0 and entry[1] is not None:
                entry[1].close()  # closing the file releases the flock
                entry[1] = None
    finally:
        entry[0].release()
