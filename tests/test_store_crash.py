"""Crash safety: a writer killed with SIGKILL mid-ingest or mid-model-save leaves a consistent, readable store.

``Usage.ingest`` is all-or-nothing (one streamed usage commit and one agents commit, tied by an intent journal) and
idempotent by request_id: after a kill at any moment the usage table holds none or all of the log, the agent's stats
agree with the rows stored, and re-running the ingest stores each request once, with the stats a single clean
ingest gives. A saved model row is present whole (and loads) or absent. The next ``connect()`` finishes whatever
the kill left half done, and the store keeps accepting writes.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _workers import ingest_once, record_forever, record_then_die, save_models_forever, short_lived_context

import tinydancer_duck as td
from tinydancer_duck.cli import _doctor as doctor

ROWS, BATCH = 60_000, 2_000
KILLS_DURING_INGEST = 6
KILLS_DURING_SAVE = 2
RECORD_KILLS = 8
BOT_ROWS = sum(1 for i in range(ROWS) if i % 3)
STATS = ("avg_latency_ms", "success_rate", "quality_score", "total_requests")


def _kill_when_ready(ctx, target, args, ready: Path, delay: float, *, may_finish: bool = False) -> None:
    proc = ctx.Process(target=target, args=args)
    proc.start()
    deadline = time.time() + 120
    while not ready.exists() and time.time() < deadline and proc.is_alive():
        time.sleep(0.005)
    assert ready.exists(), f"the writer never started writing (exit code {proc.exitcode})"
    proc.join(timeout=delay)  # the delay, or until the writer ends on its own
    if proc.is_alive():
        os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=60)
    assert proc.exitcode == -signal.SIGKILL or (may_finish and proc.exitcode == 0), proc.exitcode
    ready.unlink()


def _log(path: Path) -> Path:
    pq.write_table(pa.table({
        "request_id": [f"req-{i:05d}" for i in range(ROWS)],
        "agent": ["bot" if i % 3 else "retired" for i in range(ROWS)],
        "cost": [0.001] * ROWS, "success": [i % 7 != 0 for i in range(ROWS)],
        "latency_ms": [float(i % 50) for i in range(ROWS)], "quality": [(i % 10) / 10 for i in range(ROWS)],
    }), path)
    return path


def _stats(engine: td.Engine) -> dict:
    agent = engine.get_agent("bot")
    return {key: agent[key] for key in STATS}


def test_ingest_killed_at_random_points_then_rerun_stores_each_row_once(tmp_path):
    log = _log(tmp_path / "log.parquet")
    clean = td.Engine(tmp_path / "clean", embedder="hashing")  # the recomputation: one ingest, never killed
    clean.register_agent("bot", "llm", ["chat"], cost_per_call=0.01)
    clean.usage.ingest(log, batch_rows=BATCH, ts="now")
    expected = _stats(clean)
    template = tmp_path / "template"
    td.Engine(template, embedder="hashing").register_agent("bot", "llm", ["chat"], cost_per_call=0.01)

    ctx = short_lived_context()
    rng = random.Random(0)
    # the first trial runs to the end and measures how long an ingest takes; the second is killed as it starts (so
    # one kill surely lands before the commit, however slow the first trial was); the others at random moments
    outcomes, span = Counter(), 60.0
    for trial in range(KILLS_DURING_INGEST):
        store = tmp_path / f"trial-{trial}"
        shutil.copytree(template, store)
        ready = tmp_path / "ready"
        delay = span if trial == 0 else 0.0 if trial == 1 else rng.uniform(0.0, span)
        _kill_when_ready(ctx, ingest_once, (str(store), str(log), BATCH, str(ready)), ready, delay, may_finish=True)
        if trial == 0:
            span = 1.2 * float(ready.with_suffix(".done").read_text())
        engine = td.Engine(store, embedder="hashing")  # next open: finishes a half-done write, no repair step
        ids = engine.store.read("usage")["request_id"].to_pylist()
        assert len(ids) in (0, ROWS) and len(set(ids)) == len(ids), len(ids)  # none or all, never twice
        outcomes["all" if ids else "none"] += 1
        assert engine.get_agent("bot")["total_requests"] == (BOT_ROWS if ids else 0)  # stats agree with rows
        assert doctor.check_store(store).healthy, doctor.check_store(store).text()
        report = engine.usage.ingest(log, batch_rows=BATCH, ts="now")  # the re-run
        usage = engine.store.read("usage")
        assert sorted(usage["request_id"].to_pylist()) == [f"req-{i:05d}" for i in range(ROWS)]
        assert report.rows == (0 if ids else ROWS)
        assert _stats(engine) == pytest.approx(expected)
    assert outcomes["none"] >= 1, outcomes  # some kills did land before the commit
    print(f"\ningest killed at random moments of a {span / 1.2:.2f} s ingest: {dict(outcomes)}; each re-run stored "
          "exactly the log, with the stats of one clean ingest")


def test_sigkill_during_model_saves_leaves_loadable_models(tmp_path):
    store = str(tmp_path / "store")
    td.Engine(store, embedder="hashing")
    ctx = short_lived_context()
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


@pytest.mark.parametrize("point", ["before_usage", "between", "after_agents"])
def test_record_usage_killed_between_its_commits_is_finished_by_the_next_open(tmp_path, point):
    """record_usage writes usage, then the agent's stats: two commits, tied by an intent. Killed at any point, the
    next Engine finishes it: the event is stored once and counted once in the stats."""
    store = str(tmp_path / "s")
    td.Engine(store, embedder="hashing").register_agent("bot", "llm", ["chat"], cost_per_call=0.01)
    child = short_lived_context().Process(target=record_then_die, args=(store, point))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 9, child.exitcode  # killed at that point
    assert doctor.check_store(store).problems  # the half-done write is reported ...
    engine = td.Engine(store, embedder="hashing")  # ... and finished on open
    usage = engine.store.read("usage")
    assert usage["request_id"].to_pylist() == ["the-event"]
    bot = engine.get_agent("bot")
    assert bot["total_requests"] == 1 and bot["avg_latency_ms"] == pytest.approx(0.9 * 1000.0 + 0.1 * 42.0)
    assert doctor.check_store(store).healthy


def test_record_usage_killed_at_random_moments_keeps_usage_and_stats_in_line(tmp_path):
    """Before: 14 of 30 kills left usage and agent stats out of line (two commits, no journal)."""
    store = str(tmp_path / "s")
    td.Engine(store, embedder="hashing").register_agent("bot", "llm", ["chat"], cost_per_call=0.01)
    ctx = short_lived_context()
    rng = random.Random(1)
    out_of_line = 0
    for _ in range(RECORD_KILLS):
        _kill_when_ready(ctx, record_forever, (store, str(tmp_path / "ready")), tmp_path / "ready",
                         rng.uniform(0.0, 0.4))
        engine = td.Engine(store, embedder="hashing")
        out_of_line += engine.get_agent("bot")["total_requests"] != engine.store.read("usage").num_rows
    print(f"\nrecord_usage: {RECORD_KILLS} SIGKILLs at random moments, {out_of_line} left usage and stats out of line")
    assert out_of_line == 0
    assert doctor.check_store(store).healthy, (doctor.check_store(store).text(), engine.store.recovery_notes)
