"""BLAS thread control (tinydancer_duck._blas): one BLAS thread inside the context from any thread, restored after."""

from __future__ import annotations

import threading

from threadpoolctl import ThreadpoolController, threadpool_info

from tinydancer_duck._blas import single_threaded_blas


def blas_threads() -> set[int]:
    """The thread counts of the loaded BLAS libraries."""
    return {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}


def test_one_blas_thread_inside_the_context_from_worker_threads_as_from_the_main_one():
    """DuckDB calls UDFs from its own threads, where OpenBLAS ignores threadpoolctl's setting: the context must still
    give one thread there (it gave 2 before, and SQL routing ran 1.6x slower), and the user's setting comes back
    when the last concurrent call ends."""
    with ThreadpoolController().limit(limits=2, user_api="blas"):
        inside: dict[str, set[int]] = {}
        entered = threading.Barrier(3)

        def probe(name: str, together: bool) -> None:
            with single_threaded_blas(), single_threaded_blas():  # nested, too
                if together:
                    entered.wait(timeout=30)  # all three inside at once
                inside[name] = blas_threads()
                if together:
                    entered.wait(timeout=30)

        probe("main", False)
        assert blas_threads() == {2}
        alone = threading.Thread(target=probe, args=("worker", False))
        alone.start()
        alone.join()
        assert blas_threads() == {2}
        together = [threading.Thread(target=probe, args=(f"worker {k}", True)) for k in range(3)]
        for worker in together:
            worker.start()
        for worker in together:
            worker.join()
        assert inside == {name: {1} for name in ["main", "worker", "worker 0", "worker 1", "worker 2"]}
        assert blas_threads() == {2}
