"""How much of a request the static embedder can read: the tokens it knows as whole words, out of all of them.

A request embeds as the mean of its tokens' vectors, so a text the vocabulary does not cover still gets a vector
(or none at all) that means nothing: emoji and most other scripts are [UNK] and dropped ('🙂🙂🙂' embeds as zeros),
Cyrillic or Spanish words fall apart into single letters and short pieces, and a rare English word is known only as
pieces ('lasagna' -> las ##ag ##na) whose vectors carry spurious similarity (0.33 with 'a request about escalation').
The router weighs a request's evidence by the share of its tokens read as whole known words
(:class:`~tinydancer_duck.embed.EvidenceCalibration`), and says so when that share is too small.

A token counts as *known* when it is a whole-word entry of the vocabulary written in ASCII (after the tokenizer's
accent stripping), not followed by a ``##`` piece of the same word; each token of a word read as ASCII pieces counts
as half known (the table learned some such words, 'de ##bu ##g', and not others, 'las ##ag ##na': a word known only
as pieces carries little evidence); a single character of another script and a word dropped as [UNK] count as not
known. Additive to the tokenizer: it reads the ids the
tokenizer made and re-splits only the few non-ASCII texts (where [UNK] words can hide), so ``embed()`` is unchanged.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._wordpiece import Tokenizer

#: How much a token of a word read as ASCII pieces counts as known.
PIECE_SHARE = 0.5


def vocab_flags(tokenizer: Tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """(bool (V,) ASCII entries, bool (V,) ``##`` pieces) over the vocabulary, built once per tokenizer."""
    flags = getattr(tokenizer, "_reading_flags", None)
    if flags is None:
        tokens = tokenizer.vocab.tokens
        piece = np.array([t.startswith("##") for t in tokens], bool)
        ascii_entry = np.array([t.isascii() and not (t.startswith("[") and t.endswith("]")) for t in tokens], bool)
        flags = tokenizer._reading_flags = (ascii_entry, piece)  # type: ignore[attr-defined]
    return flags


def known_tokens(tokenizer: Tokenizer, ids: np.ndarray, parents: np.ndarray, n: int) -> np.ndarray:
    """float64 (n,) tokens per text known (whole ASCII words 1, tokens of words read as ASCII pieces
    :data:`PIECE_SHARE`); ids, parents as :meth:`Tokenizer.tokenize` gives them."""
    if not len(ids):
        return np.zeros(n)
    ascii_entry, piece = vocab_flags(tokenizer)
    head = np.zeros(len(ids), bool)
    head[:-1] = piece[ids[1:]] & (parents[1:] == parents[:-1])  # the first token of a word read as pieces
    weight = np.where(ascii_entry[ids], np.where(head | piece[ids], PIECE_SHARE, 1.0), 0.0)
    return np.bincount(parents, weights=weight, minlength=n)


#: A word as the tokenizer splits one (close enough to count the words it drops): a Han character alone, a run of
#: letters and digits, or any other non-space character alone.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(f"[{_HAN}]|[^\\W_{_HAN}]+|[^\\s]")


def unread_words(tokenizer: Tokenizer, texts: list[str | None] | pa.Array, max_chars: int) -> np.ndarray:
    """int64 (n,) words of each text that the tokenizer drops as [UNK] (emoji, most other scripts). Only non-ASCII
    texts can hold one (every ASCII character is in the vocabulary), so only those are split again, in Python (the
    Arrow Unicode split compiles its pattern on every call, ~2 ms)."""
    out = np.zeros(len(texts), np.int64)
    if isinstance(texts, pa.Array):
        ascii_only = pc.string_is_ascii(texts).fill_null(True).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(~ascii_only)
        others = texts.take(pa.array(rows, pa.int64())).to_pylist() if len(rows) else []
    else:
        rows = np.array([i for i, text in enumerate(texts) if text and not text.isascii()], np.int64)
        others = [texts[i] for i in rows]
    index = tokenizer.vocab_words
    for row, text in zip(rows.tolist(), others):
        out[row] = sum(1 for w in _WORD.findall(text[:max_chars].lower())
                       if w not in index and not len(tokenizer.unseen_word(w)))
    return out


def blank(texts: list[str | None] | pa.Array) -> np.ndarray:
    """bool (n,): NULL, empty or whitespace-only texts (no request at all, unlike a text the embedder cannot read)."""
    if isinstance(texts, pa.Array):
        trimmed = pc.utf8_trim_whitespace(texts)
        return np.asarray(pc.fill_null(pc.equal(pc.binary_length(trimmed), 0), True).to_numpy(zero_copy_only=False),
                          bool)
    return np.array([not (isinstance(t, str) and t.strip()) for t in texts], bool)
