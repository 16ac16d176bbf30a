"""Semantic match throughput: the numpy kernel at 1K and 100K routes, 768-dim, top-3, against DESIGN §8.

Kernel timed: ``tinydancer_duck.semantic._kernels.match_top_k`` = float32 GEMM (queries @ routes.T) in row chunks, top-3 by
``np.argpartition``, and softmax confidence over all routes; random unit vectors (seeded). The GEMM bound is the
time numpy's float32 GEMM needs for the same FLOPs (2·n·R·D), measured in the same run on a (100K × 768) @
(768 × R) product (in row blocks at 100K routes). Medians of 7 runs; 100K routes use 4,000 query rows (not
100K: ~4 ms/row), 1K routes use 100K rows. Also timed: one query alone against 100K routes (a GEMV), the case
where a LanceDB ANN index (FACTS.md: IVF_HNSW_SQ ≈ 4 ms/query at 100K, 70–140 s build, recall 0.9–0.96) could win.

Usage: ``python benchmarks/bench_semantic.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinydancer_duck.semantic._kernels import match_top_k

DIM, K, SEED_US = 768, 3, 250.0


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def median_time(fn, repeats: int, *args) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def blocked_gemm(q: np.ndarray, routes: np.ndarray, chunk: int) -> None:
    for lo in range(0, len(q), chunk):
        q[lo:lo + chunk] @ routes.T


def measure(q: np.ndarray, routes: np.ndarray, chunk: int, repeats: int) -> tuple[float, float]:
    """(kernel µs/row, GEMM µs/row for the same FLOPs): medians of ``repeats``, GEMM and kernel runs interleaved."""
    out = np.empty((len(q), len(routes)), np.float32) if len(routes) <= 1000 else None
    gemm, kernel = [], []
    for _ in range(repeats):
        if out is not None:
            gemm.append(median_time(np.matmul, 1, q, routes.T, out))
        else:  # the full (n, 100K) product does not fit: time the same GEMM in row blocks
            gemm.append(median_time(blocked_gemm, 1, q, routes, chunk))
        kernel.append(median_time(partial(match_top_k, chunk=chunk), 1, q, routes, K))
    return statistics.median(kernel) / len(q) * 1e6, statistics.median(gemm) / len(q) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer rows and repeats")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    rng = np.random.default_rng(0)
    n_small = 20_000 if args.quick else 100_000
    n_large = 1_000 if args.quick else 4_000  # 100K routes: ~4 ms/row, so fewer rows (still 400 GFLOP per run)
    queries = unit(rng, n_small)

    print(f"semantic match kernel, {DIM}-dim, top-{K}, medians of {repeats} (GEMM and kernel runs interleaved, so a "
          "busy machine slows both alike)\n")
    print(f"{'case':<36}{'rows':>8}{'µs/row':>9}{'GEMM µs':>9}{'% bound':>9}{'x seed':>8}  target (DESIGN §8)")
    results = {}
    for label, n_routes, q, chunk, target in (
            ("1K routes, top-3", 1000, queries, 1024, "≥ 60% of bound, ≤ 50 µs/row, ≥ 5x seed"),
            ("100K routes, top-3", 100_000, queries[:n_large], 256, "(none; seed plan has no 100K row)")):
        routes = unit(rng, n_routes)
        k_us, g_us = measure(q, routes, chunk, repeats)
        gflops = 2 * n_routes * DIM / (g_us * 1e-6) / 1e9
        results[n_routes] = (k_us, g_us)
        print(f"{label:<36}{len(q):>8}{k_us:>9.2f}{g_us:>9.2f}{g_us / k_us:>9.0%}{SEED_US / k_us:>8.1f}  {target}"
              f"   [GEMM {gflops:.0f} GFLOP/s]")
        if n_routes == 100_000:
            one = q[:1]
            single = median_time(match_top_k, max(repeats, 5), one, routes, K) * 1e6
            print(f"{'100K routes, one query alone':<36}{1:>8}{single:>9.0f}"
                  "   vs LanceDB IVF_HNSW_SQ ≈ 4,000 µs/query (FACTS.md, 384-dim)")
            ten = unit(rng, 10_000)
            single10 = median_time(match_top_k, max(repeats, 5), one, ten, K) * 1e6
            print(f"{'10K routes, one query alone':<36}{1:>8}{single10:>9.0f}")
    k_us, g_us = results[1000]
    ok = k_us <= 50 and g_us / k_us >= 0.6 and SEED_US / k_us >= 5
    print(f"\n1K routes top-3 meets DESIGN §8: {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
