"""The corruption matrix: every table x (its version folder lost, its newest manifest lost, a data file truncated,
one bit of a data file flipped). Each must give a clear StoreError or the correct answer, never a silently wrong
one; `tinydancer doctor` must flag each; `doctor --repair` must leave a healthy store wherever the damage is
repairable (all but a lost version folder), after backing it up.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _stores import six_table_store

import tinydancer_duck as td
from tinydancer_duck import cli
from tinydancer_duck.cli._doctor import check_store
from tinydancer_duck.store import TABLES

RESULTS: dict[tuple[str, str], str] = {}


def _newest_data_file(folder: Path) -> Path:
    return max((folder / "data").iterdir(), key=lambda p: p.stat().st_mtime_ns)


def lost_version_folder(folder: Path) -> None:
    shutil.rmtree(folder / "_versions")


def lost_newest_manifest(folder: Path) -> None:
    manifests = sorted((folder / "_versions").glob("*.manifest"), key=lambda p: int(p.stem))
    manifests[0].unlink()  # v2 manifest names count down: the smallest is the newest version


def truncated_data_file(folder: Path) -> None:
    data = _newest_data_file(folder)
    os.truncate(data, data.stat().st_size // 2)


def flipped_bit(folder: Path) -> None:
    data = _newest_data_file(folder)
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    data.write_bytes(bytes(raw))


DAMAGE = {f.__name__: f for f in (lost_version_folder, lost_newest_manifest, truncated_data_file, flipped_bit)}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A store whose six tables each have rows and at least two versions; and each table's rows."""
    path = tmp_path_factory.mktemp("damage") / "template"
    engine = six_table_store(path)
    assert all(engine.store.info(t)["versions"] >= 3 for t in TABLES)
    assert check_store(path).healthy, check_store(path).text()
    return path, {t: _rows(engine, t) for t in TABLES}


def _rows(engine: td.Engine, table: str) -> list[str]:
    return sorted(map(repr, engine.store.read(table).to_pylist()))


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("table", TABLES)
def test_damage_gives_an_error_or_the_right_answer_and_the_doctor_flags_it(template, tmp_path, table, damage,
                                                                           capsys):
    path, good = template
    store = tmp_path / "store"
    shutil.copytree(path, store)
    DAMAGE[damage](store / f"{table}.lance")

    report = check_store(store)
    assert not report.healthy and any(repr(table) in problem for problem in report.problems), report.text()
    assert cli.main(["doctor", "--store", str(store)]) == 1

    try:  # a fresh connection: what a user would see next
        engine = td.Engine(store, embedder="hashing")
        got = _rows(engine, table)
        engine.snapshot()
        outcome = "correct" if got == good[table] else "WRONG"
    except td.StoreError as exc:
        assert table in str(exc) and "doctor" in str(exc), str(exc)
        outcome = "StoreError"
    assert outcome in ("correct", "StoreError"), f"{table} x {damage}: a silently wrong answer"
    RESULTS[(table, damage)] = outcome

    capsys.readouterr()
    assert cli.main(["doctor", "--store", str(store), "--repair"]) == (1 if damage == "lost_version_folder" else 0)
    out = capsys.readouterr().out
    assert "repair: backed up the store to" in out
    if damage != "lost_version_folder":  # repaired: it reads again (an older version of it) and routing works
        engine = td.Engine(store, embedder="hashing")
        _rows(engine, table)
        engine.snapshot()
        RESULTS[(table, damage)] += ", repaired"


def test_report_the_matrix():
    """Printed for the closing report (pytest -s)."""
    for (table, damage), outcome in sorted(RESULTS.items()):
        print(f"{table:15s} {damage:22s} {outcome}")
    assert all(o.startswith(("StoreError", "correct")) for o in RESULTS.values())


def test_a_table_that_cannot_be_opened_is_never_replaced(tmp_path):
    """The bug this fixes: a lost _versions folder made Store.table() create a new, empty table over it (budget spend
    $10 -> $0). Now every call that needs the table fails, and the folder is untouched."""
    engine = td.Engine(tmp_path / "s", embedder="hashing")
    engine.register_agent("gpt-4", "llm", ["code"], cost_per_call=1.0)
    engine.budgets.set(10.0, agent="gpt-4")
    engine.usage.record("gpt-4", 10.0, True, 100.0)
    shutil.rmtree(tmp_path / "s" / "usage.lance" / "_versions")
    files = sorted(p.name for p in (tmp_path / "s" / "usage.lance").rglob("*"))
    engine = td.Engine(tmp_path / "s", embedder="hashing")
    with pytest.raises(td.StoreError, match="'usage' exists .* but cannot be opened"):
        engine.route(["write code"])
    with pytest.raises(td.StoreError, match="usage"):
        engine.budgets.status()
    assert sorted(p.name for p in (tmp_path / "s" / "usage.lance").rglob("*")) == files
