"""Ray Data adapter (extra ``[ray]``): route_batch and its siblings as ``map_batches`` over pyarrow batches.

Measured pitfalls (Ray Data 2.60, FACTS.md) shape it: tasks, not actors (two actors at ``num_cpus=1`` on a 2-CPU
cluster hung silently); the snapshot travels by value inside ``fn_kwargs`` (an ObjectRef there arrives unresolved);
parallelism is set by rows (``repartition(target_num_rows_per_block=...)``), since the Parquet datasource packs
many files or one large row group into one read task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tinydancer_duck.errors import InvalidArgument

from ._batch import checked_arguments, classify_batch, route_batch, semantic_route_batch

if TYPE_CHECKING:
    import ray.data

    from tinydancer_duck.snapshot import RoutingSnapshot

#: kind -> the batch function a task runs.
KINDS = {"route": route_batch, "classify": classify_batch, "semantic": semantic_route_batch}


def _apply(table: pa.Table, *, kind: str, snapshot: RoutingSnapshot, arguments: dict[str, Any]) -> pa.Table:
    """One Ray task's work: a pyarrow batch in, the routed batch out."""
    return pa.Table.from_batches([KINDS[kind](snapshot, table, **arguments)])


def ray_route(dataset: ray.data.Dataset, snapshot: RoutingSnapshot, *, request: str = "request",
              keep: list[str] | None = None, batch_rows: int = 8192, kind: str = "route", num_cpus: float = 1,
              repartition: bool = True, **options: Any) -> ray.data.Dataset:
    """The dataset with every row routed (lazy, like any Ray Data transform): the ``keep`` columns, then the
    decision fields (see :func:`route_batch`; ``kind="classify"`` or ``"semantic"`` for the other two).

    batch_rows : rows per batch handed to a task; also the block size the dataset is repartitioned to first, so
        the work is spread by rows whatever the files' sizes (``repartition=False`` keeps the blocks as read)
    num_cpus : CPUs reserved per task (1: one task per core; our kernels run BLAS at one thread)
    options : route_batch's options (optimize_for, max_cost, ..., num_fallbacks, explain, ts), validated here once
    """
    function = KINDS.get(kind)
    if function is None:
        raise InvalidArgument("kind", kind, f"must be one of {', '.join(KINDS)}")
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise InvalidArgument("batch_rows", batch_rows, "must be a positive integer")
    arguments = {"request": request, "keep": keep, **options}
    if kind == "route":
        arguments = checked_arguments(snapshot, arguments)
    if repartition:
        dataset = dataset.repartition(target_num_rows_per_block=batch_rows)
    return dataset.map_batches(_apply, batch_format="pyarrow", batch_size=batch_rows, zero_copy_batch=True,
                               fn_kwargs={"kind": kind, "snapshot": snapshot, "arguments": arguments},
                               num_cpus=num_cpus, udf_modifying_row_count=False)
