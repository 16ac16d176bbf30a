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

WORD, SEPARATOR, SINGLE, UNKNOWN, CONTINUED = 0, 1, 2, 3, 4
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


def byte_table() -> np.ndarray:
    """uint8 (256,): the class of each ASCII byte, UNKNOWN for the bytes of multi-byte characters (learned once)."""
    with _lock:
        if _ASCII[0] == UNKNOWN:
            _ASCII[:] = _learn(list(range(128)))
    return np.concatenate([_ASCII, np.full(128, UNKNOWN, np.uint8)])


def _byte_classes(data: np.ndarray) -> np.ndarray:
    """The class of every byte of valid UTF-8: an ASCII byte's own (one table lookup), and for a multi-byte
    character its class on every one of its bytes, except that the later bytes of a SINGLE character are CONTINUED
    (they neither start a token nor join a word). Only the (few) multi-byte characters are decoded."""
    cls = byte_table()[data]
    if not len(data) or data.max() < 0x80:
        return cls
    lead = np.flatnonzero(data >= 0xC0)
    first = data[lead].astype(np.int64)
    size = np.where(first < 0xE0, 2, np.where(first < 0xF0, 3, 4))
    last = len(data) - 1
    b1, b2, b3 = (data[np.minimum(lead + k, last)].astype(np.int64) & 0x3F for k in (1, 2, 3))
    cp = np.where(size == 2, ((first & 0x1F) << 6) | b1,
                  np.where(size == 3, ((first & 0x0F) << 12) | (b1 << 6) | b2,
                           ((first & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3))
    others, inverse = np.unique(cp, return_inverse=True)
    with _lock:
        new = [c for c in others.tolist() if c not in _OTHER]
        if new:
            _OTHER.update(zip(new, _learn(new)))
        values = np.array([_OTHER[c] for c in others.tolist()], np.uint8)
    char_cls = values[inverse]
    cls[lead] = char_cls
    later = np.where(char_cls == SINGLE, CONTINUED, char_cls)
    for k in (1, 2, 3):
        more = size > k
        cls[lead[more] + k] = later[more]
    return cls


def split_flat(texts: pa.Array, max_chars: int) -> tuple[pa.Array, np.ndarray]:
    """:func:`flat_words` (lowercased words and single characters of n texts, and each word's text), in numpy.

    A token starts at a SINGLE character and at a word byte whose previous byte is not a word byte of the same
    text; the tokens' bytes are every byte but the separators', in order, so each token ends where the next begins.
    """
    if len(texts) and _max_bytes(texts) > max_chars:
        texts = pc.utf8_slice_codeunits(texts, 0, max_chars)
    if texts.null_count:
        texts = texts.fill_null("")
    lowered = pc.utf8_lower(texts)
    offsets = _offsets(lowered).astype(np.int64)
    buffer = lowered.buffers()[2]
    data = np.frombuffer(buffer, np.uint8)[offsets[0]:offsets[-1]] if buffer is not None else np.zeros(0, np.uint8)
    offsets = offsets - offsets[0]
    cls = _byte_classes(data)
    if (cls == UNKNOWN).any():
        return flat_words(texts, max_chars)
    word = cls == WORD
    start = cls == SINGLE
    if len(data):
        start[0] |= word[0]
        start[1:] |= word[1:] & ~word[:-1]
        text_starts = offsets[:-1][np.diff(offsets) > 0]
        start[text_starts] |= word[text_starts]  # a word never continues the previous text's last word
    kept = cls != SEPARATOR
    token_bytes = data[kept]
    new_offsets = np.empty(int(start.sum()) + 1, np.int32)
    new_offsets[:-1] = np.flatnonzero(start[kept])
    new_offsets[-1] = len(token_bytes)
    words = pa.StringArray.from_buffers(len(new_offsets) - 1, pa.py_buffer(new_offsets), pa.py_buffer(token_bytes))
    per_text = np.diff(np.searchsorted(np.flatnonzero(start), offsets))
    return words, np.repeat(np.arange(len(per_text), dtype=np.intp), per_text)
