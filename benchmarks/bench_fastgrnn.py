"""FastGRNN kernel benchmark against numpy's own float32 GEMM rate (DESIGN.md §8).

Run: PYTHONPATH=. python benchmarks/bench_fastgrnn.py [--rows 100000] [--repeats 7] [--threads 1,2]

In one run it measures
- the GEMM bound: numpy float32 (rows x 768) @ (768 x 64), GFLOP/s (median of repeats);
- FastGRNN step, µs/row, for full rank and rank 16, from h = 0 and from a given h;
- classification: step + linear head (150 classes) + softmax, µs/row;
- the gate math alone in numpy and in numexpr (why the kernel uses numpy);
for each BLAS thread count asked for (threadpoolctl), then prints µs/row, rows/s, % of the GEMM bound for the same
matmul FLOPs, × faster than the seed plan's figures (step 45 µs, classification 120 µs), and pass/fail against the
targets. Exit status 1 if a target fails at the default thread count (``--check``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import numexpr as ne
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from tinydancer_duck.learn._fastgrnn import init_params, step
from tinydancer_duck.learn._train import TrainResult, predict_proba

D, H, RANK, CLASSES = 768, 64, 16, 150
SEED_US = {"step": 45.0, "classification": 120.0}


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm up: page in buffers, build cached transposes
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(rows: int, repeats: int) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, D), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # like the embedder's output
    h = rng.uniform(-1, 1, (rows, H)).astype(np.float32)
    out = np.empty((rows, H), np.float32)
    full = init_params(D, H, random_state=1)
    low = init_params(D, H, mode="lowrank", rank=RANK, random_state=1)
    w_t = full.derived("WT")
    head = rng.standard_normal((CLASSES, H)).astype(np.float32) / 8
    model_full = TrainResult(full, head, np.zeros(CLASSES, np.float32), "multiclass", CLASSES)
    model_low = TrainResult(low, head, np.zeros(CLASSES, np.float32), "multiclass", CLASSES)
    gemm_flops = 2.0 * rows * D * H
    res: dict[str, dict[str, float]] = {}
    t = median_seconds(lambda: np.matmul(x, w_t, out=out), repeats)
    res["gemm"] = {"seconds": t, "flops": gemm_flops}
    t_view = median_seconds(lambda: np.matmul(x, full["W"].T, out=out), repeats)
    res["gemm (W.T view, not contiguous)"] = {"seconds": t_view, "flops": gemm_flops}
    cases: dict[str, tuple[Callable[[], object], float]] = {
        "step full, h=None": (lambda: step(x, None, full, out=out), gemm_flops),
        "step full, h given": (lambda: step(x, h, full, out=out), gemm_flops + 2.0 * rows * H * H),
        "step rank16, h=None": (lambda: step(x, None, low, out=out), 2.0 * rows * RANK * (D + H)),
        "step rank16, h given": (lambda: step(x, h, low, out=out), 2.0 * rows * RANK * (D + 3 * H)),
        "classification full": (lambda: predict_proba(x, model_full), gemm_flops + 2.0 * rows * H * CLASSES),
        "classification rank16": (lambda: predict_proba(x, model_low), 2.0 * rows * (RANK * (D + H) + H * CLASSES)),
    }
    for name, (fn, flops) in cases.items():
        res[name] = {"seconds": median_seconds(fn, repeats), "flops": flops}
    a = x[:, :H] @ np.ones((H, H), np.float32) / 8  # a (rows, H) pre-activation stand-in
    bz, bh = np.ones(H, np.float32), np.zeros(H, np.float32)
    zeta, nu = np.float32(0.73), np.float32(0.018)
    res["gate math numexpr"] = {
        "seconds": median_seconds(
            lambda: ne.evaluate(
                "(zeta * (1 - 1 / (1 + exp(-(a + bz)))) + nu) * tanh(a + bh)",
                out=out,
                local_dict={"a": a, "bz": bz, "bh": bh, "zeta": zeta, "nu": nu},
            ),
            repeats,
        ),
        "flops": 0.0,
    }

    def gate_numpy() -> None:
        t_buf = np.multiply(a, np.float32(0.5))
        t_buf += bz * np.float32(0.5)
        np.tanh(t_buf, out=t_buf)
        t_buf *= -zeta / 2
        t_buf += zeta / 2 + nu
        np.add(a, bh, out=out)
        np.tanh(out, out=out)
        np.multiply(out, t_buf, out=out)

    res["gate math numpy"] = {"seconds": median_seconds(gate_numpy, repeats), "flops": 0.0}
    return res


def report(res: dict[str, dict[str, float]], rows: int, label: str) -> list[tuple[str, bool]]:
    rate = res["gemm"]["flops"] / res["gemm"]["seconds"]
    print(
        f"\n== {label}: GEMM bound (rows x {D}) @ ({D} x {H}) float32 = {rate / 1e9:.1f} GFLOP/s "
        f"({res['gemm']['seconds'] / rows * 1e6:.3f} µs/row)"
    )
    print(f"{'operation':34s} {'µs/row':>8s} {'rows/s':>12s} {'% bound':>8s} {'× seed':>7s}")
    us: dict[str, float] = {}
    pct: dict[str, float] = {}
    for name, r in res.items():
        us[name] = r["seconds"] / rows * 1e6
        pct[name] = 100.0 * (r["flops"] / rate) / r["seconds"] if r["flops"] else float("nan")
        seed = SEED_US["classification" if name.startswith("classification") else "step"]
        speedup = f"{seed / us[name]:7.1f}" if name.startswith(("step", "classification")) else "       "
        share = f"{pct[name]:7.1f}%" if r["flops"] else "        "
        print(f"{name:34s} {us[name]:8.3f} {rows / r['seconds']:12,.0f} {share} {speedup}")
    checks = [
        ("full step <= 3 µs/row", max(us["step full, h=None"], us["step full, h given"]) <= 3.0),
        ("full step >= 60% of GEMM bound", min(pct["step full, h=None"], pct["step full, h given"]) >= 60.0),
        ("rank-16 step <= 1 µs/row", max(us["step rank16, h=None"], us["step rank16, h given"]) <= 1.0),
        ("classification <= 4 µs/row", us["classification full"] <= 4.0),
    ]
    for what, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {what}")
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", default="1,2", help="BLAS thread counts to compare, comma-separated")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target fails at the default threads")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be >= 5 (figures are medians)")
    print(
        f"numpy {np.__version__}, numexpr {ne.__version__} ({ne.get_num_threads()} threads, "
        f"VML {ne.use_vml}), cores {os.cpu_count()}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}"
    )
    for info in threadpool_info():
        print(
            "  threadpool:",
            {k: info.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer", "architecture")},
        )
    default = run(args.rows, args.repeats)
    checks = report(default, args.rows, "default BLAS threads")
    for n_threads in (int(v) for v in args.threads.split(",") if v.strip()):
        with threadpool_limits(limits=n_threads, user_api="blas"):
            report(run(args.rows, args.repeats), args.rows, f"BLAS threads = {n_threads}")
    return 1 if args.check and not all(ok for _, ok in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
