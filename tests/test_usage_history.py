"""History is history (issue 25): an ingested log's events keep when they happened.

Before: a log without ``ts`` was stamped now, so a historical log with 10% failures opened every circuit breaker
and its spend landed in this month's budget; repeated request_ids within one log were all stored without a word;
a CSV log that was not UTF-8 failed with Arrow's error or "invalid request_id='ChunkedArray'".
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

import tinydancer_duck as td

ROWS = 20_000
LAST_YEAR = datetime.now(timezone.utc) - timedelta(days=400)


def _engine(tmp_path) -> td.Engine:
    engine = td.Engine(tmp_path / "s", embedder="hashing")
    engine.register_agent("bot", "llm", ["chat"], cost_per_call=0.01)
    engine.register_agent("backup", "llm", ["chat"], cost_per_call=0.02)
    engine.budgets.set(1000.0)
    return engine


def _log(path, rows: int = ROWS, *, ts: bool = False, ids: list[str] | None = None):
    """A log of ``rows`` events for 'bot', every tenth a failure, $0.25 each; ts spread over a day last year."""
    columns = {"request_id": ids or [f"r{i}" for i in range(rows)], "agent": ["bot"] * rows,
               "cost": [0.25] * rows, "success": [i % 10 != 0 for i in range(rows)], "latency_ms": [100.0] * rows}
    if ts:
        columns["ts"] = pa.array([LAST_YEAR + timedelta(seconds=4 * i) for i in range(rows)],
                                 pa.timestamp("us", tz="UTC"))
    pq.write_table(pa.table(columns), path)
    return path


def _spent(engine: td.Engine) -> float:
    return float(engine.budgets.status()["spent"][0])


def test_a_log_without_ts_needs_an_explicit_choice(tmp_path):
    engine = _engine(tmp_path)
    log = _log(tmp_path / "log.parquet")
    with pytest.raises(td.InvalidArgument, match=r"invalid ts=None: .*has no ts column: .*ts := 'now'") as caught:
        engine.usage.ingest(log)
    assert caught.value.argument == "ts"
    assert engine.store.count("usage") == 0 and engine.get_agent("bot")["total_requests"] == 0
    con = engine.connect()
    with pytest.raises(duckdb.Error, match="invalid ts=None"):
        con.execute(f"SELECT * FROM ruvector_ingest_usage('{log}')").fetchall()
    report = con.execute(f"SELECT rows FROM ruvector_ingest_usage('{log}', ts := TIMESTAMPTZ "
                         f"'{LAST_YEAR.isoformat()}')").fetchone()
    assert report == (ROWS,)
    stamps = engine.store.read("usage")["ts"].to_pylist()
    assert set(stamps) == {LAST_YEAR.replace(microsecond=LAST_YEAR.microsecond)}  # every row at the as_of moment


def test_history_opens_no_breaker_and_spends_nothing_this_period(tmp_path):
    engine = _engine(tmp_path)
    report = engine.usage.ingest(_log(tmp_path / "log.parquet", ts=True))
    assert report.rows == ROWS and engine.get_agent("bot")["total_requests"] == ROWS
    snapshot = engine.snapshot()
    assert not snapshot.circuit_open.any()  # 2,000 failures, all older than the breaker window
    assert _spent(engine) == 0.0  # $5,000 of last year is not this month's
    assert engine.route_one("hello", optimize_for="cost")["agent_name"] == "bot"
    assert engine.health.table().filter(engine.health.table()["agent"] == "bot")["state"][0] != "open"


def test_now_is_a_choice_that_counts_now(tmp_path):
    engine = _engine(tmp_path)
    engine.usage.ingest(_log(tmp_path / "log.parquet", 200), ts="now")
    assert _spent(engine) == pytest.approx(200 * 0.25)
    assert engine.snapshot().circuit_open[engine.snapshot().agents.index["bot"]]  # as the user asked


def test_a_null_ts_needs_the_choice_too(tmp_path):
    engine = _engine(tmp_path)
    stamps = [LAST_YEAR, None, LAST_YEAR]
    pq.write_table(pa.table({"agent": ["bot"] * 3, "cost": [0.1] * 3, "success": [True] * 3,
                             "latency_ms": [1.0] * 3, "ts": pa.array(stamps, pa.timestamp("us", tz="UTC"))}),
                   tmp_path / "nulls.parquet")
    with pytest.raises(td.InvalidArgument, match=r"invalid ts=None: is missing in row 1"):
        engine.usage.ingest(tmp_path / "nulls.parquet")
    assert engine.store.count("usage") == 0
    engine.usage.ingest(tmp_path / "nulls.parquet", ts=LAST_YEAR + timedelta(hours=1))
    assert sorted(engine.store.read("usage")["ts"].to_pylist()) == [LAST_YEAR, LAST_YEAR,
                                                                     LAST_YEAR + timedelta(hours=1)]


def test_repeated_request_ids_in_one_log_are_stored_once_and_counted(tmp_path):
    engine = _engine(tmp_path)
    ids = [f"r{i % 700}" for i in range(1000)]  # r0..r299 appear twice
    pq.write_table(pa.table({"request_id": ids, "agent": ["bot"] * 1000, "cost": np.arange(1000) / 1000,
                             "success": [True] * 1000, "latency_ms": [1.0] * 1000}), tmp_path / "dupes.parquet")
    report = engine.usage.ingest(tmp_path / "dupes.parquet", ts="now", batch_rows=256)
    assert (report.rows, report.duplicates, report.already_stored) == (700, 300, 0)
    usage = engine.store.read("usage")
    assert sorted(usage["request_id"].to_pylist()) == sorted(f"r{i}" for i in range(700))
    assert report.total_cost == pytest.approx(float(np.sum(np.arange(700) / 1000)))  # the first of each kept
    assert engine.get_agent("bot")["total_requests"] == 700
    again = engine.usage.ingest(tmp_path / "dupes.parquet", ts="now")
    assert (again.rows, again.duplicates, again.already_stored) == (0, 0, 1000)  # every row's id is stored


def test_a_log_that_grows_while_ingested_is_ingested_as_validated(tmp_path):
    engine = _engine(tmp_path)
    log = _log(tmp_path / "log.parquet", 3000, ts=True)
    grown = pa.concat_tables([pq.read_table(log), pq.read_table(_log(tmp_path / "more.parquet", 500, ts=True,
                                                                     ids=[f"new{i}" for i in range(500)]))])

    def grow(done: int, total: int) -> None:
        if done == 0:  # between the validating pass and the append
            pq.write_table(grown, log)

    report = engine.usage.ingest(log, progress=grow, batch_rows=1000)
    assert report.rows == 3000 and engine.store.count("usage") == 3000
    assert engine.get_agent("bot")["total_requests"] == 3000
    assert engine.usage.ingest(log).rows == 500  # the rows that arrived meanwhile, next time


def test_a_log_rewritten_while_ingested_writes_nothing(tmp_path):
    engine = _engine(tmp_path)
    log = _log(tmp_path / "log.parquet", 3000, ts=True)
    changed = pq.read_table(log)
    changed = changed.set_column(changed.schema.get_field_index("cost"), "cost", pa.array([9.0] * 3000))
    with pytest.raises(td.TinydancerError, match="changed while it was ingested"):
        engine.usage.ingest(log, progress=lambda done, total: done == 0 and pq.write_table(changed, log))
    assert engine.store.count("usage") == 0 and engine.get_agent("bot")["total_requests"] == 0
    assert not engine.store.pending()


@pytest.mark.parametrize("where", ["first block", "far down"])
def test_a_csv_log_that_is_not_utf8_is_named_clearly(tmp_path, where):
    engine = _engine(tmp_path)
    rows = 5 if where == "first block" else 60_000
    lines = [b"request_id,agent,cost,success,latency_ms"] + [b"r%d,bot,0.1,true,10" % i for i in range(rows)]
    lines.append(b"rX,b\xffot,0.1,true,10")
    (tmp_path / "log.csv").write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(td.InvalidArgument) as caught:
        engine.usage.ingest(tmp_path / "log.csv", ts="now")
    text = str(caught.value)
    assert "ChunkedArray" not in text and ("UTF-8" in text or "UTF8" in text), text
    assert caught.value.argument in ("agent", "path")
    assert engine.store.count("usage") == 0
    good = pcsv.read_csv(tmp_path / "log.csv", read_options=pcsv.ReadOptions(block_size=1 << 30)).num_rows
    assert good == rows + 1  # the file itself is a CSV Arrow reads (as bytes): the error is ours
