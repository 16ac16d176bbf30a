"""Model rows: the one owner of model names, versions and which model of a kind is newest.

A model is saved as the next version of its name (1 for a new name), under the ``models`` write lock so that two
processes saving one name get consecutive versions. The newest model of a kind (latest ``created_at``, then highest
version) is the active one; re-activating an older model saves a copy of it as the newest.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from ._schemas import _TIMESTAMP

if TYPE_CHECKING:
    from ._store import Store


def save_model(store: Store, row: Mapping[str, Any]) -> int:
    """Append one ``models`` row as the next version of its name; returns that version.

    row : name, kind, weights (bytes), labels (list of str), metrics (JSON text); version and created_at are set
    here.
    """
    with store.locked("models"):  # two processes saving one name get distinct versions
        models = store.read("models")
        same = models.filter(pc.equal(models["name"], pa.scalar(row["name"], pa.string())))
        version = 1 + int(pc.max(same["version"]).as_py() or 0) if same.num_rows else 1
        store.append("models", pa.table({
            "name": [row["name"]],
            "version": pa.array([version], pa.int64()),
            "kind": [row["kind"]],
            "weights": pa.array([row["weights"]], pa.large_binary()),
            "labels": pa.array([list(row["labels"])], pa.list_(pa.string())),
            "metrics": [row.get("metrics")],
            "created_at": pa.array([datetime.now(timezone.utc)], _TIMESTAMP),
        }))
    return version


def newest_order(models: pa.Table) -> pa.Array:
    """Row indices of ``models`` from the newest (latest created_at, then highest version) to the oldest."""
    return pc.sort_indices(models, sort_keys=[("created_at", "descending"), ("version", "descending")])


def newest_row(models: pa.Table, kind: str) -> dict[str, Any] | None:
    """The newest row of ``kind`` (the active model of that kind) as a dict, or None."""
    rows = models.filter(pc.equal(models["kind"], kind))
    if rows.num_rows == 0:
        return None
    return rows.take(newest_order(rows).slice(0, 1)).to_pylist()[0]


def named_row(models: pa.Table, name: str, version: int | None = None) -> dict[str, Any] | None:
    """The row of model ``name`` at ``version`` (default: its highest version), or None."""
    rows = models.filter(pc.equal(models["name"], pa.scalar(name, pa.string())))
    if version is not None:
        rows = rows.filter(pc.equal(rows["version"], version))
    if rows.num_rows == 0:
        return None
    return rows.take(pc.sort_indices(rows, sort_keys=[("version", "descending")]).slice(0, 1)).to_pylist()[0]
