"""Embedding-matrix kernels: row normalization, per-text sums of token rows, and Arrow/numpy vector conversion.

Kernels here are pure numpy (no I/O); ``embedding_matrix`` is the one boundary that accepts Arrow and validates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from tinydancer_duck.errors import InvalidArgument

#: ``segment_sum`` sums the texts still open whole once they are this many times fewer than the steps left: a batch
#: with 1% of 512-token texts otherwise spent ~6 ms per 2048 rows in hundreds of numpy calls on 20 rows.
_STEPS_PER_TEXT = 4


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Normalize rows in place to unit L2 norm; all-zero rows stay zero.

    x : float32 array of shape (n, D), modified and returned
    """
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    return np.divide(x, norms, out=x, where=norms > 0)  # one call, not a mask, a gather and a scatter


def segment_sum(table: np.ndarray, ids: np.ndarray, parents: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum the table rows of each text's tokens.

    table : float32 array of shape (V, D)
    ids : integer array of shape (t,), row of ``table`` per token
    parents : integer array of shape (t,), non-decreasing text index per token
    counts : integer array of shape (n,), tokens per text (``np.bincount(parents, minlength=n)``)
    returns : float32 C-contiguous array of shape (n, D); texts without tokens give zero rows

    Why this shape: ``np.add.reduceat`` and a padded ``table[M].sum(axis=1)`` either run slowly or build an
    (n, L, D) temporary that explodes when one text is long. Instead texts are ordered by token count (longest
    first) and the j-th token of every text that has one is added in one vectorized step, so the work is
    proportional to the number of tokens, temporaries are (n, D), and there are max(counts) numpy calls.
    """
    n, dim = len(counts), table.shape[1]
    out = np.zeros((n, dim), dtype=np.float32)
    if len(ids) == 0:
        return out
    if n == 1:  # one text (a one-request query): one gather and one sum, the loop's additions in the loop's order
        np.add.reduce(table[ids], axis=0, out=out[0])
        return out
    order = np.argsort(-counts, kind="stable")
    sorted_counts = counts[order]
    starts = np.cumsum(counts) - counts
    longest = int(sorted_counts[0])
    # active[j] = number of texts with more than j tokens (a prefix of `order`).
    active = len(counts) - np.searchsorted(sorted_counts[::-1], np.arange(longest), side="right")
    first = starts[order]
    acc = np.zeros((n, dim), dtype=np.float32)
    buf = np.empty((n, dim), dtype=np.float32)
    for j in range(longest):
        k = int(active[j])
        if k * _STEPS_PER_TEXT <= longest - j:  # a few long texts left: each summed whole, in token order (the
            for i in range(k):                   # loop's order, so the same bits), not hundreds of tiny steps
                np.add.reduce(table[ids[first[i]:first[i] + sorted_counts[i]]], axis=0, out=acc[i])
            break
        np.take(table, ids[first[:k] + j], axis=0, out=buf[:k])
        acc[:k] += buf[:k]
    out[order] = acc
    return out


def nonzero_rows(x: np.ndarray) -> np.ndarray:
    """bool (n,): rows of the float (n, D) matrix with a non-zero value (an embedder gives NULL/blank texts zeros)."""
    return np.abs(x).max(axis=1, initial=0.0) > 0


def is_vector_input(values: Any) -> bool:
    """Embeddings rather than texts: a numeric numpy array, or an Arrow list / fixed-size list column."""
    if isinstance(values, np.ndarray):
        return values.dtype != object and not np.issubdtype(values.dtype, np.str_)
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        typ = values.type
        return pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)
    return False


def embedding_matrix(
    values: pa.Array | pa.ChunkedArray | np.ndarray, dim: int, *, argument: str
) -> tuple[np.ndarray, np.ndarray]:
    """Convert stored or user-given embeddings to a normalized float32 matrix.

    values : Arrow FixedSizeList<float> or List<float> (DuckDB reads Parquet FLOAT[N] back as a variable list), or a
        numpy array of shape (n, dim)
    dim : expected number of floats per row
    argument : argument name used in error messages
    returns : (x float32 C-contiguous (n, dim) with unit-norm rows, valid bool (n,)); NULL and all-zero rows are
        zero and invalid
    raises : InvalidArgument if a non-NULL row has another length than dim, or the input type is not a vector
    """
    if isinstance(values, np.ndarray):
        return _from_numpy(values, dim, argument)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    n = len(values)
    typ = values.type
    if pa.types.is_fixed_size_list(typ):
        if typ.list_size != dim:
            raise InvalidArgument(argument, f"length {typ.list_size}", f"expected {dim} floats")
        valid = _valid(values)
        if values.null_count:
            values = values.fill_null(pa.scalar([0.0] * dim, type=typ))
        flat = values.flatten().to_numpy(zero_copy_only=False)
        x = flat.reshape(n, dim)
    elif pa.types.is_list(typ) or pa.types.is_large_list(typ):
        valid = _valid(values)
        lengths = values.value_lengths().fill_null(dim).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(lengths != dim)
        if len(bad):
            raise InvalidArgument(argument, f"length {int(lengths[bad[0]])}", f"expected {dim} floats")
        x = np.zeros((n, dim), dtype=np.float32)
        flat = values.flatten().to_numpy(zero_copy_only=False)  # NULL rows contribute no values
        x[valid] = flat.reshape(-1, dim)
    else:
        raise InvalidArgument(argument, str(typ), f"expected a list of {dim} floats")
    x = _as_float32(x)
    if x.shape[0] and not np.isfinite(x).all():
        raise InvalidArgument(argument, "non-finite value", "embeddings must be finite floats")
    l2_normalize(x)
    return x, valid & nonzero_rows(x)


def one_embedding(value: Any, dim: int, *, argument: str = "request") -> np.ndarray:
    """float64 (1, k) from one embedding given as a sequence or numpy array of floats, for
    :func:`embedding_matrix` to check (a NULL element becomes NaN, which it rejects as non-finite).

    Anything that is not a vector (a number, a mapping, a list of words) is an error naming the argument.
    """
    if isinstance(value, (list, tuple, np.ndarray)):
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            array = None
        if array is not None and array.ndim == 1:
            return array.reshape(1, -1)
    raise InvalidArgument(argument, value, f"must be text or an embedding of {dim} floats")


def _from_numpy(values: np.ndarray, dim: int, argument: str) -> tuple[np.ndarray, np.ndarray]:
    if values.ndim == 1:
        values = values.reshape(1, -1)
    if values.ndim != 2 or values.shape[1] != dim:
        raise InvalidArgument(argument, f"length {values.shape[-1]}", f"expected {dim} floats")
    x = np.array(values, dtype=np.float32, order="C", copy=True)
    if x.shape[0] and not np.isfinite(x).all():
        raise InvalidArgument(argument, "non-finite value", "embeddings must be finite floats")
    l2_normalize(x)
    return x, nonzero_rows(x)


def _valid(values: pa.Array) -> np.ndarray:
    if values.null_count == 0:
        return np.ones(len(values), dtype=bool)
    return values.is_valid().to_numpy(zero_copy_only=False)


def _as_float32(x: np.ndarray) -> np.ndarray:
    # Copy only when needed: Arrow buffers are read-only, and normalization writes in place.
    if x.dtype == np.float32 and x.flags.c_contiguous and x.flags.writeable:
        return x
    return np.array(x, dtype=np.float32, order="C", copy=True)
