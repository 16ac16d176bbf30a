"""Spark adapter (extra ``[spark]``): route_batch and its siblings as ``DataFrame.mapInArrow``.

The snapshot travels by value in the function's closure (cloudpickle; the packaged embedder table by its
fingerprint). Spark's Python workers must run a Python that has tinydancer_duck: set ``PYSPARK_PYTHON`` before the
session starts (:func:`local_session` does). Arrow batches are at most ``spark.sql.execution.arrow.maxRecordsPerBatch``
rows (local_session sets it to the batch size).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tinydancer_duck.errors import InvalidArgument

from ._batch import checked_arguments
from ._ray import KINDS

if TYPE_CHECKING:
    import pyspark.sql

    from tinydancer_duck.snapshot import RoutingSnapshot


def spark_route(df: pyspark.sql.DataFrame, snapshot: RoutingSnapshot, *, request: str = "request",
                keep: list[str] | None = None, kind: str = "route", partitions: int | None = None,
                **options: Any) -> pyspark.sql.DataFrame:
    """The DataFrame with every row routed (lazy): the ``keep`` columns, then the decision fields (see
    :func:`route_batch`; ``kind="classify"`` or ``"semantic"`` for the other two).

    partitions : when the DataFrame has fewer partitions than this, it is repartitioned first (a Parquet file
        with one row group is one partition, whatever its size: spread the rows over the workers)
    """
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    function = KINDS.get(kind)
    if function is None:
        raise InvalidArgument("kind", kind, f"must be one of {', '.join(KINDS)}")
    arguments = {"request": request, "keep": keep, **options}
    if kind == "route":
        arguments = checked_arguments(snapshot, arguments)
    conf = df.sparkSession.conf
    large = str(conf.get("spark.sql.execution.arrow.useLargeVarTypes", "false")).lower() == "true"
    empty = to_arrow_schema(df.schema, timezone=conf.get("spark.sql.session.timeZone", "UTC"),
                            prefers_large_types=large).empty_table()
    out_schema = function(snapshot, empty, **arguments).schema

    def routed(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield function(snapshot, batch, **arguments).cast(out_schema)

    if partitions is not None and df.rdd.getNumPartitions() < partitions:
        df = df.repartition(partitions)
    return df.mapInArrow(routed, from_arrow_schema(out_schema))


def local_session(workers: int, *, batch_rows: int = 8192, app: str = "tinydancer") -> pyspark.sql.SparkSession:
    """A local Spark session with ``workers`` cores whose Python workers run this interpreter."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidArgument("workers", workers, "must be a positive integer")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    return (SparkSession.builder.master(f"local[{workers}]").appName(app)
            .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows))
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", str(max(workers, 1)))
            .getOrCreate())
