"""The static embedder reads a text's first and last word pieces: exactly the whole text's, read from two windows."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinydancer_duck.embed._embedders import HEAD_TOKENS, TAIL_TOKENS, make_embedder
from tinydancer_duck.embed._ends import BYTES_PER_PIECE, _ends_mask, read_ends, whole_bytes
from tinydancer_duck.embed._vectors import l2_normalize, segment_sum
from tinydancer_duck.embed._wordpiece import Tokenizer
from tinydancer_duck.registry import tokens_from_bytes
from tinydancer_duck.settings import DEFAULT_SETTINGS

#: Tokens of at most 14 bytes that give at least one piece each, so with a 1-2 byte separator every 16 bytes of
#: text hold a piece: the windows' second read always holds enough, and the kept pieces must be exactly the whole
#: text's. Multi-byte characters, accents, punctuation and unknown words included.
WORDS = ["hello", "running", "unbelievable", "naïve", "Café", "日本", "’", "—", "?", ",", "a", "x1", "ÀÉ", "σς",
         "zxqvbn", "北京", "don't", "ü", "[", "ı"]
SEPARATORS = [" ", "\n", "  ", "\t"]
tokens_text = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=80).map(
    lambda pairs: "".join(w + s for w, s in pairs))
ODD = "éüßİ’“”…—日本語中文한국어ÀÉ\u00a0\u3000\u2028\u0301ﬁΣσς١٢😀\x00\x0b\x1c\x7f"
any_text = st.text(alphabet=st.sampled_from([*ODD, " ", "a", "b", "."]), max_size=120)


def whole_text_ends(tokenizer: Tokenizer, texts: pa.Array, head: int, tail: int):
    """The reference: every piece of every text, then its first ``head`` and last ``tail``."""
    ids, parents, counts = tokenizer.tokenize(texts, 1 << 20)
    keep = _ends_mask(parents, counts, np.full(len(counts), head), np.full(len(counts), tail))
    return ids[keep], parents[keep], counts


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.one_of(st.none(), tokens_text), max_size=20), offset=st.integers(0, 3),
       head=st.integers(0, 6), tail=st.integers(0, 6))
def test_the_ends_read_from_windows_are_the_whole_texts_ends(texts, offset, head, tail):
    """Small head/tail make windows of a few dozen bytes, so short drawn texts are read in windows, twice read
    (too few pieces at 8 bytes a piece), or whole; batch offsets and NULLs included."""
    if head + tail == 0:
        head = 1
    tokenizer = Tokenizer()
    array = pa.array(["pad"] * offset + texts, pa.string()).slice(offset)
    want_ids, want_parents, counts = whole_text_ends(tokenizer, array, head, tail)
    got = read_ends(tokenizer, array, head, tail)
    np.testing.assert_array_equal(got.ids, want_ids)
    np.testing.assert_array_equal(got.parents, want_parents)
    np.testing.assert_array_equal(got.kept, np.minimum(counts, head + tail))
    lengths = np.array([len((t or "").encode()) for t in texts])
    read_whole = lengths <= whole_bytes(head, tail)
    np.testing.assert_array_equal(got.counted[read_whole], counts[read_whole])  # the whole text's count
    assert (got.counted[~read_whole] <= counts[~read_whole]).all()  # else a lower bound
    as_list = read_ends(tokenizer, [None if t is None else str(t) for t in texts], head, tail)
    np.testing.assert_array_equal(as_list.ids, want_ids)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(any_text, max_size=20), head=st.integers(1, 5), tail=st.integers(0, 5))
def test_any_text_is_read_within_bounds(texts, head, tail):
    """Runs of spaces, unknown characters, control bytes: at most head + tail pieces kept, in text order, from a
    text's own pieces; a text within the windows' bytes is read whole."""
    tokenizer = Tokenizer()
    array = pa.array(texts, pa.string())
    want_ids, want_parents, _ = whole_text_ends(tokenizer, array, head, tail)
    got = read_ends(tokenizer, array, head, tail)
    assert (got.kept <= head + tail).all() and (np.diff(got.parents) >= 0).all()
    np.testing.assert_array_equal(np.bincount(got.parents, minlength=len(texts)), got.kept)
    short = [i for i, t in enumerate(texts) if len(t.encode()) <= whole_bytes(head, tail)]
    for i in short:
        np.testing.assert_array_equal(got.ids[got.parents == i], want_ids[want_parents == i])
    for i in range(len(texts)):
        assert set(got.ids[got.parents == i].tolist()) <= set(tokenizer.tokenize(array.slice(i, 1), 1 << 20)[0])


@settings(max_examples=100, deadline=None)
@given(texts=st.lists(st.one_of(st.none(), tokens_text, any_text), max_size=40))
def test_short_texts_embed_bit_for_bit_as_before(texts):
    """A text of at most HEAD_TOKENS + TAIL_TOKENS pieces sums every piece, in order, as the embedder did when it
    read a text's first 512 pieces: the same bits, in a batch and alone."""
    embedder = make_embedder("static")
    tokenizer = embedder.tokenizer
    array = pa.array(texts, pa.string())
    ids, parents, counts = tokenizer.tokenize(array, 512)
    before = l2_normalize(segment_sum(embedder.table, ids, parents, counts))
    short = counts <= HEAD_TOKENS + TAIL_TOKENS
    now, counted = embedder.embed_counted(array)
    np.testing.assert_array_equal(now[short], before[short])
    np.testing.assert_array_equal(counted[short], counts[short])
    for i in np.flatnonzero(short)[:3]:
        np.testing.assert_array_equal(embedder.embed([texts[i]])[0], before[i])


def few_shot_prompt(question: str) -> str:
    """A RouterBench-like prompt: an instruction, four worked examples, then the question (~2.3 KB)."""
    shots = "".join(f"Which of these is a mammal?\nA) trout\nB) whale\nC) eagle\nD) frog\nAnswer: B\n\n"
                    f"Example {k}: the sun rises in the east and sets in the west.\n" for k in range(20))
    return "Answer with the letter of the correct choice.\n\n" + shots + question + "\nAnswer:"


def test_a_long_prompt_is_embedded_from_its_first_and_last_pieces():
    embedder = make_embedder("static")
    tokenizer = embedder.tokenizer
    prompts = [few_shot_prompt("Why do magnets stick to a refrigerator door?"),
               few_shot_prompt("Which gas do plants take in for photosynthesis?")]
    assert all(len(p.encode()) > embedder.read_bytes for p in prompts)
    ids, parents, counts = tokenizer.tokenize(pa.array(prompts), 1 << 20)
    assert (counts > HEAD_TOKENS + TAIL_TOKENS).all()
    x = embedder.embed(prompts)
    for i in range(2):
        own = ids[parents == i]
        kept = np.concatenate([own[:HEAD_TOKENS], own[-TAIL_TOKENS:]])
        want = l2_normalize(segment_sum(embedder.table, kept, np.zeros(len(kept), np.intp),
                                        np.array([len(kept)])))
        np.testing.assert_array_equal(x[i], want[0])
    assert float(x[0] @ x[1]) < 0.99  # the questions differ only at the end, and the end is read


def test_token_counts_of_long_texts_are_unchanged_by_the_truncation():
    """tokens_in stays computed from the whole text: the WordPiece count of a text read whole (pieces the embedding
    does not keep included), ceil(bytes / bytes_per_token) of a text read only at its ends, as it was for a text
    past what the tokenizer read when it read a text's first 512 pieces."""
    embedder = make_embedder("static")
    settings_ = DEFAULT_SETTINGS
    mid = "yes, no. " * 60  # 540 bytes, 240 pieces: read whole, all counted, 128 embedded
    document = "routing long prompts costs little now. " * 2_000  # 78 KB
    texts = [mid, document]
    lengths = np.array([len(t.encode()) for t in texts])
    _, counted = embedder.embed_counted(texts)
    now = tokens_from_bytes(lengths, settings_, counted, embedder.max_tokens, embedder.read_bytes)
    _, _, first_512 = embedder.tokenizer.tokenize(pa.array(texts), 512)  # what the embedder counted before
    before = tokens_from_bytes(lengths, settings_, first_512, 512, 512 * 16)
    assert now.tolist() == before.tolist() == [240, math.ceil(lengths[1] / settings_.bytes_per_token)]
    assert embedder.embed_counted([mid])[1].tolist() == [240]  # one request: the same count


def test_a_text_of_spaces_is_read_within_the_bound():
    """20,000 spaces between two words: the head window finds one word, is read again at 16 bytes a piece, and
    stops there; the tail holds the last words. Nothing past the windows is read."""
    tokenizer = Tokenizer()
    text = "hello" + " " * 20_000 + "world " * 300
    got = read_ends(tokenizer, pa.array([text]), HEAD_TOKENS, TAIL_TOKENS)
    world = tokenizer.vocab.index["world"]
    assert got.ids.tolist() == [tokenizer.vocab.index["hello"]] + [world] * TAIL_TOKENS
    assert got.counted[0] <= 1 + (HEAD_TOKENS + TAIL_TOKENS) * 16 // len("world ")


@pytest.mark.parametrize("bytes_per_piece", [BYTES_PER_PIECE])
def test_read_bytes_is_the_whole_reading_limit(bytes_per_piece):
    embedder = make_embedder("static")
    assert embedder.read_bytes == (HEAD_TOKENS + TAIL_TOKENS) * bytes_per_piece
