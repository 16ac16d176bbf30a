"""Durability and compaction: many small writes do not make reads slow, compaction is automatic, and readers in
another process keep working while a table is compacted. (benchmarks/bench_durability.py runs 100K writes.)"""

from __future__ import annotations

import multiprocessing
import time
from datetime import timedelta

import pyarrow.compute as pc
from _workers import read_forever

import tinydancer_duck as td
from tinydancer_duck.store import _store as store_module

WRITES = 1200


def _read_ms(engine: td.Engine, table: str) -> float:
    best = float("inf")
    for _ in range(3):
        engine.store._snapshots.clear()
        started = time.perf_counter()
        engine.store.read(table)
        best = min(best, time.perf_counter() - started)
    return best * 1e3


def test_many_small_writes_are_compacted_automatically_and_reads_stay_fast(tmp_path):
    engine = td.Engine(tmp_path / "s", embedder="hashing")
    engine.register_agent("bot", "llm", ["chat"], cost_per_call=0.001)
    for i in range(100):
        engine.usage.record("retired-bot", 0.001, True, 10.0, request_id=f"r{i}")
    early = _read_ms(engine, "usage")
    for i in range(100, WRITES):  # one record per write: one LanceDB version and one fragment each
        engine.usage.record("retired-bot" if i % 10 else "bot", 0.001, True, 10.0, request_id=f"r{i}")
    usage = engine.store.read("usage")
    assert usage.num_rows == WRITES and pc.count_distinct(usage["request_id"]).as_py() == WRITES
    assert engine.get_agent("bot")["total_requests"] == WRITES // 10 - 10
    info = engine.store.info("usage")
    assert info["version"] > WRITES  # every write was its own version ...
    assert info["fragments"] < store_module.COMPACT_FRAGMENTS + store_module.COMPACT_CHECK_EVERY  # ... compacted
    late = _read_ms(engine, "usage")
    assert late < 5 * early + 20, (early, late)  # without compaction: ~75 ms per 300 fragments, growing


def test_compact_keeps_rows_and_cleans_old_versions(tmp_path):
    engine = td.Engine(tmp_path / "s", embedder="hashing")
    for i in range(20):
        engine.usage.record("a", i / 8, True, 1.0)
    before = engine.store.read("usage")
    time.sleep(0.05)
    report = engine.store.compact("usage", cleanup_older_than=timedelta(milliseconds=10))["usage"]
    assert report["fragments_before"] == 20 and report["fragments_after"] == 1
    assert report["versions_after"] < report["versions_before"]
    after = engine.store.read("usage")
    assert after.sort_by("cost").equals(before.sort_by("cost"))
    assert td.Engine(tmp_path / "s", embedder="hashing").store.read("usage").num_rows == 20


def test_readers_in_another_process_keep_working_during_compaction(tmp_path):
    path = str(tmp_path / "s")
    engine = td.Engine(path, embedder="hashing")
    for i in range(60):
        engine.usage.record("a", 0.5, True, 1.0)
    out = tmp_path / "reader.txt"
    reader = multiprocessing.get_context("spawn").Process(target=read_forever,
                                                           args=(path, "usage", 60, 8.0, str(out)))
    reader.start()
    time.sleep(3.0)  # let the reader start reading
    compactions = 0
    while reader.is_alive():
        for _ in range(10):
            engine.usage.record("a", 0.5, True, 1.0)
        engine.store.compact("usage")  # default margin: versions a reader may still use are kept
        compactions += 1
    reader.join()
    reads, errors, smallest, _ = out.read_text().split("\n")[0].split()
    assert reader.exitcode == 0 and compactions >= 3
    assert int(errors) == 0, out.read_text()
    assert int(reads) > 20 and int(smallest) >= 60
