"""Write locks across threads and processes: an exclusive ``flock`` on a file per table under ``<store>/.locks``.

Used by :meth:`tinydancer_duck.store._store.Store.locked` around a read-modify-write (agent stats, model versions), so two
processes never both compute from the same old row. Local file systems only; on a platform without ``fcntl`` only
the threads of one process are serialized (by the store's own lock).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


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
