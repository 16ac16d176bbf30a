"""Text embedders: one protocol, three kinds.

- ``static`` (default): a (V, D) token table distilled from all-MiniLM-L6-v2 with model2vec's method, then refit
  to the model's sentence embeddings on a corpus of real texts (``tinydancer_duck/datasets/build_static_embedder.py``); a text is the
  L2-normalized sum (= mean, after normalizing) of its WordPiece tokens' rows. numpy + pyarrow only.
- ``onnx``: the contextual all-MiniLM-L6-v2 model, int8-quantized, through onnxruntime (optional extra ``[onnx]``;
  the model file is built locally from a pip-shipped model, see ``_onnx_model``), 384-dim.
- ``hashing``: signed feature hashing of word unigrams and character 3/4-grams; keyword-only, a test double.

Every embedder is deterministic across processes (crc32/blake2b, never Python's salted ``hash()``), returns float32
C-contiguous (n, D) arrays with unit-norm rows, and gives an all-zero row for a NULL, empty or whitespace-only text
(callers mask those rows). The static embedder sums a text's first HEAD_TOKENS and last TAIL_TOKENS word pieces,
reading a long text in two windows at its ends (``_ends``); the hashing embedder reads a text's first ``MAX_TOKENS``
(512) tokens, taken from its first 512 * 16 characters; the ONNX model its first 126 tokens. So a 1 MB string costs
no more than a short paragraph.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tinydancer_duck.errors import InvalidArgument, ModelError

from ._ends import read_ends, whole_bytes
from ._onnx import OnnxEmbedder
from ._reading import known_tokens, unread_words
from ._vectors import embedding_matrix, l2_normalize, segment_sum
from ._wordpiece import (
    CACHE_LIMIT,
    CHARS_PER_TOKEN,
    Texts,
    Tokenizer,
    as_string_array,
    few_python_texts,
    flat_words,
    truncate,
)

__all__ = ["Embedder", "HashingEmbedder", "OnnxEmbedder", "StaticEmbedder", "embedding_matrix", "make_embedder"]


DATA = Path(__file__).resolve().parent.parent / "data"
STATIC_DIM = 256
STATIC_TABLE = DATA / f"static_minilm_l6_{STATIC_DIM}.npy"
#: Names the default table in the static embedder's identity. A store's vectors carry the identity of the embedder
#: that made them, so a new table needs a new name: "paraphrase-MiniLM-L3-v2" was the previous table's.
STATIC_NAME = "all-MiniLM-L6-v2-refit1"
#: The hashing embedder keeps a text's first MAX_TOKENS tokens (BERT's own limit); the static embedder counts a text
#: it reads whole up to MAX_TOKENS pieces (a count that reaches it is not the whole text's).
MAX_TOKENS = 512
#: The static embedder sums a text's first HEAD_TOKENS and last TAIL_TOKENS word pieces: instructions and questions
#: sit at the two ends of a long prompt. Chosen by measuring routing quality against speed (README "Embedders").
HEAD_TOKENS = 16
TAIL_TOKENS = 112
#: Texts are embedded in row blocks of this size, bounding temporaries whatever the input length.
CHUNK = 8192


@runtime_checkable
class Embedder(Protocol):
    """What the store and the router need from an embedder."""

    kind: str
    dim: int
    identity: str

    def embed(self, texts: Texts) -> np.ndarray:
        """Embed n texts; float32 C-contiguous (n, dim), unit rows, zero rows for NULL/blank texts."""
        ...


class StaticEmbedder:
    """Static token-table embedder (the default): ~100K+ short texts/s on 2 cores, no model runtime.

    table_path : .npy file of a (V, D) fp16/float32 table whose row i is WordPiece id i
    max_tokens : a text read whole is counted up to this many word pieces
    head_tokens, tail_tokens : a text's embedding sums its first head_tokens and last tail_tokens word pieces (all of
        them when it has no more)
    name : the table's name in ``identity``; defaults to STATIC_NAME for the packaged table and to the file's stem
        for any other, so vectors of different tables never pass for one another

    The identity does not name head_tokens and tail_tokens: they change the embeddings of long texts only (a text of
    at most head_tokens + tail_tokens pieces embeds the same at any setting), and a store's vectors are of short
    texts (capabilities, descriptions, examples, routes).
    """

    kind = "static"

    def __init__(self, table_path: Path | str = STATIC_TABLE, *, max_tokens: int = MAX_TOKENS,
                 head_tokens: int = HEAD_TOKENS, tail_tokens: int = TAIL_TOKENS, name: str | None = None) -> None:
        try:
            stored = np.load(table_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load static embedder table {table_path}: {exc}") from exc
        self.tokenizer = Tokenizer()
        if stored.ndim != 2 or stored.shape[0] != len(self.tokenizer.vocab.tokens):
            raise ModelError(f"static table {table_path} has shape {stored.shape}, expected (vocab size, D)")
        self.table = np.ascontiguousarray(stored, dtype=np.float32)  # fp16 on disk, float32 once at load
        self.stored_dtype = stored.dtype
        self.dim = int(self.table.shape[1])
        self.packaged = Path(table_path).resolve() == STATIC_TABLE.resolve()
        if name is None:
            name = STATIC_NAME if self.packaged else Path(table_path).stem
        self.identity = f"static:{name}:{self.dim}"
        self.max_tokens = max_tokens
        self.head_tokens, self.tail_tokens = head_tokens, tail_tokens

    def __reduce__(self) -> tuple[Callable[..., StaticEmbedder], tuple[Any, ...]]:
        """Pickle by identity, not by value: the packaged table (31 MB as float32) is named with its fingerprint and
        reloaded from the unpickling process's own package, which refuses another table; any other table travels
        in the dtype it was stored in (fp16 for built tables), so the float32 rows a worker sums are the same."""
        reading = (self.max_tokens, self.head_tokens, self.tail_tokens)
        if self.packaged:
            return _packaged_static, (self.identity, packaged_fingerprint(), *reading)
        return _static_from_table, (self.table.astype(self.stored_dtype), self.identity, *reading)

    def embed(self, texts: Texts) -> np.ndarray:
        return self.embed_counted(texts)[0]

    @property
    def read_bytes(self) -> int:
        """A text of at most this many bytes is read whole; a longer one only at its two ends, so its count is a
        lower bound, not its length in tokens."""
        return whole_bytes(self.head_tokens, self.tail_tokens)

    def embed_counted(self, texts: Texts) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings as :meth:`embed`, int (n,) WordPiece tokens per text, at most ``max_tokens``): the count
        comes free with the embedding and is a better tokens_in than the bytes (benchmarks/eval_token_counts.py).
        It is the whole text's count for a text of at most ``read_bytes`` bytes (and fewer than ``max_tokens``
        pieces), else the pieces of the ends read: ``tokens_from_bytes`` counts such a text by its bytes."""
        return self._embed(texts, read=False)[:2]

    def embed_read(self, texts: Texts) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`embed_counted`, plus how much of what it read of each text the table knows (:mod:`._reading`):
        float (n,) tokens known, and int (n,) tokens read in all (the pieces kept plus the words dropped as
        [UNK])."""
        return self._embed(texts, read=True)

    def _embed(self, texts: Texts, *, read: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(embeddings, token counts, known tokens, tokens read); the last two are zeros unless ``read``."""
        if few_python_texts(texts):
            ids, parents, kept, counted = read_ends(self.tokenizer, texts, self.head_tokens, self.tail_tokens)
            known, unread = self._reading(texts, ids, parents, len(kept), read)
            return (l2_normalize(segment_sum(self.table, ids, parents, kept)), np.minimum(counted, self.max_tokens),
                    known, kept + unread)
        arr = as_string_array(texts)
        out = np.empty((len(arr), self.dim), dtype=np.float32)
        tokens, unread, read_total = (np.zeros(len(arr), np.int64) for _ in range(3))
        known = np.zeros(len(arr))
        for start in range(0, len(arr), CHUNK):
            chunk = arr.slice(start, CHUNK)
            ids, parents, kept, counted = read_ends(self.tokenizer, chunk, self.head_tokens, self.tail_tokens)
            stop = start + len(kept)
            out[start:stop] = segment_sum(self.table, ids, parents, kept)
            tokens[start:stop] = np.minimum(counted, self.max_tokens)
            read_total[start:stop] = kept
            known[start:stop], unread[start:stop] = self._reading(chunk, ids, parents, len(kept), read)
        return l2_normalize(out), tokens, known, read_total + unread

    def _reading(self, texts: Texts, ids: np.ndarray, parents: np.ndarray, n: int, read: bool
                 ) -> tuple[np.ndarray, np.ndarray]:
        if not read:
            return np.zeros(n), np.zeros(n, np.int64)
        return (known_tokens(self.tokenizer, ids, parents, n),
                unread_words(self.tokenizer, texts, self.max_tokens * CHARS_PER_TOKEN))


_fingerprint: list[str] = []


def packaged_fingerprint() -> str:
    """blake2b of the packaged static table file, computed once per process (~20 ms)."""
    if not _fingerprint:
        _fingerprint.append(hashlib.blake2b(STATIC_TABLE.read_bytes(), digest_size=16).hexdigest())
    return _fingerprint[0]


def _packaged_static(identity: str, fingerprint: str, max_tokens: int, head_tokens: int = HEAD_TOKENS,
                     tail_tokens: int = TAIL_TOKENS) -> StaticEmbedder:
    """Unpickle a packaged-table embedder: this process's shared one, if its table is the same file and it reads
    the same (snapshots pickled before head_tokens and tail_tokens existed read as this version does)."""
    embedder = make_embedder("static")
    if embedder.identity != identity or packaged_fingerprint() != fingerprint:
        raise ModelError(f"this snapshot was made with the static table {identity} (fingerprint {fingerprint}), "
                         f"but this installation ships {embedder.identity} (fingerprint {packaged_fingerprint()}): "
                         "install the same tinydancer_duck version on every worker, or rebuild the snapshot")
    reading = (max_tokens, head_tokens, tail_tokens)
    if reading == (embedder.max_tokens, embedder.head_tokens, embedder.tail_tokens):
        return embedder
    other = copy.copy(embedder)
    other.max_tokens, other.head_tokens, other.tail_tokens = reading
    return other


def _static_from_table(table: np.ndarray, identity: str, max_tokens: int, head_tokens: int = HEAD_TOKENS,
                       tail_tokens: int = TAIL_TOKENS) -> StaticEmbedder:
    """Unpickle an embedder of a custom table shipped by value."""
    embedder = StaticEmbedder.__new__(StaticEmbedder)
    embedder.tokenizer = Tokenizer()
    embedder.table = np.ascontiguousarray(table, dtype=np.float32)
    embedder.stored_dtype = table.dtype
    embedder.dim = int(table.shape[1])
    embedder.packaged = False
    embedder.identity = identity
    embedder.max_tokens = max_tokens
    embedder.head_tokens, embedder.tail_tokens = head_tokens, tail_tokens
    return embedder


class HashingEmbedder:
    """Signed feature hashing of word unigrams and character 3/4-grams of ``<word>``; keyword overlap only.

    dim : output dimension D
    """

    kind = "hashing"

    def __init__(self, dim: int = 512, *, max_tokens: int = MAX_TOKENS) -> None:
        if not isinstance(dim, int) or dim < 1:
            raise InvalidArgument("dim", dim, "expected a positive integer")
        self.dim = dim
        self.identity = f"hashing:crc32-w1-c34:{dim}"
        self.max_tokens = max_tokens
        self._cache: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**vars(self), "_cache": {}}  # a cache, not state: workers refill their own

    def word_vector(self, word: str) -> np.ndarray:
        """Hashed features of one word; float32 (dim,), cached."""
        vec = self._cache.get(word)
        if vec is None:
            vec = np.zeros(self.dim, dtype=np.float32)
            _add_feature(vec, "w:" + word, 1.0)
            padded = f"<{word}>"
            grams = [padded[i : i + n] for n in (3, 4) for i in range(len(padded) - n + 1)]
            for gram in grams:  # char n-grams share one unit of weight, so long words do not dominate
                _add_feature(vec, "c:" + gram, 1.0 / np.sqrt(len(grams)))
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[word] = vec
        return vec

    def embed(self, texts: Texts) -> np.ndarray:
        arr = as_string_array(texts)
        out = np.empty((len(arr), self.dim), dtype=np.float32)
        for start in range(0, len(arr), CHUNK):
            chunk = arr.slice(start, CHUNK)
            words, parents = flat_words(chunk, self.max_tokens * CHARS_PER_TOKEN)
            encoded = words.dictionary_encode()
            ids, parents, counts = truncate(encoded.indices.to_numpy(), parents, len(chunk), self.max_tokens)
            uniques = encoded.dictionary.to_pylist()
            table = np.stack([self.word_vector(w) for w in uniques]) if uniques else np.zeros((1, self.dim), "f4")
            out[start : start + len(counts)] = segment_sum(table, ids, parents, counts)
        return l2_normalize(out)


def _add_feature(vec: np.ndarray, feature: str, weight: float) -> None:
    data = feature.encode("utf-8")
    h = zlib.crc32(data)
    sign = 1.0 if zlib.crc32(data, 0x9E3779B9) & 1 else -1.0
    vec[h % len(vec)] += sign * weight


EMBEDDERS: dict[str, Callable[[], Any]] = {
    "static": StaticEmbedder,
    "onnx": OnnxEmbedder,
    "hashing": HashingEmbedder,
}
_shared: dict[str, Embedder] = {}
_shared_lock = threading.Lock()


def make_embedder(kind: str = "static") -> Embedder:
    """Return the process-wide embedder of this kind ("static", "onnx" or "hashing"); built on first use.

    raises : InvalidArgument("embedder", kind, ...) for an unknown kind; ModelError if the model cannot load
    """
    factory = EMBEDDERS.get(kind) if isinstance(kind, str) else None
    if factory is None:
        raise InvalidArgument("embedder", kind, f"expected one of {', '.join(EMBEDDERS)}")
    with _shared_lock:
        embedder = _shared.get(kind)
        if embedder is None:
            embedder = _shared[kind] = factory()
        return embedder
