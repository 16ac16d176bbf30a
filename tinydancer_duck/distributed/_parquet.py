"""Route a Parquet log into a folder of Parquet files on one of three engines: ``local`` (this process), ``ray``
(Ray Data on a local cluster of ``workers`` CPUs) or ``spark`` (local[workers]). Every engine maps the same
:func:`route_batch` over batches of ``batch_rows`` rows, so they write the same decisions."""

from __future__ import annotations

import glob
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from tinydancer_duck.errors import InvalidArgument

from ._batch import checked_arguments, route_batch

Progress = Callable[[int, int], None]
#: Threads the local engine routes batches on (DuckDB's default for SQL: one per core).
LOCAL_THREADS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class RouteReport:
    """What route_parquet did: rows routed, wall seconds, the engine and its workers, the output folder."""

    rows: int
    seconds: float
    engine: str
    workers: int
    output: str

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def input_files(source: str | Path) -> list[str]:
    """The Parquet files of a file, a folder (recursively) or a glob; InvalidArgument when there are none."""
    text = str(source)
    if "://" in text:
        return [text]  # object storage: the engine lists it
    path = Path(text)
    files = sorted(str(p) for p in path.rglob("*.parquet")) if path.is_dir() else \
        ([text] if path.is_file() else sorted(glob.glob(text)))
    if not files:
        raise InvalidArgument("input", text, "has no Parquet files")
    for file in files:  # a file that is not Parquet is named here, not as Arrow's "magic bytes" mid-run
        try:
            pq.ParquetFile(file).close()
        except (pa.ArrowInvalid, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InvalidArgument("input", file, f"is not a Parquet file ({reason}); route-parquet reads Parquet "
                                  "only") from None
    return files


def count_rows(files: list[str]) -> int:
    """Rows in the files, from their footers (no data read)."""
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files if "://" not in f)


def route_parquet(source: str | Path, output: str | Path, snapshot: Any, *, engine: str = "local", workers: int = 1,
                  batch_rows: int = 8192, progress: Progress | None = None, **arguments: Any) -> RouteReport:
    """Route every row of the Parquet log ``source`` and write ``output``/part-*.parquet: the kept columns and the
    decision fields. ``arguments`` are route_batch's (request, keep, optimize_for, max_cost, ...)."""
    run = ENGINES.get(engine)
    if run is None:
        raise InvalidArgument("engine", engine, f"must be one of {', '.join(ENGINES)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidArgument("workers", workers, "must be a positive integer")
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise InvalidArgument("batch_rows", batch_rows, "must be a positive integer")
    arguments = checked_arguments(snapshot, arguments)
    files = input_files(source)
    if "://" not in str(output) and any(Path(output).rglob("*.parquet")):
        raise InvalidArgument("output", str(output), "already holds Parquet files: choose an empty or new folder "
                              "(engines would add to them, not replace them)")
    Path(output).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows = run(files, str(output), snapshot, workers=workers, batch_rows=batch_rows, progress=progress,
               arguments=arguments)
    return RouteReport(rows, time.perf_counter() - started, engine, workers, str(output))


def _local(files: list[str], output: str, snapshot: Any, *, workers: int, batch_rows: int,
           progress: Progress | None, arguments: dict[str, Any]) -> int:
    """Route the batches on LOCAL_THREADS threads of this process and write them in order from this thread.

    Why threads: numpy releases the GIL in the kernels that dominate a batch (gathering token rows, products), so a
    second thread routes while the first is in them, and the Parquet writer (C++) works beside both, as DuckDB's own
    threads do for SQL (BLAS stays at one thread on these threads too: ``_blas``). Each batch is decided on its own,
    so the rows and their order are a single loop's; at most 2 batches per thread are in flight, so memory stays flat.
    """
    if workers != 1:
        raise InvalidArgument("workers", workers, "the local engine is this one process: use --engine ray or spark "
                              "for more workers")
    total, done, writer = count_rows(files), 0, None
    batches = ds.dataset(files, format="parquet").to_batches(batch_size=batch_rows)
    try:
        with ThreadPoolExecutor(LOCAL_THREADS, thread_name_prefix="route-parquet") as pool:
            for routed in _in_order(pool, lambda batch: route_batch(snapshot, batch, **arguments), batches,
                                    2 * LOCAL_THREADS):
                writer = writer or pq.ParquetWriter(str(Path(output) / "part-00000.parquet"), routed.schema)
                writer.write_batch(routed)
                done += routed.num_rows
                if progress is not None:
                    progress(done, total)
    finally:
        if writer is not None:
            writer.close()
    return done


def _in_order(pool: ThreadPoolExecutor, fn: Callable[[Any], Any], items: Iterator[Any], ahead: int) -> Iterator[Any]:
    """fn over items on the pool, results in the items' order, at most ``ahead`` submitted and not yet taken (an
    error in fn is raised here, at its item)."""
    pending: deque[Future] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def _ray(files: list[str], output: str, snapshot: Any, *, workers: int, batch_rows: int,
         progress: Progress | None, arguments: dict[str, Any]) -> int:
    import ray

    from ._ray import ray_route

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        routed = ray_route(ray.data.read_parquet(files), snapshot, batch_rows=batch_rows, **arguments)
        routed.write_parquet(output)
        rows = _written_rows(output)
    finally:
        if started_here:
            ray.shutdown()
    if progress is not None:
        progress(rows, rows)
    return rows


def _spark(files: list[str], output: str, snapshot: Any, *, workers: int, batch_rows: int,
           progress: Progress | None, arguments: dict[str, Any]) -> int:
    from ._spark import local_session, spark_route

    session = local_session(workers, batch_rows=batch_rows)
    try:
        frame = session.read.parquet(*files)
        routed = spark_route(frame, snapshot, partitions=workers * 2, **arguments)
        routed.write.mode("overwrite").parquet(output)
    finally:
        session.stop()
    rows = _written_rows(output)
    if progress is not None:
        progress(rows, rows)
    return rows


def _written_rows(output: str) -> int:
    return count_rows(sorted(str(p) for p in Path(output).rglob("*.parquet")))


#: engine name -> runner(files, output, snapshot, workers=, batch_rows=, progress=, arguments=) -> rows written
ENGINES: dict[str, Callable[..., int]] = {"local": _local, "ray": _ray, "spark": _spark}


def read_routed(output: str | Path) -> pa.Table:
    """Every part file route_parquet wrote, as one table."""
    return ds.dataset(str(output), format="parquet").to_table()
