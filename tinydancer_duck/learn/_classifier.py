"""The route classifier: one FastGRNN step + a linear head over the embedder's (n, D) output. Pure numpy/pyarrow.

Model (T = 1: a request is one embedding, so the cell runs one step from the zero state)::

    h      = FastGRNN(s x, h0 = 0)   = (zeta (1 - z) + nu) * tanh(s x W^T + b_h),  z = sigmoid(s x W^T + b_z)
    logits = h W_o^T + b_o          x: (n, D) unit rows, s: input_scale, W_o: (C, H), b_o: (C,)

``classify`` takes a softmax over the C classes (single label) and returns the top ``k`` sorted by probability;
``classify_capabilities`` takes a per-class sigmoid of the same logits (multi-label) and keeps those > threshold.
``input_scale`` multiplies the unit-norm embeddings so their entries have about unit variance (s = sqrt(D) by
default), which puts the cell's N(0, 1/D) initial weights in their intended regime.

Serialized as npz bytes, written with fixed zip timestamps so the same weights always give the same bytes: the cell
arrays under ``cell/<name>``, ``head_weight``, ``head_bias``, ``labels`` (unicode) and ``meta`` (a JSON string:
format, mode, input_scale, embedder identity, dim). The store and the Classifiers service live in
:mod:`tinydancer_duck.learn._classify`.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck._numeric import sigmoid, softmax
from tinydancer_duck.errors import InvalidArgument, ModelError

from ._fastgrnn import FastGRNNParams, step

__all__ = ["CLASSIFY_FIELDS", "CLASSIFY_TYPE", "TOP_K", "RouteClassifier", "capabilities_arrow", "capability_match",
           "classification_arrow", "top_classes"]

#: The weights that multiply the input x, per FastGRNN mode (input_scale is folded into them).
_INPUT_WEIGHTS = {"full": ("W",), "lowrank": ("W2",), "separate": ("W_z", "W_h")}
#: Classifications returned per row by ``ruvector_classify_request`` (the top 5 of C, sorted).
TOP_K = 5
FORMAT = "tinydancer.route_classifier/1"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so serialization is byte-reproducible

LABEL_PROB = pa.struct([("label", pa.string()), ("probability", pa.float64())])
CLASSIFY_TYPE = pa.struct([("classifications", pa.list_(LABEL_PROB)), ("top_category", pa.string()),
                           ("confidence", pa.float64())])
CLASSIFY_FIELDS = tuple(f.name for f in CLASSIFY_TYPE)


@dataclass(frozen=True, eq=False)
class RouteClassifier:
    """A trained FastGRNN + linear head and the class names it predicts.

    cell : the FastGRNN weights (input_dim D, hidden_dim H), float32
    head_weight : float32 (C, H); head_bias : float32 (C,); labels : C class names
    embedder : identity of the embedder whose vectors it was trained on; it refuses vectors from any other
    input_scale : factor applied to the inputs (see the module docstring)
    metrics : how training went (accuracies, epochs, hyperparameters); stored with the model
    """

    cell: FastGRNNParams
    head_weight: np.ndarray
    head_bias: np.ndarray
    labels: tuple[str, ...]
    embedder: str
    input_scale: float = 1.0
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        w = np.array(self.head_weight, dtype=np.float32, order="C")
        b = np.array(self.head_bias, dtype=np.float32)
        c = len(self.labels)
        if w.shape != (c, self.cell.hidden_dim) or b.shape != (c,):
            raise ModelError(f"head shapes {w.shape}, {b.shape} do not fit {c} labels and hidden_dim "
                             f"{self.cell.hidden_dim}")
        if self.cell.dtype != np.float32:
            object.__setattr__(self, "cell", self.cell.astype(np.float32))
        for a in (w, b):
            a.setflags(write=False)
        object.__setattr__(self, "head_weight", w)
        object.__setattr__(self, "head_bias", b)
        object.__setattr__(self, "labels", tuple(str(label) for label in self.labels))
        object.__setattr__(self, "_label_array", pa.array(self.labels, pa.string()))
        object.__setattr__(self, "_head_t", np.ascontiguousarray(w.T))
        # Fold input_scale into the input weights once: (s x) W^T = x (s W)^T, and no (n, D) scaled copy per batch.
        scaled = {k: self.cell[k] * np.float32(self.input_scale) for k in _INPUT_WEIGHTS[self.cell.mode]}
        object.__setattr__(self, "_cell_scaled", self.cell.replace(**scaled) if self.input_scale != 1.0 else self.cell)

    @property
    def dim(self) -> int:
        return self.cell.input_dim

    @property
    def hidden_dim(self) -> int:
        return self.cell.hidden_dim

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def label_array(self) -> pa.Array:
        return self._label_array  # type: ignore[attr-defined]

    @property
    def display_name(self) -> str:
        """How messages name this model: its name and version in the store."""
        return f"{self.metrics.get('name', '?')!r} version {self.metrics.get('version', '?')}"

    def fits(self, identity: str, dim: int) -> bool:
        """Whether the model reads vectors of this embedder identity and dimension."""
        return self.dim == dim and self.embedder == identity

    def check_embedder(self, identity: str, dim: int, *, name: str = "model") -> None:
        """Raise ModelError unless the model reads vectors of this embedder identity and dimension."""
        if not self.fits(identity, dim):
            raise ModelError(f"classifier {name} was trained on {self.embedder!r} vectors of dimension {self.dim}, "
                             f"but this engine embeds with {identity!r} (dimension {dim}); train a classifier "
                             "with this embedder (ruvector_train_classifier) or open the engine with that one")

    # -- inference ---------------------------------------------------------------------------------------------
    def logits(self, x: np.ndarray) -> np.ndarray:
        """float32 (n, C) logits for float32 x of shape (n, D)."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InvalidArgument("embedding", x.shape, f"expected shape (n, {self.dim})")
        h = step(x, None, self._cell_scaled)  # type: ignore[attr-defined]
        out = h @ self._head_t  # type: ignore[attr-defined]
        out += self.head_bias
        return out

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Softmax over classes: float32 (n, C), rows sum to 1."""
        out = self.logits(x)
        return softmax(out, out=out)

    def capability_probabilities(self, x: np.ndarray) -> np.ndarray:
        """Per-class sigmoid of the logits (multi-label): float32 (n, C), each in (0, 1)."""
        out = self.logits(x)
        return sigmoid(out, out=out)

    def classify(self, x: np.ndarray, top_k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
        """The ``top_k`` most probable classes per row: (class index intp (n, k), probability float32 (n, k)),
        sorted by probability descending. k = min(top_k, C)."""
        return top_classes(self.probabilities(x), top_k)

    def classify_capabilities(self, x: np.ndarray, threshold: float | np.ndarray = 0.5
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Classes whose sigmoid probability is > ``threshold`` (a number, or float (n,) per row), as flat arrays
        sorted by (row, probability desc): (row intp (m,), class index intp (m,), probability float32 (m,))."""
        probs = self.capability_probabilities(x)
        return _above(probs, threshold)

    # -- serialization -----------------------------------------------------------------------------------------
    def to_bytes(self, metrics: Mapping[str, Any] | None = None) -> bytes:
        """npz bytes; the same model (and ``metrics``, JSON-able, stored in ``meta``) always gives the same bytes."""
        meta = {"format": FORMAT, "mode": self.cell.mode, "input_scale": float(self.input_scale),
                "embedder": self.embedder, "dim": self.dim, "hidden_dim": self.hidden_dim}
        if metrics:
            meta["metrics"] = dict(metrics)
        arrays: dict[str, np.ndarray] = {f"cell/{k}": v for k, v in sorted(self.cell.arrays.items())}
        arrays["head_weight"] = self.head_weight
        arrays["head_bias"] = self.head_bias
        arrays["labels"] = np.array(self.labels, dtype=str)
        arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, array in arrays.items():
                info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                member = io.BytesIO()
                np.lib.format.write_array(member, np.array(array, order="C"), allow_pickle=False)
                zf.writestr(info, member.getvalue())
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, metrics: Mapping[str, Any] | None = None,
                   source: str = "model") -> RouteClassifier:
        """Load from :meth:`to_bytes` output; ModelError if the bytes are not a route classifier."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            meta = json.loads(str(arrays.pop("meta")))
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
            cell = FastGRNNParams(meta["mode"], {k[5:]: v for k, v in arrays.items() if k.startswith("cell/")})
            return cls(cell, arrays["head_weight"], arrays["head_bias"], tuple(arrays["labels"].tolist()),
                       meta["embedder"], float(meta["input_scale"]), {**meta.get("metrics", {}), **(metrics or {})})
        except ModelError:
            raise
        except Exception as exc:  # a corrupt or foreign blob: one clear error, whatever numpy/zipfile said
            raise ModelError(f"cannot load classifier {source}: {exc}") from exc


def top_classes(probs: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """(index (n, k), probability (n, k)) of the k largest entries per row, sorted descending."""
    n, c = probs.shape
    k = min(int(top_k), c)
    if k < c:
        part = np.argpartition(probs, c - k, axis=1)[:, c - k:]
    else:
        part = np.broadcast_to(np.arange(c), (n, c))
    picked = np.take_along_axis(probs, part, axis=1)
    order = np.argsort(-picked, axis=1, kind="stable")
    index = np.take_along_axis(part, order, axis=1)
    return index, np.take_along_axis(picked, order, axis=1)


def _above(probs: np.ndarray, threshold: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    limit = np.asarray(threshold, dtype=np.float64)
    rows, cols = np.nonzero(probs > (limit[:, None] if limit.ndim == 1 else limit))
    values = probs[rows, cols]
    order = np.lexsort((cols, -values, rows))
    return rows[order], cols[order], values[order]


def classification_arrow(index: np.ndarray, probs: np.ndarray, labels: pa.Array, valid: np.ndarray) -> pa.StructArray:
    """The ruvector_classify_request STRUCT: classifications (label, probability)[], top_category, confidence.

    index, probs : (n, k) from :func:`top_classes`; valid : bool (n,), False rows become NULL.
    """
    n, k = index.shape
    kept = np.repeat(valid, k)
    flat_index = index.reshape(-1)[kept]
    values = pa.StructArray.from_arrays(
        [labels.take(pa.array(flat_index, pa.int64())), pa.array(probs.reshape(-1)[kept].astype(np.float64))],
        fields=list(LABEL_PROB))
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(np.where(valid, k, 0), out=offsets[1:])
    null = ~valid
    lists = pa.ListArray.from_arrays(pa.array(offsets), values, type=pa.list_(LABEL_PROB),
                                     mask=pa.array(null) if null.any() else None)
    top = index[:, 0] if k else np.zeros(n, np.intp)
    top_label = labels.take(pa.array(np.where(valid, top, 0), pa.int64(), mask=null if k else None))
    confidence = pa.array(probs[:, 0].astype(np.float64) if k else np.zeros(n), pa.float64(), mask=null)
    return pa.StructArray.from_arrays([lists, top_label, confidence], fields=list(CLASSIFY_TYPE),
                                      mask=pa.array(null) if null.any() else None)


def capabilities_arrow(rows: np.ndarray, index: np.ndarray, probs: np.ndarray, n: int, labels: pa.Array,
                       valid: np.ndarray) -> pa.ListArray:
    """(label, probability)[] per row from :meth:`RouteClassifier.classify_capabilities`; invalid rows NULL."""
    keep = valid[rows]
    rows, index, probs = rows[keep], index[keep], probs[keep]
    values = pa.StructArray.from_arrays(
        [labels.take(pa.array(index, pa.int64())), pa.array(probs.astype(np.float64))], fields=list(LABEL_PROB))
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    null = ~valid
    return pa.ListArray.from_arrays(pa.array(offsets), values, type=pa.list_(LABEL_PROB),
                                    mask=pa.array(null) if null.any() else None)


def capability_match(probabilities: np.ndarray, labels: Sequence[str] | pa.Array, has_capability: np.ndarray,
                     capability_vocab: Sequence[str] | pa.Array) -> np.ndarray:
    """Probability mass a request puts on each agent's capabilities.

    probabilities : float32 (n, C), rows from :meth:`RouteClassifier.probabilities` (summing to 1)
    labels : the C class names, aligned with the columns of ``probabilities``
    has_capability : bool (K, A), agent a holds capability k (``AgentSnapshot.has_capability``)
    capability_vocab : the K capability names (``AgentSnapshot.capability_vocab``)
    returns : float32 (n, A) in [0, 1]: m[i, a] = sum of p[i, c] over classes c that agent a holds as a capability.
        Classes no agent holds add to no agent; an agent holding none of the classes gets 0.
    """
    labels = pa.array(labels, pa.string()) if not isinstance(labels, pa.Array) else labels
    vocab = pa.array(capability_vocab, pa.string()) if not isinstance(capability_vocab, pa.Array) \
        else capability_vocab
    has = np.asarray(has_capability, dtype=bool)
    n_agents = has.shape[1] if has.ndim == 2 else 0
    if probabilities.shape[1] != len(labels):
        raise InvalidArgument("probabilities", probabilities.shape, f"expected {len(labels)} columns, one per label")
    if has.shape != (len(vocab), n_agents):
        raise InvalidArgument("has_capability", has.shape, f"expected ({len(vocab)}, A)")
    position = pc.index_in(labels, value_set=vocab)
    found = position.is_valid().to_numpy(zero_copy_only=False)
    covers = np.zeros((len(labels), n_agents), np.float32)  # class c -> agents holding it
    if found.any() and n_agents:
        covers[found] = has[position.to_numpy(zero_copy_only=False)[found].astype(np.intp)]
    out = np.asarray(probabilities, dtype=np.float32) @ covers
    return np.clip(out, 0.0, 1.0, out=out)
