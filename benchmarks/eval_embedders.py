"""Nearest-description accuracy of each available embedder on CLINC150 val (150 intents, 3,000 queries).

Each intent's route vector is the L2-normalized mean of the embeddings of its name (underscores -> spaces) and its
first 5 train utterances; a val query is correct when its most cosine-similar route is its own intent.
Usage: ``python benchmarks/eval_embedders.py``. Needs ../shared/datasets (skips otherwise).
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinydancer_duck.embed._embedders import make_embedder
from tinydancer_duck.errors import ModelError

CLINC = REPO.parent / "shared" / "datasets" / "intents" / "clinc150_train_val.json"
SHOTS = 5


def accuracy(embedder, data: dict) -> float:
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


def main() -> None:
    if not CLINC.exists():
        print(f"skip: {CLINC} not found")
        return
    data = json.loads(CLINC.read_text())
    print(f"CLINC150 val: {len(data['val'])} queries, routes = intent name + first {SHOTS} train utterances")
    print(f"{'embedder':<10}{'identity':<38}{'accuracy':>9}{'seconds':>9}")
    for kind in ("static", "hashing", "onnx"):
        try:
            embedder = make_embedder(kind)
        except ModelError as exc:
            print(f"{kind:<10}unavailable: {exc}")
            continue
        start = time.perf_counter()
        acc = accuracy(embedder, data)
        print(f"{kind:<10}{embedder.identity:<38}{acc:>9.1%}{time.perf_counter() - start:>9.1f}")


if __name__ == "__main__":
    main()
