"""The numpy word split gives the tokens of the Arrow regex split, for any text and any batch boundaries."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from tinydancer_duck.embed._split import split_flat
from tinydancer_duck.embed._wordpiece import CHARS_PER_TOKEN, Tokenizer, flat_words, truncate

ODD = "éüßİ’“”…—日本語中文한국어ÀÉ\u00a0\u3000\u2028\u0301ﬁΣσς١٢😀\x00\x0b\x1c\x7f"
PIECES = [chr(c) for c in range(128)] + list(ODD) + ["hello", " world", "running", "unbelievable"]
texts_strategy = st.lists(st.one_of(st.none(), st.lists(st.sampled_from(PIECES), max_size=30).map("".join),
                                    st.text(max_size=20)), max_size=30)


def arrow_tokens(tokenizer: Tokenizer, texts: pa.Array, max_tokens: int):
    """The tokenizer as it was: the Arrow regex split and index_in against the word table."""
    flat, parents = flat_words(texts, max_tokens * CHARS_PER_TOKEN)
    found = pc.index_in(flat, value_set=tokenizer.vocab.words)
    unknown = found.is_null().to_numpy(zero_copy_only=False)
    ids = tokenizer.vocab.word_ids[found.fill_null(0).to_numpy()]
    if unknown.any():  # each unknown word's pieces in its place, one word at a time (the reference, not _expand)
        pieces = [tokenizer.unseen_word(w).tolist() if u else [int(i)]
                  for w, i, u in zip(flat.to_pylist(), ids, unknown)]
        ids = np.array([x for piece in pieces for x in piece], np.int32)
        parents = np.repeat(parents, [len(piece) for piece in pieces])
    return truncate(ids, parents, len(texts), max_tokens)


@settings(max_examples=300, deadline=None)
@given(texts=texts_strategy, offset=st.integers(0, 3), max_tokens=st.sampled_from([1, 3, 512]))
def test_numpy_split_gives_the_arrow_tokens(texts, offset, max_tokens):
    tokenizer = Tokenizer()
    array = pa.array(["pad"] * offset + texts, pa.string()).slice(offset)
    if len(array) <= 16:  # the small-batch Python path is tested elsewhere; force the batch path
        array = pa.concat_arrays([array, pa.array(["x y z"] * 17, pa.string())])
    expected = arrow_tokens(tokenizer, array, max_tokens)
    got = tokenizer.tokenize(array, max_tokens)
    for want, have in zip(expected, got):
        np.testing.assert_array_equal(want, have)


def test_words_match_on_real_requests():
    texts = pa.array(["How do I reset my password?", "Don’t panic — it’s fine…", "日本語のテキスト", None, "",
                      "C++ & Rust: 3.14 × 2 = 6.28!", "naïve café", "\tTabs\nand\r\nnewlines  "] * 300)
    want, want_parents = flat_words(texts, 512 * CHARS_PER_TOKEN)
    got, got_parents = split_flat(texts, 512 * CHARS_PER_TOKEN)
    assert got.to_pylist() == want.to_pylist()
    np.testing.assert_array_equal(got_parents, want_parents)
