"""BLAS thread control for UDF calls.

DuckDB hands a UDF 2048 rows at a time from up to `threads` worker threads. On matrices that small OpenBLAS's own
threads cost more than they save: SQL routing measured 55-67K rows/s with 2 BLAS threads against 147-155K rows/s
with 1, on 2 cores (benchmarks/bench_route.py). So every UDF call runs with BLAS at one thread, and the previous
setting comes back when the last concurrent call ends. Large direct Python calls (Engine.route on 1M rows) keep the
user's setting, where BLAS threads do pay off.

The setting is process-wide, and it must be made from whichever thread runs the call: DuckDB calls UDFs from its own
threads, and the OpenBLAS shipped with numpy (0.3.31 here) ignores ``openblas_set_num_threads`` (what threadpoolctl
calls) from any thread but the main one, so those calls ran with 2 BLAS threads (a small product 2-4x slower, SQL
routing 1.6x slower than under OPENBLAS_NUM_THREADS=1; route-parquet's threads likewise). Its
``openblas_set_num_threads_local`` (OpenBLAS >= 0.3.27) takes effect from any thread, so it is used where a loaded
OpenBLAS has it; other BLAS libraries are set through threadpoolctl.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_depth = 0
_saved: list[tuple[Callable[[int], object], int]] = []
_libraries: list[tuple[Callable[[], int], Callable[[int], object]]] | None = None


def _blas_libraries() -> list[tuple[Callable[[], int], Callable[[int], object]]]:
    """(get, set) thread-count functions of every loaded BLAS library, found once."""
    global _libraries
    if _libraries is None:
        found = []
        for lib in ThreadpoolController().select(user_api="blas").lib_controllers:
            setter = getattr(lib.dynlib, "openblas_set_num_threads_local", None) \
                if lib.internal_api == "openblas" else None
            if setter is not None:
                setter.restype, setter.argtypes = ctypes.c_int, [ctypes.c_int]
            found.append((lambda lib=lib: lib.num_threads, setter or lib.set_num_threads))
        _libraries = found
    return _libraries


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the body with every loaded BLAS at one thread, from any thread; nested and concurrent uses share one
    setting."""
    global _depth
    with _lock:
        if _depth == 0:
            _saved[:] = [(set_threads, get_threads()) for get_threads, set_threads in _blas_libraries()]
            for set_threads, _ in _saved:
                set_threads(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for set_threads, threads in _saved:
                    set_threads(threads)
                _saved.clear()
