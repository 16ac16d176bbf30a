"""Crash safety: a writer killed with SIGKILL mid-ingest or mid-model-save leaves a readable store.

Atomic granularity: one LanceDB commit. ``Usage.ingest`` appends one commit per batch of ``batch_rows`` rows, so
after a kill every batch of the file is either wholly present or absent (an earlier batch of the same file may be
present while a later one is not); a saved model row is present whole (and loads) or absent. The next ``connect()``
works without repair, and the store keeps accepting writes.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from _workers import ingest_forever, save_models_forever

import tinydancer_duck as td
from tinydancer_duck.cli import _doctor as doctor

ROWS, BATCH = 1200, 100
KILLS_DURING_INGEST = 3
KILLS_DURING_SAVE = 2


def _kill_when_ready(ctx, target, args, ready: Path, delay: float) -> None:
    proc = ctx.Process(target=target, args=args)
    proc.start()
    deadline = time.time() + 120
    while not ready.exists() and time.time() < deadline and proc.is_alive():
        time.sleep(0.01)
    assert ready.exists(), f"the writer never started writing (exit code {proc.exitcode})"
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL, f"the writer ended on its own (exit code {proc.exitcode})"
    ready.unlink()


def test_sigkill_during_ingest_leaves_whole_batches_and_a_working_store(tmp_path):
    store = str(tmp_path / "store")
    td.Engine(store, embedder="hashing").register_agent("bot", "llm", ["chat"], cost_per_call=0.01)
    log = tmp_path / "log.parquet"
    pq.write_table(pa.table({
        "request_id": [f"req-{i:05d}" for i in range(ROWS)],
        "agent": ["bot" if i % 3 else "retired" for i in range(ROWS)],
        "cost": [0.001] * ROWS, "success": [True] * ROWS, "latency_ms": [float(i % 50) for i in range(ROWS)],
    }), log)
    ctx = multiprocessing.get_context("spawn")
    rng = random.Random(0)
    for _ in range(KILLS_DURING_INGEST):
        _kill_when_ready(ctx, ingest_forever, (store, str(log), BATCH, str(tmp_path / "ready")),
                         tmp_path / "ready", rng.uniform(0.0, 0.6))
        engine = td.Engine(store, embedder="hashing")  # next open: no repair step
        ids = engine.store.read("usage")["request_id"].to_pylist()
        per_batch = Counter(int(i[4:]) // BATCH for i in ids)
        per_id = Counter(ids)
        assert all(count % BATCH == 0 for count in per_batch.values()), per_batch
        for batch, count in per_batch.items():  # a batch is there whole: each of its ids equally often
            assert {per_id[f"req-{i:05d}"] for i in range(batch * BATCH, (batch + 1) * BATCH)} == {count // BATCH}
        assert doctor.check_store(store).healthy, doctor.check_store(store).text()
        con = td.connect(store, embedder="hashing")
        assert con.execute("SELECT count(*) FROM ruvector_list_agents()").fetchone()[0] == 1
        con.close()
    engine = td.Engine(store, embedder="hashing")
    before = engine.store.read("usage").num_rows
    assert before > 0, "no batch was written before any kill"  # the kills did land while batches were being written
    report = engine.usage.ingest(log, batch_rows=BATCH)  # writes still work after the kills
    assert report.rows == ROWS and engine.store.read("usage").num_rows == before + ROWS
    assert engine.get_agent("bot")["total_requests"] >= ROWS * 2 // 3


def test_sigkill_during_model_saves_leaves_loadable_models(tmp_path):
    store = str(tmp_path / "store")
    td.Engine(store, embedder="hashing")
    ctx = multiprocessing.get_context("spawn")
    for delay in (0.2, 0.7)[:KILLS_DURING_SAVE]:
        _kill_when_ready(ctx, save_models_forever, (store, str(tmp_path / "ready")), tmp_path / "ready", delay)
        engine = td.Engine(store, embedder="hashing")
        models = engine.classifier.list()
        versions = models["version"].to_pylist()
        assert len(versions) == len(set(versions)) >= 1
        for version in versions:  # every stored row is whole: it loads
            assert engine.classifier.load("crashy", version).labels == ("a", "b")
        assert engine.classifier.active().labels == ("a", "b")
        assert doctor.check_store(store).healthy, doctor.check_store(store).text()
