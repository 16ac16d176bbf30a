"""Word splitting on the UTF-8 bytes in numpy: the same words as :func:`flat_words`, without a regex per call.

Why: pyarrow compiles the Unicode split regex on every call (~2 ms), which DuckDB's 2048-row UDF calls paid each
time: a fixed cost per call that made SQL routing ~35% slower per row than 8192-row batches. The regex split is a
per-character rule (a character is part of a word, a separator, or a token of its own), so each character's class
is learned once from the Arrow path itself (``"a" + c + "b"`` through :func:`flat_words`) and cached; the split is
then a few vectorized passes over the lowercased bytes. A character the Arrow path does not treat as one of the
three classes sends the whole batch to :func:`flat_words`, so the words are always the Arrow path's words.
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._wordpiece import _max_bytes, _offsets, flat_words

WORD, SEPARATOR, SINGLE, UNKNOWN = 0, 1, 2, 3
#: class of each ASCII code point, filled on first use; non-ASCII code points in _OTHER as they are met
_ASCII = np.full(128, UNKNOWN, np.uint8)
_OTHER: dict[int, int] = {}
_lock = threading.Lock()


def _learn(codepoints: list[int]) -> list[int]:
    """The class of each code point, as the Arrow split treats it between two letters."""
    probes = pa.array(["a" + chr(c) + "b" for c in codepoints], pa.string())
    words, parents = flat_words(probes, 1 << 20)
    found: list[list[str]] = [[] for _ in codepoints]
    for word, parent in zip(words.to_pylist(), parents.tolist()):
        found[parent].append(word)
    out = []
    for c, got in zip(codepoints, found):
        lowered = chr(c).lower()
        if got == ["a" + lowered + "b"]:
            out.append(WORD)
        elif got == ["a", "b"]:
            out.append(SEPARATOR)
        elif got == ["a", lowered, "b"]:
            out.append(SINGLE)
        else:
            out.append(UNKNOWN)
    return out


def _char_classes(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(byte position, byte length, class) of every character of valid UTF-8 bytes; ASCII bytes need one lookup,
    only the (few) multi-byte characters are decoded."""
    with _lock:
        if _ASCII[0] == UNKNOWN:
            _ASCII[:] = _learn(list(range(128)))
    table = np.concatenate([_ASCII, np.full(128, UNKNOWN, np.uint8)])
    if not len(data) or data.max() < 0x80:
        return np.arange(len(data)), np.ones(len(data), np.int64), table[data]
    pos = np.flatnonzero((data & 0xC0) != 0x80)
    size = np.diff(np.r_[pos, len(data)])
    first = data[pos]
    cls = table[first]
    multi = np.flatnonzero(first >= 0x80)
    lead = pos[multi]
    last = len(data) - 1
    b0, b1, b2, b3 = (data[np.minimum(lead + k, last)].astype(np.int64) for k in range(4))
    n = size[multi]
    cp = np.where(n == 2, ((b0 & 0x1F) << 6) | (b1 & 0x3F),
                  np.where(n == 3, ((b0 & 0x0F) << 12) | ((b1 & 0x3F) << 6) | (b2 & 0x3F),
                           ((b0 & 0x07) << 18) | ((b1 & 0x3F) << 12) | ((b2 & 0x3F) << 6) | (b3 & 0x3F)))
    others, inverse = np.unique(cp, return_inverse=True)
    with _lock:
        new = [c for c in others.tolist() if c not in _OTHER]
        if new:
            _OTHER.update(zip(new, _learn(new)))
        values = np.array([_OTHER[c] for c in others.tolist()], np.uint8)
    cls[multi] = values[inverse]
    return pos, size, cls


def split_flat(texts: pa.Array, max_chars: int) -> tuple[pa.Array, np.ndarray]:
    """:func:`flat_words` (lowercased words and single characters of n texts, and each word's text), in numpy."""
    if len(texts) and _max_bytes(texts) > max_chars:
        texts = pc.utf8_slice_codeunits(texts, 0, max_chars)
    if texts.null_count:
        texts = texts.fill_null("")
    lowered = pc.utf8_lower(texts)
    offsets = _offsets(lowered).astype(np.int64)
    buffer = lowered.buffers()[2]
    data = np.frombuffer(buffer, np.uint8)[offsets[0]:offsets[-1]] if buffer is not None else np.zeros(0, np.uint8)
    offsets = offsets - offsets[0]
    pos, size, cls = _char_classes(data)
    if (cls == UNKNOWN).any():
        return flat_words(texts, max_chars)
    text_start = np.zeros(len(data) + 1, bool)
    text_start[offsets[:-1]] = True  # a character's neighbour only counts when it belongs to the same text
    word = cls == WORD
    joins_prev = np.zeros(len(pos), bool)
    joins_prev[1:] = word[1:] & word[:-1]
    joins_prev &= ~text_start[pos]
    starts = np.flatnonzero((cls == SINGLE) | (word & ~joins_prev))
    begin = pos[starts]
    # the words' bytes are every byte but the separators', in order; each word ends where the next one begins
    # or where the separators before it start
    kept = cls != SEPARATOR
    byte_kept = kept if len(pos) == len(data) else np.repeat(kept, size)
    before = np.cumsum(byte_kept, dtype=np.int32) - byte_kept  # kept bytes before each byte
    new_offsets = np.empty(len(begin) + 1, np.int32)
    new_offsets[:-1] = before[begin]
    new_offsets[-1] = int(before[-1] + byte_kept[-1]) if len(data) else 0
    words = pa.StringArray.from_buffers(len(begin), pa.py_buffer(new_offsets), pa.py_buffer(data[byte_kept]))
    per_text = np.diff(np.searchsorted(begin, offsets))
    return words, np.repeat(np.arange(len(per_text), dtype=np.intp), per_text)
