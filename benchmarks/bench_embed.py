"""Throughput of each available embedder on real CLINC150 texts, in 2048-row chunks (median of repeats).

Usage: ``python benchmarks/bench_embed.py [--repeats 5]``. Needs ../shared/datasets (skips otherwise). The ONNX
embedder is measured with its cache disabled, on the first 2048 texts only (it runs ~600 texts/s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinydancer_duck.embed._embedders import HashingEmbedder, OnnxEmbedder, StaticEmbedder
from tinydancer_duck.errors import ModelError

CLINC = REPO.parent / "shared" / "datasets" / "intents" / "clinc150_train_val.json"
CHUNK = 2048
TARGET = 100_000


def load_texts() -> pa.Array:
    """All CLINC150 train/val/oos texts (18,200 short utterances) as an Arrow string array."""
    data = json.loads(CLINC.read_text())
    return pa.array([text for split in ("train", "val", "oos_train", "oos_val") for text, _ in data[split]])


def throughput(embedder, texts: pa.Array, repeats: int) -> tuple[float, float]:
    """(cold texts/s of the first pass, median texts/s of `repeats` warm passes) over 2048-row chunks."""
    rates = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for offset in range(0, len(texts), CHUNK):
            embedder.embed(texts.slice(offset, CHUNK))
        rates.append(len(texts) / (time.perf_counter() - start))
    return rates[0], statistics.median(rates[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not CLINC.exists():
        print(f"skip: {CLINC} not found")
        return
    texts = load_texts()
    candidates = [
        ("static", StaticEmbedder, texts),
        ("hashing", HashingEmbedder, texts),
        ("onnx", lambda: OnnxEmbedder(cache_size=0), texts.slice(0, CHUNK)),
    ]
    print(f"{'embedder':<10}{'dim':>5}{'texts':>8}{'cold/s':>11}{'median/s':>11}  target {TARGET:,}/s")
    for name, factory, sample in candidates:
        try:
            embedder = factory()
        except ModelError as exc:
            print(f"{name:<10} unavailable: {exc}")
            continue
        cold, warm = throughput(embedder, sample, args.repeats)
        verdict = "ok" if warm >= TARGET else "below"
        print(f"{name:<10}{embedder.dim:>5}{len(sample):>8}{cold:>11,.0f}{warm:>11,.0f}  {verdict}")


if __name__ == "__main__":
    main()
