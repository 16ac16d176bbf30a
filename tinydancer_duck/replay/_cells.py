"""What a log says about each (category, agent) cell: the sums the replay's outcome and cost models are fitted from,
in one pass over the log before it is replayed.

Every outcome the log holds counts: the logged choice's (``agent`` + ``quality``) and, in a wide log, each agent's
own column. A logged choice with a ``propensity`` p counts with weight 1/p (so a cell's weighted mean estimates the
agent's mean over all the category's requests, not over the requests the logging policy happened to send it); any
other outcome with weight 1. Requests fall into ``folds`` folds by a hash of their text (:func:`request_folds`, the
same on every run and machine), and the sums are kept per fold, so the outcome model can be cross-fitted: a request's
figures never come from sums that include it. Costs are summed with the request's tokens (estimated from its bytes,
ceil(bytes / bytes_per_token), the router's count for a text its tokenizer does not read) for a per-agent cost model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck._logs import LogBatch, LogSpec, iter_batches, text_hash

#: Folds of the cross-fitted outcome model (by request text).
FOLDS = 5
#: The quality sums per cell: Σw, Σw·r, Σw·r², Σw².
QUALITY_SUMS = ("weight", "weighted", "weighted_square", "weight_square")
#: The cost sums per cell (unweighted): rows with a cost, Σt, Σt², Σc, Σt·c, Σc².
COST_SUMS = ("rows", "tokens", "tokens_square", "cost", "tokens_cost", "cost_square")


@dataclass(frozen=True)
class CellSums:
    """A log's sums per cell. categories : the log's categories in order of appearance (code = position; a log
    without a category column has the one category ""); quality : name -> float64 (K, C, A) per fold (names of
    :data:`QUALITY_SUMS`); cost : name -> float64 (C, A) (:data:`COST_SUMS`); folds : int8 (rows,) each of the
    log's rows' fold (by its position in the log)."""

    categories: list[str]
    quality: dict[str, np.ndarray]
    cost: dict[str, np.ndarray]
    folds: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.quality["weight"].shape  # type: ignore[return-value]

    def codes(self, category: pa.Array | None, n: int) -> np.ndarray:
        """int64 (n,) each row's category code (0 for a log without categories; -1 for a NULL or unseen one)."""
        if category is None or self.categories == [""]:
            return np.zeros(n, np.int64)
        codes = pc.index_in(category, value_set=pa.array(self.categories, pa.string()))
        return codes.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def request_folds(requests: pa.Array, folds: int = FOLDS) -> np.ndarray:
    """int64 (n,) the fold of each request, from a hash of its text (equal texts share a fold)."""
    return (text_hash(requests) % np.uint64(folds)).astype(np.int64)


def request_tokens(requests: pa.Array, bytes_per_token: float) -> np.ndarray:
    """float64 (n,) ceil(UTF-8 bytes / bytes_per_token) of each request (0 for NULL)."""
    lengths = pc.binary_length(requests).fill_null(0).to_numpy(zero_copy_only=False)
    return np.ceil(lengths / bytes_per_token)


class _Vocabulary:
    """Category names to codes, grown as batches arrive."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def codes(self, category: pa.Array) -> np.ndarray:
        category = category.cast(pa.string())
        known = set(self.names)
        self.names += [c for c in pc.unique(category).drop_null().to_pylist() if c not in known]
        codes = pc.index_in(category, value_set=pa.array(self.names, pa.string()))
        return codes.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _observations(batch: LogBatch, actual: np.ndarray) -> tuple[np.ndarray, ...]:
    """(row, agent, outcome, weight, cost) of every outcome a batch holds: the wide columns' and the logged choice's
    (the latter weighted 1/propensity when the log gives one)."""
    rows, cols = np.nonzero(~np.isnan(batch.outcome))
    parts = [(rows, cols, batch.outcome[rows, cols], np.ones(len(rows)), batch.outcome_cost[rows, cols])]
    if "quality" in batch.columns:
        quality = batch.columns["quality"]
        own = np.flatnonzero((actual >= 0) & ~np.isnan(quality))
        own = own[np.isnan(batch.outcome[own, actual[own]])]  # a wide column already holds it
        propensity = batch.columns.get("propensity")
        weight = np.ones(len(own)) if propensity is None else 1.0 / np.nan_to_num(propensity[own], nan=1.0)
        cost = batch.columns.get("cost", np.full(len(batch), np.nan))[own]
        parts.append((own, actual[own], quality[own], weight, cost))
    return tuple(np.concatenate(column) for column in zip(*parts))


def scan_cells(spec: LogSpec, names: Sequence[str], *, bytes_per_token: float, folds: int = FOLDS) -> CellSums:
    """One pass over the log (module docstring); ``names``: the registered agents (the columns A)."""
    a = len(names)
    vocabulary = _Vocabulary()
    index = pa.array(list(names), pa.string())
    quality = np.zeros((len(QUALITY_SUMS), folds, 0, a))
    cost = np.zeros((len(COST_SUMS), 1, 0, a))
    row_folds = []
    for batch in iter_batches(spec, names):
        row_folds.append(request_folds(batch.request, folds).astype(np.int8))
        actual = np.full(len(batch), -1)
        if "agent" in batch.columns:
            actual = pc.index_in(batch.columns["agent"], value_set=index).fill_null(-1).to_numpy(
                zero_copy_only=False).astype(np.int64)
        code = (vocabulary.codes(batch.columns["category"]) if "category" in batch.columns
                else np.zeros(len(batch), np.int64))
        rows, cols, r, w, c = _observations(batch, actual)
        keep = code[rows] >= 0
        rows, cols, r, w, c = rows[keep], cols[keep], r[keep], w[keep], c[keep]
        categories = max(len(vocabulary.names), 1)
        fold = row_folds[-1][rows]
        quality = _grown(quality, categories) + _sums((fold, code[rows], cols), (w, w * r, w * r * r, w * w),
                                                      (folds, categories, a))
        priced = ~np.isnan(c)
        t, cc = request_tokens(batch.request, bytes_per_token)[rows][priced], c[priced]
        cost = _grown(cost, categories) + _sums((np.zeros(len(cc), np.int64), code[rows][priced], cols[priced]),
                                                (np.ones(len(cc)), t, t * t, cc, t * cc, cc * cc), (1, categories, a))
    categories = vocabulary.names or [""]
    quality, cost = _grown(quality, len(categories)), _grown(cost, len(categories))
    return CellSums(categories, dict(zip(QUALITY_SUMS, quality)), dict(zip(COST_SUMS, cost[:, 0])),
                    np.concatenate(row_folds) if row_folds else np.zeros(0, np.int8))


def _grown(sums: np.ndarray, categories: int) -> np.ndarray:
    """``sums`` (S, K, C, A) with zero rows appended up to ``categories`` categories."""
    missing = categories - sums.shape[2]
    return np.pad(sums, ((0, 0), (0, 0), (0, missing), (0, 0))) if missing > 0 else sums


def _sums(cells: tuple[np.ndarray, ...], values: tuple[np.ndarray, ...], shape: tuple[int, int, int]) -> np.ndarray:
    """float64 (S, *shape): each of the S value arrays summed per cell (fold, category, agent)."""
    flat = np.ravel_multi_index(cells, shape) if len(cells[0]) else np.zeros(0, np.int64)
    size = int(np.prod(shape))
    return np.stack([np.bincount(flat, weights=v, minlength=size) for v in values]).reshape(len(values), *shape)
