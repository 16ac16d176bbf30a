"""Repair leaves a consistent store, and checksums mean something (issue 25).

After a repair that lost usage rows, agent stats count what usage holds (before: 700 vs 600 and "healthy"); the
doctor checks stats against usage both ways and the budget ledger against usage; a damaged newest manifest is
rolled back past, saying which write is lost (before: "unrepairable" in 8 of 24 flips, raw Rust panics); a file
changed after a process verified it is verified again when re-read (before: once per process); a store copied
without its ``.integrity`` folder is "unverified" until a repair reads it in full and records it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
from _stores import six_table_store

import tinydancer_duck as td
from tinydancer_duck import cli
from tinydancer_duck.cli._doctor import check_store
from tinydancer_duck.store import TABLES

WRITES, PER_WRITE = 7, 100


def _flip(path: Path, position: int | None = None, rng: random.Random | None = None) -> None:
    raw = bytearray(path.read_bytes())
    position = len(raw) // 2 if position is None else position
    raw[position] ^= 1 << (rng.randrange(8) if rng else 4)
    path.write_bytes(bytes(raw))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a changed file has a new mtime


def _newest(folder: Path, pattern: str = "*") -> Path:
    return max(folder.glob(pattern), key=lambda p: p.stat().st_mtime_ns)


def _usage_store(path: Path) -> td.Engine:
    engine = td.Engine(path, embedder="hashing")
    engine.register_agent("bot", "llm", ["chat"], cost_per_call=0.01)
    engine.budgets.set(100.0)
    for w in range(WRITES):
        engine.usage.record(["bot"] * PER_WRITE, [0.01] * PER_WRITE, [True] * PER_WRITE, [10.0] * PER_WRITE,
                            request_id=[f"r{w}-{i}" for i in range(PER_WRITE)])
    return engine


def test_a_repair_that_loses_usage_recounts_the_stats_from_what_survived(tmp_path, capsys):
    store = tmp_path / "s"
    _usage_store(store)
    _flip(_newest(store / "usage.lance" / "data"))
    assert cli.main(["doctor", "--store", str(store), "--repair"]) == 0
    out = capsys.readouterr().out
    assert "100 row(s) of them are lost" in out and "total_requests 700 -> 600" in out
    engine = td.Engine(store, embedder="hashing")
    usage = engine.store.read("usage")
    assert engine.get_agent("bot")["total_requests"] == usage.num_rows == 600
    assert engine.budgets.status()["spent"][0] == pytest.approx(float(np.sum(usage["cost"].to_numpy())))
    assert check_store(store).healthy


def test_the_doctor_checks_stats_against_usage_both_ways(tmp_path):
    store = tmp_path / "s"
    engine = _usage_store(store)
    engine.update_agent_metrics("bot", 12.0, True)  # an outcome reported without a usage row: counted, fine
    report = check_store(store)
    assert report.healthy and any("counts 1 request(s) more than the usage table holds" in line
                                  for line in report.lines), report.text()
    agents = engine.store.read("agents")
    low = agents.set_column(agents.schema.get_field_index("total_requests"), "total_requests",
                            pa_int([650]))
    engine.store.upsert("agents", low)
    assert any("counts 650 requests, but the usage table holds 700" in p for p in check_store(store).problems)
    (store / ".quarantine" / "usage").mkdir(parents=True)  # usage lost rows after the stats were written
    (store / ".quarantine" / "usage" / "repairs.txt").write_text("lost\n")
    engine.store.upsert("agents", agents.set_column(agents.schema.get_field_index("total_requests"),
                                                    "total_requests", pa_int([900])))
    assert any("counts 900 requests, but the usage table holds only 700" in p for p in check_store(store).problems)
    assert cli.main(["doctor", "--store", str(store), "--repair"]) == 0
    assert td.Engine(store, embedder="hashing").get_agent("bot")["total_requests"] == 700


def pa_int(values):
    import pyarrow as pa

    return pa.array(values, pa.int64())


def test_the_budget_ledger_is_checked_against_usage(tmp_path):
    store = tmp_path / "s"
    engine = _usage_store(store)
    engine.route_one("hello")  # a budgeted route: the ledger exists
    state = json.loads((store / ".ledger.json").read_text())
    state["settled"].append(["bot", 3.5, engine.store.version("usage") + 50, 2**62])
    (store / ".ledger.json").write_text(json.dumps(state))
    assert any("budget ledger holds $3.5" in p for p in check_store(store).problems)
    assert cli.main(["doctor", "--store", str(store), "--repair"]) == 0
    assert check_store(store).healthy


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A store whose six tables each have rows and at least three versions."""
    path = tmp_path_factory.mktemp("manifests") / "template"
    six_table_store(path)
    return path


@pytest.mark.parametrize("integrity", [True, False], ids=["checksummed", "copied-without-integrity"])
@pytest.mark.parametrize("table", TABLES)
def test_a_damaged_newest_manifest_goes_back_one_write(template, tmp_path, table, integrity, capsys):
    rng = random.Random(zlib.crc32(f"{table}-{integrity}".encode()))
    for trial in range(3):
        store = tmp_path / f"s{trial}"
        shutil.copytree(template, store, ignore=None if integrity else shutil.ignore_patterns(".integrity"))
        manifest = min((store / f"{table}.lance" / "_versions").glob("*.manifest"), key=lambda p: int(p.stem))
        newest = (1 << 64) - 1 - int(manifest.stem)
        _flip(manifest, rng.randrange(manifest.stat().st_size), rng)
        try:
            engine = td.Engine(store, embedder="hashing")
            engine.store.read(table)
            engine.snapshot()
        except td.TinydancerError as exc:  # never a raw panic: a named StoreError
            assert table in str(exc) or "LanceDB failed inside" in str(exc), str(exc)
        capsys.readouterr()
        assert cli.main(["doctor", "--store", str(store), "--repair"]) in (0, 1)  # never an error of its own
        out = capsys.readouterr().out
        report = check_store(store)
        if not integrity and "manifest(s)" not in out:
            continue  # a flip LanceDB did not notice, in a file nothing can check: the table still reads
        assert report.healthy, out + report.text()
        assert f"version {newest - 1} is its newest now" in out or "reads in full and is the newest again" in out
        td.Engine(store, embedder="hashing").store.read(table)  # it reads again


def test_a_file_changed_after_its_check_is_checked_again(tmp_path):
    """Before: a process verified each file once, so a long-lived reader re-read a flipped file silently."""
    store = tmp_path / "s"
    reader = _usage_store(store)
    assert reader.store.read("usage").num_rows == WRITES * PER_WRITE  # every file verified by this process
    _flip(_newest(store / "usage.lance" / "data"))
    td.Engine(store, embedder="hashing").usage.record("bot", 0.01, True, 10.0)  # another writer: a re-read
    with pytest.raises(td.StoreError, match=r"'usage' .* is damaged: .*does not match the checksum"):
        reader.store.read("usage")


def test_a_store_copied_without_its_integrity_folder_is_unverified_until_repaired(tmp_path, capsys):
    _usage_store(tmp_path / "s")
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "s", copy, ignore=shutil.ignore_patterns(".integrity"))
    report = check_store(copy)
    assert not report.healthy and sum("is unverified" in p for p in report.problems) == 3, report.text()
    assert cli.main(["doctor", "--store", str(copy), "--repair"]) == 0
    assert "read in full and recorded checksums" in capsys.readouterr().out
    assert check_store(copy).healthy
    _flip(_newest(copy / "usage.lance" / "data"))  # now a changed byte is caught again
    with pytest.raises(td.StoreError, match="damaged"):
        td.Engine(copy, embedder="hashing").store.read("usage")


def test_a_table_with_a_damaged_column_name_is_reported_not_a_crash(tmp_path, capsys):
    """Found by the manifest flips without checksums: a flip that renames a column crashed the doctor with a raw
    KeyError (exit 2) from a check that needed that column."""
    import lancedb

    _usage_store(tmp_path / "s")
    db = lancedb.connect(str(tmp_path / "s"))
    usage = db.open_table("usage").to_arrow()
    db.drop_table("usage")
    db.create_table("usage", usage.rename_columns(["ts", "request_id", "agenT", *usage.column_names[3:]]))
    assert cli.main(["doctor", "--store", str(tmp_path / "s")]) == 1
    out = capsys.readouterr().out
    assert "table 'usage' lacks column(s) agent" in out and "unexpected column(s) agenT" in out
