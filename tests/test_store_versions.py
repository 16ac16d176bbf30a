"""Table versions: asked of LanceDB once per consistency interval, and after it only when the table's manifest folder
changed (store/_stamps.py); another process's write is still seen within the interval."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import tinydancer_duck as td
from tinydancer_duck.store import _stamps
from tinydancer_duck.store._store import Store

REPO = Path(__file__).resolve().parents[1]
AGENT = {"name": "a", "agent_type": "llm", "capabilities": ["code"], "cost_per_call": 0.01}


def _counting(store: Store, monkeypatch) -> list[str]:
    """The tables whose version LanceDB is asked for from now on."""
    asked: list[str] = []
    table = Store.table

    def counted(self, name):
        asked.append(name)
        return table(self, name)

    monkeypatch.setattr(Store, "table", counted)
    return asked


def _settle(store: Store) -> int:
    """Wait until the agents folder's last change is settled, then read its version once (asking LanceDB)."""
    time.sleep(_stamps.SETTLED_NS / 1e9 + 0.02)
    store._versions.pop("agents", None)
    return store.version("agents")


def test_an_unchanged_table_is_not_asked_again(tmp_path, monkeypatch):
    engine = td.Engine(tmp_path / "s")
    engine.register_agents([AGENT])
    store = engine.store
    version = _settle(store)
    asked = _counting(store, monkeypatch)
    for _ in range(3):
        time.sleep(store.consistency_interval_s + 0.01)
        assert store.version("agents") == version
    assert asked == []


def test_a_recent_change_is_asked_again_until_it_settles(tmp_path, monkeypatch):
    """A folder changed within a filesystem tick of a read proves nothing (a second write could share its time)."""
    monkeypatch.setattr(_stamps, "SETTLED_NS", 3_600 * 10**9)  # "recent" whatever the machine's load
    engine = td.Engine(tmp_path / "s")
    engine.register_agents([AGENT])
    store = engine.store
    store._versions.pop("agents", None)
    store.version("agents")  # right after the write: its stamp is not settled
    assert not store._versions["agents"].settled
    asked = _counting(store, monkeypatch)
    time.sleep(store.consistency_interval_s + 0.01)
    store.version("agents")
    assert asked == ["agents"]


def test_another_process_write_is_seen_within_the_interval(tmp_path):
    engine = td.Engine(tmp_path / "s")
    engine.register_agents([AGENT])
    store = engine.store
    before = _settle(store)
    assert store.version("agents") == before
    code = ("import sys; import tinydancer_duck as td; td.Engine(sys.argv[1]).register_agents([{'name': 'b', "
            "'agent_type': 'llm', 'capabilities': ['x'], 'cost_per_call': 0.02}])")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "s")], check=True, cwd=REPO,
                   env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    time.sleep(store.consistency_interval_s + 0.01)
    assert store.version("agents") > before
    assert sorted(engine.snapshot().agents.name_list()) == ["a", "b"]


@pytest.mark.parametrize("gap", [0.0, 0.06])
def test_routing_reads_the_same_agents_whatever_the_gap(tmp_path, gap):
    """A live engine routing requests apart in time still decides from the store's current agents."""
    engine = td.Engine(tmp_path / "s")
    engine.register_agents([AGENT])
    for _ in range(3):
        time.sleep(gap)
        assert engine.route_one("write a function")["agent_name"] == "a"
    engine.register_agents([{**AGENT, "name": "b", "cost_per_call": 0.001}])
    time.sleep(gap)
    assert engine.route_one("write a function", optimize_for="cost")["agent_name"] == "b"
