"""What the static embedder reads of a text: its first ``head`` and last ``tail`` word pieces.

Why: real LLM prompts are long (RouterBench's average 1.6 KB, few-shot), and the instruction and the question sit at
their two ends; tokenizing and summing up to 512 pieces of each made a long prompt 11-17x dearer to route than a short
query, for no measured gain in routing quality (README "Embedders": the policy and the measurements that chose it).

How: a text no longer than the two windows (``(head + tail) * BYTES_PER_PIECE`` bytes) is tokenized whole, and its
first ``head`` and last ``tail`` pieces are kept (all of them when it has no more). A longer text is read in two
windows only: its first ``head * BYTES_PER_PIECE`` and last ``tail * BYTES_PER_PIECE`` bytes, each cut to a character
boundary. A window's inner edge may cut a word in two, so the token at that edge is dropped unless a byte on either
side of the edge is an ASCII space or punctuation mark. Every other token of a window is split exactly as in the
whole text (the split is a rule on each character and its neighbours, and WordPiece works word by word), so the
pieces kept are the whole text's first ``head`` and last ``tail`` whenever the windows hold that many. A text whose
windows hold fewer (long words, runs of spaces) is read once more with windows of CHARS_PER_TOKEN bytes a piece, the
tokenizer's bound on reading; past that its pieces are those its windows hold, so a 1 MB string costs no more than a
short paragraph.

Counting: a text read whole has all its pieces counted; a text read in windows only those of its windows, a lower
bound (``tokens_from_bytes`` counts such a text by its bytes).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa

from ._split import WORD, byte_table, split_flat
from ._wordpiece import CHARS_PER_TOKEN, Tokenizer, _offsets, as_string_array

#: Bytes a window allows per piece it must yield. Text runs 3.5-5 bytes a piece: at 6 the windows of every RouterBench
#: prompt and of 2 KB documents of CLINC150 or Banking77 requests held enough pieces on the first read, and those of
#: 1-2% of 2 KB chunks of Python source (at 5: up to 10% of the English documents were read twice).
BYTES_PER_PIECE = 6
WHOLE, HEAD, TAIL = 0, 1, 2


class Reading(NamedTuple):
    """The pieces a text's embedding sums, and how many pieces of it were counted.

    ids : int32 (t,), the kept pieces in text order (first ``head`` then last ``tail``)
    parents : intp (t,), non-decreasing text index of each kept piece
    kept : intp (n,), pieces kept per text (at most head + tail)
    counted : intp (n,), pieces counted per text: all of a text read whole, those of its windows otherwise
    """

    ids: np.ndarray
    parents: np.ndarray
    kept: np.ndarray
    counted: np.ndarray


def whole_bytes(head: int, tail: int, bytes_per_piece: int = BYTES_PER_PIECE) -> int:
    """A text of at most this many bytes is tokenized whole (so its count is the whole text's)."""
    return (head + tail) * bytes_per_piece


def read_ends(tokenizer: Tokenizer, texts: pa.Array | list[str | None], head: int, tail: int) -> Reading:
    """The first ``head`` and last ``tail`` word pieces of each of n texts (see the module docstring).

    texts : Arrow string array of length n, or a list of str/None
    """
    limit = whole_bytes(head, tail)
    if isinstance(texts, list) and all(t is None or len(t) * 4 <= limit or len(t.encode()) <= limit for t in texts):
        return _whole(tokenizer, texts, head, tail, limit)
    texts = as_string_array(texts)
    offsets = _offsets(texts).astype(np.int64)
    lengths = np.diff(offsets)
    if texts.null_count:
        lengths[~texts.is_valid().to_numpy(zero_copy_only=False)] = 0
    if not len(texts) or lengths.max() <= limit:
        return _whole(tokenizer, texts, head, tail, limit)
    first, short = _windowed(tokenizer, texts, offsets, lengths, head, tail, BYTES_PER_PIECE)
    if not len(short):
        return first
    again, _ = _windowed(tokenizer, texts.take(pa.array(short)), None, lengths[short], head, tail, CHARS_PER_TOKEN)
    return _replace(first, short, again)


def _whole(tokenizer: Tokenizer, texts: pa.Array | list[str | None], head: int, tail: int, limit: int) -> Reading:
    """Texts of at most ``limit`` bytes: every piece (a text has at most one piece per byte), then the ends kept."""
    ids, parents, counts = tokenizer.tokenize(texts, limit)
    if not len(counts) or counts.max() <= head + tail:  # short texts keep every piece: the same ids as before
        return Reading(ids, parents, counts, counts)
    n = len(counts)
    keep = _ends_mask(parents, counts, np.full(n, head), np.full(n, tail))
    return Reading(ids[keep], parents[keep], np.minimum(counts, head + tail), counts)


def _ends_mask(parents: np.ndarray, counts: np.ndarray, head: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """bool (t,): piece j of its group is kept when among the group's first head[g] or last tail[g] pieces.

    parents : intp (t,), non-decreasing group per piece; counts : (m,) pieces per group; head, tail : (m,) ints
    """
    first = np.cumsum(counts) - counts
    at = np.arange(len(parents)) - first[parents]
    return (at < head[parents]) | (at >= (counts - tail)[parents])


def _windowed(tokenizer: Tokenizer, texts: pa.Array, offsets: np.ndarray | None, lengths: np.ndarray, head: int,
              tail: int, bytes_per_piece: int) -> tuple[Reading, np.ndarray]:
    """Read each text whole or in its two windows; also the texts whose windows held too few pieces.

    offsets : the texts' int64 offsets (None: taken from ``texts``); lengths : int64 (n,), bytes per text (0 for NULL)
    """
    if offsets is None:
        offsets = _offsets(texts).astype(np.int64)
    n, data = len(texts), _data(texts)
    seg_text, kind, starts, ends = _segments(data, offsets, lengths, head * bytes_per_piece, tail * bytes_per_piece)
    m = len(seg_text)
    words, word_seg = split_flat(_gathered(data, starts, ends), 1 << 62)
    ids, piece_seg = tokenizer.piece_ids(words, word_seg, keep=~_cut_edges(data, kind, starts, ends, word_seg))
    found = np.bincount(piece_seg, minlength=m)
    keep = _ends_mask(piece_seg, found, np.where(kind == TAIL, 0, head), np.where(kind == HEAD, 0, tail))
    ids, parents = ids[keep], seg_text[piece_seg[keep]]
    kept = np.bincount(parents, minlength=n).astype(np.intp)
    counted = np.bincount(seg_text, weights=found, minlength=n).astype(np.intp)
    too_few = ((kind == HEAD) & (found < head)) | ((kind == TAIL) & (found < tail))
    return Reading(ids, parents, kept, counted), np.unique(seg_text[too_few])


def _segments(data: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, head_bytes: int, tail_bytes: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The byte ranges to read: one (WHOLE) per text of at most head_bytes + tail_bytes bytes, else a HEAD and a
    TAIL window, cut back to character boundaries; (text, kind, start, end) per segment, a text's in order."""
    split = lengths > head_bytes + tail_bytes
    per_text = 1 + split
    seg_text = np.repeat(np.arange(len(lengths)), per_text)
    first_seg = np.cumsum(per_text) - per_text
    kind = np.full(len(seg_text), WHOLE, np.int8)
    kind[first_seg[split]] = HEAD
    kind[first_seg[split] + 1] = TAIL
    starts = offsets[:-1][seg_text].copy()
    ends = starts + lengths[seg_text]
    is_head, is_tail = kind == HEAD, kind == TAIL
    ends[is_head] = _boundary(data, starts[is_head] + head_bytes, -1)
    starts[is_tail] = _boundary(data, ends[is_tail] - tail_bytes, +1)
    return seg_text, kind, starts, ends


def _cut_edges(data: np.ndarray, kind: np.ndarray, starts: np.ndarray, ends: np.ndarray, word_seg: np.ndarray
               ) -> np.ndarray:
    """bool per word: the token at a window's inner edge, where a word may run across the edge (then it may be a
    piece of a longer word of the whole text, and is not read)."""
    per_seg = np.bincount(word_seg, minlength=len(kind))
    word_first = np.cumsum(per_seg) - per_seg
    heads = np.flatnonzero((kind == HEAD) & (per_seg > 0))
    tails = np.flatnonzero((kind == TAIL) & (per_seg > 0))
    head_cut = _may_join(data[ends[heads] - 1]) & _may_join(data[ends[heads]])
    tail_cut = _may_join(data[starts[tails]]) & _may_join(data[starts[tails] - 1])
    cut = np.zeros(len(word_seg), bool)
    cut[(word_first + per_seg - 1)[heads[head_cut]]] = True
    cut[word_first[tails[tail_cut]]] = True
    return cut


def _may_join(edge: np.ndarray) -> np.ndarray:
    """bool: a byte on either side of a window's edge may be part of a word running across it (a word byte, or any
    byte of a multi-byte character, which is not decoded here); when both are, the edge token is dropped."""
    return (edge >= 0x80) | (byte_table()[edge] == WORD)


def _data(texts: pa.Array) -> np.ndarray:
    """uint8 view of a string array's value bytes (positions as its offsets give them)."""
    buffer = texts.buffers()[2]
    return np.frombuffer(buffer, np.uint8) if buffer is not None else np.zeros(0, np.uint8)


def _boundary(data: np.ndarray, at: np.ndarray, step: int) -> np.ndarray:
    """Move each byte position off UTF-8 continuation bytes (at most 3), backwards (-1) or forwards (+1), so a
    window ends or starts between two characters."""
    at = at.copy()
    if not len(data):
        return at
    for _ in range(3):
        inside = ((data[np.minimum(at, len(data) - 1)] & 0xC0) == 0x80) & (at < len(data))
        if not inside.any():
            break
        at += step * inside
    return at


def _gathered(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """One string array of the byte ranges [starts[i], ends[i]) of ``data``."""
    lengths = ends - starts
    offsets = np.zeros(len(lengths) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    view = memoryview(data)
    joined = b"".join([view[s:e] for s, e in zip(starts.tolist(), ends.tolist())])
    return pa.StringArray.from_buffers(len(lengths), pa.py_buffer(offsets), pa.py_buffer(joined))


def _replace(first: Reading, rows: np.ndarray, again: Reading) -> Reading:
    """``first`` with the texts ``rows`` read again (``again`` holds them in that order)."""
    stays = ~np.isin(first.parents, rows)
    ids = np.concatenate([first.ids[stays], again.ids])
    parents = np.concatenate([first.parents[stays], rows[again.parents]])
    order = np.argsort(parents, kind="stable")
    kept, counted = first.kept.copy(), first.counted.copy()
    kept[rows], counted[rows] = again.kept, again.counted
    return Reading(ids[order], parents[order], kept, counted)
