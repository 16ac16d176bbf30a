"""Tests of the embedders, the vectorized WordPiece tokenizer and embedding_matrix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinydancer_duck.embed._embedders import HashingEmbedder, OnnxEmbedder, StaticEmbedder, make_embedder
from tinydancer_duck.embed._vectors import embedding_matrix, segment_sum
from tinydancer_duck.embed._wordpiece import Tokenizer, load_vocab, wordpiece
from tinydancer_duck.errors import InvalidArgument, ModelError

REPO = Path(__file__).resolve().parents[1]
TEXTS = [
    "How do I reset my password?",
    "Customer support and help requests",
    "Technical documentation and API reference",
    "what's the weather in Zürich tomorrow, 25°C?",
    "北京 is a city",
]


@pytest.fixture(scope="module")
def static() -> StaticEmbedder:
    return make_embedder("static")


@pytest.fixture(scope="module", params=["static", "hashing"])
def embedder(request: pytest.FixtureRequest):
    return make_embedder(request.param)


def test_static_is_default_with_table_dims(static: StaticEmbedder) -> None:
    assert make_embedder() is static
    assert (static.kind, static.dim) == ("static", 256)
    assert static.identity == "static:all-MiniLM-L6-v2-refit1:256"
    assert static.table.dtype == np.float32 and static.table.shape == (30522, 256)


def test_shape_dtype_unit_rows(embedder) -> None:
    x = embedder.embed(TEXTS)
    assert x.shape == (len(TEXTS), embedder.dim)
    assert x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_null_empty_blank_give_zero_rows(embedder) -> None:
    x = embedder.embed(["hello", None, "", "   \t\n", "world"])
    assert np.count_nonzero(x[1:4]) == 0
    np.testing.assert_allclose(np.linalg.norm(x[[0, 4]], axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_input_types_agree(embedder) -> None:
    texts = ["alpha beta", None, "gamma"]
    base = embedder.embed(texts)
    for arr in (
        pa.array(texts, type=pa.string()),
        pa.array(texts, type=pa.large_string()),
        pa.chunked_array([texts[:1], texts[1:]], type=pa.string()),
        pa.array(["x", *texts], type=pa.string()).slice(1),
    ):
        np.testing.assert_array_equal(embedder.embed(arr), base)


def test_deterministic_across_processes(embedder) -> None:
    code = (
        "import sys; from tinydancer_duck.embed._embedders import make_embedder; "
        f"sys.stdout.buffer.write(make_embedder({embedder.kind!r}).embed({TEXTS!r}).tobytes())"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "12345"}
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, check=True, cwd=REPO)
    assert child.stdout == embedder.embed(TEXTS).tobytes()


def test_static_is_semantic(static: StaticEmbedder) -> None:
    q, support, docs = static.embed(TEXTS[:3])
    assert float(q @ support) > float(q @ docs)


def test_hashing_sees_shared_words() -> None:
    q, same, other = HashingEmbedder().embed(["reset my password", "password reset page", "weather forecast"])
    assert float(q @ same) > float(q @ other) + 0.3


def test_wordpiece_of_unseen_words_matches_hand_split() -> None:
    vocab = load_vocab()
    # Greedy longest-match: "tinydancer" -> "tiny" (no longer prefix is a token), then "##dancer" is missing but
    # "##dance" exists, leaving "##r". "unaffable" -> "una", "##ffa", "##ble".
    tok = Tokenizer(vocab)
    for word, pieces in (("tinydancer", ["tiny", "##dance", "##r"]), ("unaffable", ["una", "##ffa", "##ble"])):
        assert [vocab.tokens[i] for i in wordpiece(word, vocab.index, vocab.unk_id)] == pieces
        ids, parents, counts = tok.tokenize(pa.array([f"The {word.upper()}!"]), 512)
        assert [vocab.tokens[i] for i in ids] == ["the", *pieces, "!"]
        assert parents.tolist() == [0] * (len(pieces) + 2) and counts.tolist() == [len(pieces) + 2]


def test_accents_are_stripped_and_punctuation_split() -> None:
    tok = Tokenizer()
    ids, parents, counts = tok.tokenize(pa.array(["Café naïve", "cafe naive", "a,b"]), 512)
    assert ids[parents == 0].tolist() == ids[parents == 1].tolist()
    assert [tok.vocab.tokens[i] for i in ids[parents == 2]] == ["a", ",", "b"]
    assert counts.tolist() == [len(ids[parents == 0])] * 2 + [3]


def test_batch_boundaries_do_not_change_results(embedder) -> None:
    rng = np.random.default_rng(0)
    words = ["reset", "password", "zxqvbn", "weather", "flight", "übercool", "?", "refund", "tinydancer", "pay"]
    texts = [" ".join(rng.choice(words, size=rng.integers(0, 12))) if i % 97 else None for i in range(5000)]
    whole = embedder.embed(texts)
    pieces = np.concatenate([embedder.embed(texts[s : s + 2048]) for s in range(0, 5000, 2048)])
    np.testing.assert_array_equal(whole, pieces)
    single = np.concatenate([embedder.embed([t]) for t in texts[:300]])
    np.testing.assert_array_equal(whole[:300], single)  # one text takes its own path: the same sums


def test_one_megabyte_text_is_truncated(embedder) -> None:
    huge = "hello world " * 90_000  # ~1 MB; only its first (hashing) or first and last (static) tokens count
    assert len(huge) > 1_000_000
    x = embedder.embed([huge, "short"])
    np.testing.assert_allclose(x[0], embedder.embed(["hello world"])[0], atol=1e-5)
    if embedder.kind == "hashing":  # the first 512 tokens
        tail_ignored = embedder.embed(["cat " * 512 + "zebra " * 100, "cat"])
        np.testing.assert_allclose(tail_ignored[0], tail_ignored[1], atol=1e-5)
    else:  # the first head_tokens and the last tail_tokens
        middle_ignored = embedder.embed(["cat " * 512 + "dog " * 512 + "zebra " * 512,
                                         "cat " * embedder.head_tokens + "zebra " * embedder.tail_tokens])
        np.testing.assert_allclose(middle_ignored[0], middle_ignored[1], atol=1e-5)


def test_single_string_is_rejected(embedder) -> None:
    with pytest.raises(InvalidArgument, match="texts"):
        embedder.embed("one text")


def test_unknown_kind_names_embedder() -> None:
    with pytest.raises(InvalidArgument, match="embedder") as info:
        make_embedder("bert")
    assert info.value.argument == "embedder" and info.value.value == "bert"


def test_onnx_missing_runtime_raises_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    with pytest.raises(ModelError, match=r"tinydancer_duck\[onnx\]"):
        OnnxEmbedder()


def test_onnx_embedder() -> None:
    pytest.importorskip("onnxruntime")
    try:
        onnx = make_embedder("onnx")
    except ModelError:
        pytest.skip("model package not installed")
    x = onnx.embed([*TEXTS, None, "  "])
    assert x.shape == (len(TEXTS) + 2, 384) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x[: len(TEXTS)], axis=1), 1.0, atol=1e-5)
    assert np.count_nonzero(x[len(TEXTS) :]) == 0
    assert float(x[0] @ x[1]) > float(x[0] @ x[2])
    np.testing.assert_allclose(onnx.embed(TEXTS[::-1]), x[: len(TEXTS)][::-1], atol=1e-5)  # cached or batched


# --- embedding_matrix -------------------------------------------------------------------------------------------


def _unit(rows: list[list[float]]) -> np.ndarray:
    x = np.array(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_embedding_matrix_fixed_size_list_with_nulls_and_slices() -> None:
    arr = pa.array([[3, 4, 0], None, [0, 0, 2], [0, 0, 0]], type=pa.list_(pa.float32(), 3))
    x, valid = embedding_matrix(arr, 3, argument="embedding")
    np.testing.assert_allclose(x, [[0.6, 0.8, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0]])
    assert valid.tolist() == [True, False, True, False]
    assert x.dtype == np.float32 and x.flags.c_contiguous
    xs, vs = embedding_matrix(arr.slice(2, 1), 3, argument="embedding")
    np.testing.assert_allclose(xs, [[0, 0, 1]])
    assert vs.tolist() == [True]
    chunked = pa.chunked_array([arr.slice(0, 1), arr.slice(2)])
    np.testing.assert_allclose(embedding_matrix(chunked, 3, argument="e")[0], x[[0, 2, 3]])


def test_embedding_matrix_variable_list() -> None:
    arr = pa.array([[1.0, 1.0], None, [2.0, 0.0], [5.0, 5.0]], type=pa.list_(pa.float64()))
    x, valid = embedding_matrix(arr.slice(1), 2, argument="embedding")
    np.testing.assert_allclose(x, [[0, 0], [1, 0], *_unit([[1, 1]])], atol=1e-7)
    assert valid.tolist() == [False, True, True]


def test_embedding_matrix_numpy() -> None:
    x, valid = embedding_matrix(np.array([[0.0, 2.0], [0.0, 0.0]]), 2, argument="embedding")
    np.testing.assert_array_equal(x, np.array([[0, 1], [0, 0]], dtype=np.float32))
    assert valid.tolist() == [True, False]


@pytest.mark.parametrize(
    "values",
    [
        pa.array([[1.0, 2.0, 3.0], [1.0, 2.0]], type=pa.list_(pa.float32())),
        pa.array([[1.0, 2.0]], type=pa.list_(pa.float32(), 2)),
        np.zeros((2, 2), dtype=np.float32),
    ],
)
def test_embedding_matrix_wrong_length(values) -> None:
    with pytest.raises(InvalidArgument, match=r"embedding='length 2'.*expected 3 floats"):
        embedding_matrix(values, 3, argument="embedding")


def test_embedding_matrix_rejects_non_vectors() -> None:
    with pytest.raises(InvalidArgument, match="embedding"):
        embedding_matrix(pa.array(["a"]), 3, argument="embedding")


# --- properties ---------------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=0, max_size=30), st.integers(0, 2**32 - 1))
def test_segment_sum_matches_naive_loop(counts: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((11, 4)).astype(np.float32)
    counts_arr = np.array(counts, dtype=np.intp)
    parents = np.repeat(np.arange(len(counts)), counts_arr)
    ids = rng.integers(0, 11, size=len(parents))
    got = segment_sum(table, ids, parents, counts_arr)
    want = np.zeros((len(counts), 4), dtype=np.float32)
    for i, p in zip(ids, parents, strict=True):
        want[p] += table[i]
    np.testing.assert_allclose(got, want, atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=40)), max_size=8))
def test_any_text_gives_unit_or_zero_rows(texts: list[str | None]) -> None:
    for kind in ("static", "hashing"):
        x = make_embedder(kind).embed(texts)
        norms = np.linalg.norm(x, axis=1)
        assert x.shape == (len(texts), make_embedder(kind).dim)
        assert np.all((np.abs(norms - 1) < 1e-5) | (norms == 0))


def test_small_ascii_batches_tokenize_exactly_like_the_arrow_path(monkeypatch):
    """One-request routes take a Python path (tokenize in µs, not ms); it must give the same ids."""
    import tinydancer_duck.embed._wordpiece as wp

    tokenizer = wp.Tokenizer()
    texts = pa.array(["Hello, World!!", "a\tb\nc\x0bd\x1ce\x7f", "", "   ", None, "x" * 5000,
                      "don't stop-me now; 3.14 #hash @at $100", "UPPER lower MiXeD", "\x00null",
                      "~`^|\\{}[]<>", "How do I reset my password?", "zzqxj unseenword tokenizers"], pa.string())
    small = {m: tokenizer._tokenize_small(texts.to_pylist(), m) for m in (512, 3)}  # 3: truncation
    from_list = tokenizer.tokenize(texts.to_pylist(), 512)  # a Python list, as a one-request call passes
    mixed = ["café naïve", None, "x"]
    mixed_from_list = tokenizer.tokenize(mixed, 512)  # not ASCII: the list goes to Arrow
    monkeypatch.setattr(wp, "SMALL_BATCH", -1)
    arrow = {m: tokenizer.tokenize(texts, m) for m in (512, 3)}
    assert small[3][2].max() == 3 and small[512][2].max() > 3
    for m in (512, 3):
        for got, expected in zip(small[m], arrow[m]):
            np.testing.assert_array_equal(got, expected)
    for listed, expected in zip(from_list, arrow[512]):
        np.testing.assert_array_equal(listed, expected)
    for got, expected in zip(mixed_from_list, tokenizer.tokenize(pa.array(mixed), 512)):
        np.testing.assert_array_equal(got, expected)
    assert tokenizer._tokenize_small(["café"], 512) is None  # non-ASCII goes to Arrow


def test_segment_sum_equals_each_texts_sum_in_token_order_with_a_few_long_texts():
    """segment_sum hands the last few long texts to a whole-text sum: the bits must still be those of adding each
    text's token rows one by one, in order (a text's embedding never depends on its batch-mates)."""
    from tinydancer_duck.embed._vectors import segment_sum

    rng = np.random.default_rng(0)
    table = rng.standard_normal((1000, 64)).astype(np.float32)
    for _ in range(100):
        n = int(rng.integers(1, 60))
        counts = rng.integers(0, 40, n)
        counts[rng.integers(0, n, 3)] = rng.integers(100, 600, 3)
        ids = rng.integers(0, 1000, counts.sum())
        out = segment_sum(table, ids, np.repeat(np.arange(n), counts), counts)
        starts = np.cumsum(counts) - counts
        for i in range(n):
            expected = np.zeros(64, np.float32)
            for token in ids[starts[i]:starts[i] + counts[i]]:
                expected += table[token]
            assert np.array_equal(out[i], expected)
