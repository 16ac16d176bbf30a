"""A store's own files are data (issue 25): the write journal and the lock files, attacked.

A journal naming a table by absolute or ``../`` path creates nothing outside the store; a half-done write is
recognized by the rows it wrote, so it is finished even after other writers moved its table on (before: every
``Engine()`` raised and ``doctor --repair`` failed the same way); what can never be finished is set aside with a
reason, never an exception that blocks ``Engine()``; opening a store never waits on a live writer; a paused lock
holder makes writers fail after the lock timeout, naming its pid.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tinydancer_duck as td
from tinydancer_duck import cli
from tinydancer_duck.cli._doctor import check_store
from tinydancer_duck.settings import Settings
from tinydancer_duck.store import USAGE_SCHEMA, Store, _journal

CONTEXT = multiprocessing.get_context("spawn")


def _engine(path: Path, **kwargs) -> td.Engine:
    engine = td.Engine(path, embedder="hashing", **kwargs)
    engine.register_agent("bot", "llm", ["chat"], cost_per_call=0.01)
    return engine


def _files(root: Path, skip: Path) -> set[Path]:
    return {p for p in root.rglob("*") if skip not in p.parents and p != skip}


def _intent(side: Path, steps: list[dict], rows: pa.Table | None = None) -> Path:
    folder = side / ".journal" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    (folder / "intent.json").write_text(json.dumps({"pid": 1, "steps": steps}))
    if rows is not None:
        _journal._write(folder / "0.arrow", rows)
    return folder


@pytest.mark.parametrize("name", ["/tmp/td-escape-{}/abs", "../../td-escape-{}", "../escape-{}", "agents/../../x"])
def test_a_journal_naming_a_path_creates_nothing_outside_the_store(tmp_path, name):
    """Before: opening the store created folders and .lock files at the path the journal named."""
    store = tmp_path / "box" / "store"
    _engine(store)
    name = name.format(uuid.uuid4().hex[:8])
    rows = pa.table({"name": ["bot"], "total_requests": [5]})
    _intent(store, [{"table": name, "op": "upsert", "key": "name", "saved": True, "version": 1}], rows)
    _intent(store, [{"table": "agents", "op": "upsert", "key": "../../k", "saved": True, "version": 1}], rows)
    before = _files(tmp_path, store)

    engine = td.Engine(store, embedder="hashing")  # opens: the intents are set aside, never raised
    assert engine.get_agent("bot")["total_requests"] == 0  # nothing of them was applied
    assert _files(tmp_path, store) == before and not (name.startswith("/") and Path(name).parent.exists())
    notes = " ".join(engine.store.recovery_notes)
    assert notes.count("set aside") == 2 and "intent.json" in notes and "is not a safe name" in notes
    report = check_store(store)
    assert any("could not be finished and was set aside" in p for p in report.problems), report.text()
    assert cli.main(["doctor", "--store", str(store), "--repair"]) == 0
    assert check_store(store).healthy and (store / ".quarantine" / "journal").is_dir()
    with pytest.raises(td.StoreError, match="not a safe name"), engine.store.held("../../x"):
        pass


def _crash_between_commits(monkeypatch, engine: td.Engine, write) -> None:
    """Run ``write`` with the agents commit of its two-commit write failing, as a kill between them would."""
    real = Store.upsert

    def failing(self, name, rows, key="name"):
        if name == "agents":
            raise td.StoreError("killed between the two commits")
        return real(self, name, rows, key=key)

    monkeypatch.setattr(Store, "upsert", failing)
    with pytest.raises(td.StoreError, match="earlier part of this write was committed"):
        write()
    monkeypatch.setattr(Store, "upsert", real)
    assert engine.store.pending()


def _usage_rows(request_ids: list[str], agent: str = "elsewhere") -> pa.Table:
    return pa.Table.from_pylist([{"ts": 1_700_000_000_000_000, "request_id": r, "agent": agent, "cost": 0.25,
                                  "latency_ms": 5.0, "success": True} for r in request_ids], schema=USAGE_SCHEMA)


def _another_writer_appends(path: Path, n: int) -> None:
    """Rows appended by a writer that does not take this machine's locks (another machine on shared storage)."""
    import lancedb

    lancedb.connect(str(path)).open_table("usage").add(_usage_rows([f"other-{i}" for i in range(n)]))


def test_a_record_left_half_done_is_finished_after_the_table_moved_on(tmp_path, monkeypatch):
    """Before: the journal expected the usage table to hold N or N+1 rows; after another writer appended, every
    Engine() raised "expected 'usage' to hold ... rows" and doctor --repair failed the same way."""
    store = tmp_path / "s"
    engine = _engine(store)
    _crash_between_commits(monkeypatch, engine, lambda: engine.usage.record("bot", 0.5, True, 42.0,
                                                                            request_id="the-event"))
    _another_writer_appends(store, 3)
    reopened = td.Engine(store, embedder="hashing")  # finishes it: the event is found by its row
    usage = reopened.store.read("usage")
    assert usage["request_id"].to_pylist().count("the-event") == 1 and usage.num_rows == 4
    assert reopened.get_agent("bot")["total_requests"] == 1 and not reopened.store.pending()
    assert check_store(store).healthy, check_store(store).text()


def test_an_ingest_left_half_done_is_finished_after_the_table_moved_on(tmp_path, monkeypatch):
    store = tmp_path / "s"
    engine = _engine(store)
    log = tmp_path / "log.parquet"
    pq.write_table(pa.table({"request_id": [f"r{i}" for i in range(5000)], "agent": ["bot"] * 5000,
                             "cost": [0.001] * 5000, "success": [True] * 5000, "latency_ms": [10.0] * 5000}), log)
    _crash_between_commits(monkeypatch, engine, lambda: engine.usage.ingest(log, ts="now", batch_rows=700))
    _another_writer_appends(store, 7)
    assert cli.main(["doctor", "--store", str(store), "--repair"]) == 0  # doctor --repair finishes it too
    reopened = td.Engine(store, embedder="hashing")
    assert reopened.store.read("usage").num_rows == 5007 and reopened.get_agent("bot")["total_requests"] == 5000
    assert reopened.usage.ingest(log, ts="now").already_stored == 5000  # a re-run stores nothing twice


def test_a_write_that_never_committed_is_rolled_forward_from_the_journal(tmp_path):
    """A kill before the usage commit leaves the intent and its rows; found nowhere in the table (which other
    writers moved on meanwhile), the event is appended from the journal's copy and counted once."""
    store = tmp_path / "s"
    engine = _engine(store)
    folder = _intent(store, [{"table": "usage", "op": "append", "key": "name", "saved": True,
                              "version": engine.store.version("usage")},
                             {"table": "agents", "op": "upsert", "key": "name", "saved": True, "version": None}],
                     _usage_rows(["lost-kill"], agent="bot"))
    agents = engine.store.read("agents")
    _journal._write(folder / "1.arrow", agents.set_column(agents.schema.get_field_index("total_requests"),
                                                          "total_requests", pa.array([1], pa.int64())))
    _another_writer_appends(store, 2)
    reopened = td.Engine(store, embedder="hashing")
    assert reopened.store.read("usage")["request_id"].to_pylist().count("lost-kill") == 1
    assert reopened.get_agent("bot")["total_requests"] == 1 and not reopened.store.pending()


def test_an_intent_that_can_never_be_finished_is_set_aside(tmp_path):
    store = tmp_path / "s"
    engine = _engine(store)
    engine.usage.record(["bot", "bot"], [0.1, 0.2], [True, True], [1.0, 2.0], request_id=["a", "b"])
    half = engine.store.read("usage").slice(0, 1)  # one row of two found: the append cannot be recognized
    two = pa.concat_tables([half, half.set_column(1, "request_id", pa.array(["never-written"]))])
    _intent(store, [{"table": "usage", "op": "append", "key": "name", "saved": True, "version": 1},
                    {"table": "agents", "op": "upsert", "key": "name", "saved": False, "version": None}], two)
    (store / ".journal" / "garbage").mkdir()
    (store / ".journal" / "garbage" / "intent.json").write_text("{not json")
    reopened = td.Engine(store, embedder="hashing")
    assert len(reopened.store.recovery_notes) == 2 and not reopened.store.pending()
    assert "only 1 of the 2 rows" in " ".join(reopened.store.recovery_notes)
    assert len(_journal.quarantined(store)) == 2
    assert reopened.store.read("usage").num_rows == 2  # nothing was guessed


def hold_agents_lock(store: str, ready: str, seconds: float, stop: bool) -> None:
    """Take the agents lock (as a long write does), leave an intent in the journal, then hold it or stop."""
    import json

    import tinydancer_duck as td

    engine = td.Engine(store, embedder="hashing")
    with engine.store.locked("agents"):
        intent = Path(store) / ".journal" / "live-intent"
        intent.mkdir(parents=True, exist_ok=True)
        (intent / "intent.json").write_text(json.dumps({"pid": os.getpid(), "steps": []}))
        Path(ready).touch()
        if stop:
            os.kill(os.getpid(), signal.SIGSTOP)
        time.sleep(seconds)


def _holding(tmp_path: Path, store: Path, *, seconds: float = 30.0, stop: bool = False):
    ready = tmp_path / "ready"
    child = CONTEXT.Process(target=hold_agents_lock, args=(str(store), str(ready), seconds, stop))
    child.start()
    deadline = time.time() + 120
    while not ready.exists() and time.time() < deadline:
        time.sleep(0.02)
    assert ready.exists()
    return child


def test_opening_a_store_never_waits_for_a_live_writer(tmp_path):
    store = tmp_path / "s"
    _engine(store)
    child = _holding(tmp_path, store)
    try:
        started = time.perf_counter()
        engine = td.Engine(store, embedder="hashing")  # an intent is pending and the journal lock is held
        engine.route_one("hello")
        assert time.perf_counter() - started < 10.0
        assert any(f"in progress: process {child.pid} is writing it" in p for p in check_store(store).problems)
    finally:
        child.kill()
        child.join()


def test_a_paused_lock_holder_fails_writers_after_the_timeout_naming_its_pid(tmp_path):
    """Before: a SIGSTOPped holder blocked every writer forever."""
    store = tmp_path / "s"
    _engine(store)
    child = _holding(tmp_path, store, stop=True)
    try:
        engine = td.Engine(store, embedder="hashing", settings=Settings(lock_timeout_s=1.0))
        started = time.perf_counter()
        with pytest.raises(td.StoreError, match=rf"lock 'agents' .* is held by process {child.pid} \(stopped"):
            engine.register_agent("other", "llm", ["x"], cost_per_call=0.1)
        assert 1.0 <= time.perf_counter() - started < 10.0
        assert engine.list_agents()["name"].to_pylist() == ["bot"]  # nothing was written
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join()
    td.Engine(store, embedder="hashing").register_agent("other", "llm", ["x"], cost_per_call=0.1)  # free again


def test_bad_store_locations_are_clear_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(td.InvalidArgument, match=r"invalid store='s3:/bucket/x': .*write s3://bucket/x"):
        td.Engine("s3:/bucket/x", embedder="hashing")
    assert not (tmp_path / "s3:").exists()
    assert cli.main(["doctor", "--store", "/proc/1/root"]) in (1, 2)
    assert cli.main(["agents", "list", "--store", "/proc/1/root"]) == 2
    err = capsys.readouterr().err
    assert "cannot open store at /proc/1/root" in err and "Traceback" not in err
