"""BERT-style WordPiece tokenization, vectorized with pyarrow compute.

Why this shape: a Python tokenizer runs at ~10K texts/s, far below the static embedder's 100K texts/s target. Most
words of real text are whole-word entries of the WordPiece vocabulary, so we lowercase and split in Arrow, look every
word up in a word-level table with one ``index_in`` call, and run greedy WordPiece in Python only for the words that
are not found -- each such word once, thanks to a cache.

Splitting follows BERT's basic tokenizer closely enough for a static embedder: lowercase, runs of letters, digits and
combining marks form words; every other non-space character (punctuation, symbols) and every Han ideograph is a token
of its own. Accents are stripped (NFD, drop combining marks) only for words not found as they are, which costs
nothing for plain ASCII text.

Truncation: :meth:`Tokenizer.tokenize` cuts a text to its first ``max_tokens`` WordPiece tokens (and, before
splitting, to its first ``max_tokens * CHARS_PER_TOKEN`` characters, so a 1 MB string never becomes a million-element
list). The static embedder reads a text's first and last pieces instead (``_ends``), with the same bound.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.errors import InvalidArgument

VOCAB_PATH = Path(__file__).resolve().parent.parent / "data" / "bert-base-uncased-vocab.txt"
#: Characters kept per allowed token before splitting: English runs ~4.5 characters a token, so the first max_tokens
#: tokens of a real text fit (no text of the shared datasets embeds differently than at 32, measured); a text past it
#: is counted by its bytes. At 32, a log whose 1% of requests were 200 KB routed 1.6x slower (8 KB split each).
CHARS_PER_TOKEN = 16
#: BERT's basic tokenizer maps words longer than this to [UNK].
MAX_WORD_CHARS = 100
#: Unseen-word cache bound; the cache is cleared when it is full, which keeps memory flat on adversarial input.
CACHE_LIMIT = 200_000

_SPLIT_PATTERN = r"([^\p{L}\p{N}\p{M}\s]|\p{Han})"
#: The same split for ASCII text, where letters/digits are [A-Za-z0-9] and RE2's \s is [\t\n\f\r ].
_ASCII_SPLIT = re.compile(r"([^A-Za-z0-9\t\n\f\r ])")
#: Batches up to this many texts, all ASCII, are tokenized in Python: pyarrow compiles the Unicode split regex
#: (~2 ms) and hashes the 30K-word table (~1.2 ms) on every call, which dominates a one-request route.
SMALL_BATCH = 16
_EMPTY_IDS = np.zeros(0, dtype=np.int32)


@dataclass(frozen=True)
class Vocab:
    """A WordPiece vocabulary.

    tokens : list of str, the vocabulary in id order
    index : dict token -> id, including ``##`` continuation pieces
    words : pa.Array of string, the whole-word entries (no ``##`` prefix, no ``[special]`` tokens)
    word_ids : int32 array of shape (len(words),), the id of each entry of ``words``
    """

    tokens: list[str]
    index: dict[str, int]
    words: pa.Array
    word_ids: np.ndarray

    @property
    def unk_id(self) -> int:
        return self.index["[UNK]"]

    @property
    def cls_id(self) -> int:
        return self.index["[CLS]"]

    @property
    def sep_id(self) -> int:
        return self.index["[SEP]"]

    @property
    def pad_id(self) -> int:
        return self.index["[PAD]"]


@lru_cache(maxsize=4)
def load_vocab(path: Path = VOCAB_PATH) -> Vocab:
    """Read a WordPiece vocabulary file (one token a line, id = line number); cached per path."""
    tokens = Path(path).read_text(encoding="utf-8").split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    index = {tok: i for i, tok in enumerate(tokens)}
    whole = [
        (tok, i)
        for i, tok in enumerate(tokens)
        if not tok.startswith("##") and not (tok.startswith("[") and tok.endswith("]") and len(tok) > 2)
    ]
    words = pa.array([w for w, _ in whole], type=pa.string())
    word_ids = np.array([i for _, i in whole], dtype=np.int32)
    return Vocab(tokens=tokens, index=index, words=words, word_ids=word_ids)


def strip_accents(word: str) -> str:
    """NFD-decompose and drop combining marks, as BERT's uncased tokenizer does."""
    decomposed = unicodedata.normalize("NFD", word)
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


def wordpiece(word: str, index: dict[str, int], unk_id: int) -> list[int]:
    """Greedy longest-match-first WordPiece of one word (already lowercased); ``[unk_id]`` if it cannot be split."""
    if len(word) > MAX_WORD_CHARS:
        return [unk_id]
    ids: list[int] = []
    start = 0
    while start < len(word):
        end = len(word)
        found = -1
        while start < end:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            found = index.get(piece, -1)
            if found >= 0:
                break
            end -= 1
        if found < 0:
            return [unk_id]
        ids.append(found)
        start = end
    return ids


def few_python_texts(texts: Any) -> bool:
    """A list of at most SMALL_BATCH str/None (a one-request call): tokenized from the Python values directly,
    since building an Arrow array and running Arrow kernels on one short text costs more than tokenizing it."""
    return isinstance(texts, list) and len(texts) <= SMALL_BATCH and all(
        t is None or isinstance(t, str) for t in texts)


#: Texts as every embedder takes them: an Arrow string column or a sequence of str / None.
Texts = pa.Array | pa.ChunkedArray | Sequence[str | None]


def as_string_array(texts: Texts) -> pa.Array:
    """Normalize the accepted text inputs to one Arrow string (or large_string) array."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    if isinstance(texts, (str, bytes)):
        raise InvalidArgument("texts", texts, "expected a sequence or Arrow array of strings, not one string")
    if not isinstance(texts, pa.Array):
        texts = pa.array(list(texts), type=pa.string())
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        texts = texts.cast(pa.string())
    return texts


def split_words(texts: pa.Array, max_chars: int) -> pa.Array:
    """Lowercase and split each text into words and single punctuation characters.

    texts : Arrow string array of length n (NULLs allowed)
    returns : Arrow list<string> array of length n
    """
    if len(texts) and _max_bytes(texts) > max_chars:
        texts = pc.utf8_slice_codeunits(texts, 0, max_chars)
    lowered = pc.utf8_lower(texts)
    spaced = pc.replace_substring_regex(lowered, _SPLIT_PATTERN, r" \1 ")
    return pc.utf8_split_whitespace(spaced)


def flat_words(texts: pa.Array, max_chars: int) -> tuple[pa.Array, np.ndarray]:
    """All words of n texts in order, without empty strings.

    returns : (words, Arrow string array of length m; parents, intp array of shape (m,), the text of each word)
    """
    nested = split_words(texts, max_chars)
    words = pc.list_flatten(nested)
    parents = pc.list_parent_indices(nested).to_numpy().astype(np.intp, copy=False)
    # utf8_split_whitespace yields "" around leading/trailing spaces (which the punctuation padding adds).
    nonempty = np.diff(_offsets(words)) > 0
    if not nonempty.all():
        words, parents = words.filter(pa.array(nonempty)), parents[nonempty]
    return words, parents


def _offsets(texts: pa.Array) -> np.ndarray:
    offsets_type = np.int64 if pa.types.is_large_string(texts.type) else np.int32
    return np.frombuffer(texts.buffers()[1], dtype=offsets_type)[texts.offset : texts.offset + len(texts) + 1]


def _max_bytes(texts: pa.Array) -> int:
    return int(np.diff(_offsets(texts)).max())


def truncate(
    ids: np.ndarray, parents: np.ndarray, n: int, max_tokens: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the first max_tokens tokens of each text.

    ids : array of shape (t,); parents : intp array of shape (t,), non-decreasing text index per token
    returns : (ids, parents, counts intp (n,)) after truncation
    """
    counts = np.bincount(parents, minlength=n).astype(np.intp, copy=False)
    if len(ids) and counts.max() > max_tokens:
        starts = np.cumsum(counts) - counts
        keep = np.arange(len(ids)) - starts[parents] < max_tokens
        ids, parents = ids[keep], parents[keep]
        counts = np.minimum(counts, max_tokens)
    return ids, parents, counts


class Tokenizer:
    """Turns a batch of texts into flat WordPiece ids grouped by text.

    Not thread-safe only in the benign sense: two threads may both fill the same cache entry.
    """

    def __init__(self, vocab: Vocab | None = None) -> None:
        self.vocab = vocab if vocab is not None else load_vocab()
        self._cache: dict[str, np.ndarray] = {}
        self._words: dict[str, int] | None = None

    def unseen_word(self, word: str) -> np.ndarray:
        """WordPiece ids (int32) of a word missing from the word table; [UNK]-only words give no ids."""
        ids = self._cache.get(word)
        if ids is None:
            vocab = self.vocab
            plain = strip_accents(word)
            pieces = wordpiece(plain, vocab.index, vocab.unk_id) if plain else []
            ids = np.array([i for i in pieces if i != vocab.unk_id], dtype=np.int32) if pieces else _EMPTY_IDS
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[word] = ids
        return ids

    def tokenize(self, texts: pa.Array | list[str | None], max_tokens: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tokenize n texts.

        texts : Arrow string array of length n, or a list of str/None (see :func:`few_python_texts`)
        returns : (ids int32 (t,), parents intp (t,), counts intp (n,)) -- token ids in text order, the text each
            token belongs to (non-decreasing), and the number of tokens per text after truncation to max_tokens.
            NULL, empty and whitespace-only texts have count 0.
        """
        n = len(texts)
        if n <= SMALL_BATCH:
            small = self._tokenize_small(texts if isinstance(texts, list) else texts.to_pylist(), max_tokens)
            if small is not None:
                return small
        from ._split import split_flat  # it learns character classes from flat_words: imported here, not above

        if isinstance(texts, list):
            texts = pa.array(texts, pa.string())
        ids, parents = self.piece_ids(*split_flat(texts, max_tokens * CHARS_PER_TOKEN))
        return truncate(ids, parents, n, max_tokens)

    def piece_ids(self, words: pa.Array, parents: np.ndarray, keep: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """The WordPiece ids of split words, in order.

        words : Arrow string array (m,) of lowercased words; parents : intp (m,), each word's text
        keep : optional bool (m,), the words to use (the others give no ids)
        returns : (ids int32 (t,), parents intp (t,)), each id's text
        """
        # the chunk's distinct words against the word table: index_in would hash the 30K-word table every call
        encoded = words.dictionary_encode()
        codes = encoded.indices.to_numpy() if len(words) else np.zeros(0, np.int32)
        if keep is not None:
            codes, parents = codes[keep], parents[keep]
        first, lens, start, pieces = self._distinct_pieces(encoded.dictionary)
        ids = first[codes]
        per_word = lens[codes]
        odd = np.flatnonzero(per_word != 1)  # words of 0 ([UNK]) or several pieces: few, so handled apart
        if not len(odd):
            return ids, parents
        ids, parents = np.repeat(ids, per_word), np.repeat(parents, per_word)
        odd_lens = per_word[odd]
        shift = np.cumsum(odd_lens - 1) - (odd_lens - 1)  # pieces the earlier odd words added (or removed)
        several = odd_lens > 1
        k = odd_lens[several]
        within = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
        source = np.repeat(start[codes[odd[several]]], k) + within
        ids[np.repeat((odd + shift)[several], k) + within] = pieces[source]
        return ids, parents

    def _distinct_pieces(self, dictionary: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each distinct word's pieces: (first int32 (d,) its first piece or 0, lens intp (d,) its number of pieces,
        start intp (d,) where its pieces begin in ``pieces``, pieces int32 (p,)): a word of the word table is one
        piece; any other is split by WordPiece once (and cached across calls)."""
        index = self.vocab_words
        found = np.array([index.get(w, -1) for w in dictionary.to_pylist()], np.int64)
        first = np.maximum(found, 0).astype(np.int32)
        lens = np.ones(len(found), np.intp)
        start = np.zeros(len(found), np.intp)
        missing = np.flatnonzero(found < 0)
        if not len(missing):
            return first, lens, start, _EMPTY_IDS
        split = [self.unseen_word(w) for w in dictionary.take(pa.array(missing)).to_pylist()]
        lens[missing] = [len(p) for p in split]
        first[missing] = [p[0] if len(p) else 0 for p in split]
        start[missing] = np.cumsum(lens[missing]) - lens[missing]
        return first, lens, start, np.concatenate(split)

    def _tokenize_small(self, values: list[str | None], max_tokens: int
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """:meth:`tokenize` for a few ASCII texts, in Python; None when a text is not ASCII (use Arrow then).

        Gives exactly the Arrow path's ids: same truncation, split, word table and unseen-word handling.
        """
        if not all(v is None or v.isascii() for v in values):
            return None
        index = self.vocab_words
        ids: list[int] = []
        parents: list[int] = []
        counts: list[int] = []
        max_chars = max_tokens * CHARS_PER_TOKEN
        for row, text in enumerate(values):  # at most SMALL_BATCH rows
            start = len(ids)
            if text:
                for word in _ASCII_SPLIT.sub(r" \1 ", text[:max_chars].lower()).split():
                    found = index.get(word)
                    if found is not None:
                        ids.append(found)
                    else:
                        ids.extend(self.unseen_word(word).tolist())
                del ids[start + max_tokens:]  # the text's first max_tokens tokens, as truncate() keeps
            counts.append(len(ids) - start)
            parents.extend([row] * counts[-1])
        return np.array(ids, dtype=np.int32), np.array(parents, dtype=np.intp), np.array(counts, dtype=np.intp)

    @property
    def vocab_words(self) -> dict[str, int]:
        """Whole-word entries of the vocabulary -> token id (built once)."""
        if self._words is None:
            self._words = dict(zip(self.vocab.words.to_pylist(), self.vocab.word_ids.tolist()))
        return self._words
