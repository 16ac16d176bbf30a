"""BLAS thread control for UDF calls.

DuckDB hands a UDF 2048 rows at a time from up to `threads` worker threads. On matrices that small OpenBLAS's own
threads cost more than they save: SQL routing measured 55-67K rows/s with 2 BLAS threads against 147-155K rows/s
with 1, on 2 cores (benchmarks/bench_route.py). So every UDF call runs with BLAS at one thread, and the previous
setting comes back when the last concurrent call ends. Large direct Python calls (Engine.route on 1M rows) keep the
user's setting, where BLAS threads do pay off.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_depth = 0
_saved: list[tuple[object, int]] = []
_controller: ThreadpoolController | None = None


def _blas_libraries() -> list:
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.select(user_api="blas").lib_controllers


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the body with every loaded BLAS at one thread; nested and concurrent uses share one setting."""
    global _depth
    with _lock:
        if _depth == 0:
            _saved[:] = [(lib, lib.num_threads) for lib in _blas_libraries()]
            for lib, _ in _saved:
                lib.set_num_threads(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for lib, threads in _saved:
                    lib.set_num_threads(threads)
                _saved.clear()
