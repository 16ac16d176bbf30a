"""Reading usage logs: Parquet, CSV or JSON files, directories or globs streamed in batches, with a column mapping for logs
that name the usage fields differently."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from tinydancer_duck._logs import log_dataset
from tinydancer_duck._validate import field_mapping
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.store import USAGE_SCHEMA

FIELDS = tuple(USAGE_SCHEMA.names)
REQUIRED = ("agent", "cost", "success", "latency_ms")


def column_mapping(columns: Mapping[str, str] | str | None) -> dict[str, str]:
    """field -> source column; JSON text, a mapping or None. Unknown fields are an error naming them."""
    return field_mapping(columns, FIELDS, "usage field")


def open_log(source: str | Path, mapping: Mapping[str, str]) -> tuple[ds.Dataset, dict[str, str]]:
    """The dataset and, for each field it provides, the source column to read."""
    dataset = log_dataset("path", source)
    available = set(dataset.schema.names)
    selection = {}
    for name in FIELDS:
        wanted = mapping.get(name, name)
        if wanted in available:
            selection[name] = wanted
        elif name in mapping or name in REQUIRED:
            raise InvalidArgument("columns", wanted, f"no column {wanted!r} for {name!r} in {source} "
                                  f"(columns: {', '.join(sorted(available))})")
    return dataset, selection


def batches(dataset: ds.Dataset, selection: Mapping[str, str], rows: int) -> Iterator[dict[str, pa.ChunkedArray]]:
    """Dicts of field -> Arrow column, about ``rows`` rows each (small reader batches are merged)."""
    pending: list[pa.RecordBatch] = []
    size = 0
    sources = list(dict.fromkeys(selection.values()))
    for batch in dataset.to_batches(columns=sources, batch_size=rows):
        pending.append(batch)
        size += batch.num_rows
        if size >= rows:
            yield _fields(pa.Table.from_batches(pending), selection)
            pending, size = [], 0
    if size:
        yield _fields(pa.Table.from_batches(pending), selection)


def _fields(table: pa.Table, selection: Mapping[str, str]) -> dict[str, pa.ChunkedArray]:
    return {name: table[source] for name, source in selection.items()}

