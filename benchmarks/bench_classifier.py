"""Route classifier benchmark: SQL end to end over a Parquet file, and the pure classification kernel.

Run: PYTHONPATH=. python benchmarks/bench_classifier.py [--rows 100000] [--repeats 3]

- ``SELECT ruvector_classify_request(text)`` over ``--rows`` CLINC-like texts (CLINC150 utterances with a varying
  number appended, so the embedder's word cache does not see the same strings only) read from a Parquet file, with
  the packaged default model (static embedder, hidden 256): rows/s, median of repeats. Includes embedding.
- classification from embeddings (FastGRNN step + head + softmax + top-5), µs/row: at 768-dim hidden 64 with 150
  classes (DESIGN §8 target: <= 4 µs/row), and for the packaged default model (256-dim, hidden 256).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

import tinydancer_duck as td
from benchmarks.bench_fastgrnn import median_seconds
from tinydancer_duck.learn._classifier import RouteClassifier
from tinydancer_duck.learn._classify import default_classifier
from tinydancer_duck.learn._fastgrnn import init_params

CLINC = Path(__file__).resolve().parents[1] / "tinydancer_duck" / "datasets" / "clinc150_train_val.json"


def clinc_like(rows: int, seed: int = 0) -> list[str]:
    data = json.loads(CLINC.read_text(encoding="utf-8"))
    pool = [t for t, _ in data["train"] + data["val"]]
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(pool), size=rows)
    numbers = rng.integers(1000, size=rows)
    return [f"{pool[p]} {n}" for p, n in zip(picks, numbers)]


def bench_sql(rows: int, repeats: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "requests.parquet"
        pq.write_table(pa.table({"id": np.arange(rows), "text": clinc_like(rows)}), path)
        con = td.connect(Path(tmp) / "store")
        query = (f"SELECT count(c.top_category) FROM (SELECT ruvector_classify_request(text) AS c "
                 f"FROM read_parquet('{path}'))")
        assert con.execute(query).fetchone()[0] == rows
        seconds = median_seconds(lambda: con.execute(query).fetchone(), repeats)
    return rows / seconds


def bench_kernel(model: RouteClassifier, rows: int, repeats: int) -> float:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((rows, model.dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return median_seconds(lambda: model.classify(x), repeats) / rows * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    seed_768 = RouteClassifier(init_params(768, 64, random_state=1), rng.standard_normal((150, 64)) / 8,
                               np.zeros(150), tuple(f"c{i}" for i in range(150)), "bench", float(np.sqrt(768)))
    for threads in (None, 1):
        label = "default BLAS threads" if threads is None else "1 BLAS thread"
        with threadpool_limits(threads):
            us_768 = bench_kernel(seed_768, args.rows, max(args.repeats, 5))
            us_default = bench_kernel(default_classifier(), args.rows, max(args.repeats, 5))
        print(f"[{label}] classify (step + head + softmax + top-5), 768-dim hidden 64, 150 classes: "
              f"{us_768:.2f} µs/row ({120.0 / us_768:.0f}x the seed's 120 µs; target <= 4 µs/row)")
        print(f"[{label}] classify, packaged default (256-dim, hidden 256, 150 classes): {us_default:.2f} µs/row")
    rate = bench_sql(args.rows, args.repeats)
    print(f"SQL SELECT ruvector_classify_request(text) over {args.rows} Parquet rows (embed + classify): "
          f"{rate:,.0f} rows/s ({args.rows / rate:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
