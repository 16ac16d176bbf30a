"""`tinydancer doctor --repair`: fix what can be fixed safely, after copying the whole store beside it, and leave
the store consistent: whatever was lost, what is derived from usage is brought back in line with the usage that
survived.

In order: for a table that cannot be opened, move its newest manifest(s) aside until it opens (the writes they made
are lost, and said so); for a table with damaged files, move them aside and restore its newest version that reads
in full without them; for a table whose newest manifests are lost, accept the newest readable version; record
checksums of files that have none (a table without any is read in full first). Then finish writes a killed process
left half done (one that cannot be finished is set aside, and filed under ``.quarantine`` once accounted for),
and recount from usage (:mod:`._doctor_usage`): fold in the usage events whose stats were never applied, bring
``total_requests`` of agents written before usage lost rows down to the events usage still holds (the running
averages keep what lost events taught: they happened, only their rows are gone), and drop budget-ledger entries
for usage versions the table never reached. Budget spend is always read from usage, so it is the spend that
survived. A store on object storage is not copied (LanceDB keeps its earlier versions there); its half-done writes
and derived state are repaired the same way. Then the store is checked again.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.errors import TinydancerError
from tinydancer_duck.store import (
    Store,
    accept_newest,
    adopt_checksums,
    backup,
    file_set_aside_writes,
    restore_readable,
    roll_back_manifests,
)

from ._doctor import DoctorReport, check_store


def repair_store(path: str | Path, storage_options: dict[str, str] | None = None) -> tuple[list[str], DoctorReport]:
    """Repair the store at ``path``; returns what was done (sentences) and the report of the check after."""
    report = check_store(path, storage_options)
    if report.healthy or not (report.facts or report.problems):
        return ["nothing to repair"], report
    root = report.path
    if report.remote:
        done = [(f"{root} is on object storage: it is not copied (LanceDB keeps its earlier versions there); its "
                "half-done writes and what is derived from usage are repaired")]
    else:
        done = [f"backed up the store to {backup(root)}"]
        done += _repair_tables(root, report.facts)
    done += _finish_and_recount(report)
    return done, check_store(path, storage_options)


def _repair_tables(root: Path, facts: dict[str, dict[str, Any]]) -> list[str]:
    """The file-level repairs of each damaged table (local stores)."""
    done = []
    for name, fact in facts.items():
        try:
            if "error" in fact:
                done.append(roll_back_manifests(root, name))
            elif fact["damaged"] or "read_error" in fact:
                done.append(restore_readable(root, name, [rel for rel, _ in fact["damaged"]]))
            elif fact["lost"] is not None:
                done.append(accept_newest(root, name))
            if ("error" in fact or fact["unverified"]) and (adopted := adopt_checksums(root, name)):
                done.append(f"table {name!r}: read in full and recorded checksums of {adopted} file(s)")
        except TinydancerError as exc:
            done.append(f"table {name!r} could not be repaired: {exc}")
    return done


def _finish_and_recount(report: DoctorReport) -> list[str]:
    """Finish half-done writes, then bring agent stats, route examples and the budget ledger in line with the
    tables as they are now."""
    identity, dim = report.identity, report.dim
    if identity is None or dim is None:
        return []
    done = []
    store = Store(report.path, embedder_identity=identity, dim=dim, storage_options=report.storage_options)
    if (finished := store.recover()):
        done.append(f"finished {finished} half-done write(s)")
    done += store.recovery_notes
    after = check_store(report.path, report.storage_options)
    if after.orphaned_routes:
        store.delete_keys("route_examples", "route", after.orphaned_routes)
        done.append(f"removed the examples of {len(after.orphaned_routes)} route(s) that no longer exist")
    if any(found.problem for found in after.counted.values()):
        done += _recount(report, after)
    done += [f"filed the set-aside write {moved} (accounted for by the recount)"
             for moved in file_set_aside_writes(report.path)]
    if (dropped := _drop_stale_ledger(store)):
        done.append(f"dropped {dropped} budget-ledger entr{'y' if dropped == 1 else 'ies'} for usage versions the "
                    "table never reached")
    return done


def _recount(report: DoctorReport, after: DoctorReport) -> list[str]:
    """Fold in events whose stats were never applied; recount total_requests that exceed the usage held."""
    from tinydancer_duck.embed import make_embedder
    from tinydancer_duck.engine import Engine

    engine = Engine(report.path, embedder=make_embedder(report.identity.split(":", 1)[0]),
                    storage_options=report.storage_options)
    done = []
    with engine.store.locked("agents"):
        usage = engine.store.read("usage")
        for name, found in sorted(after.counted.items()):
            if found.lagging:
                mine = usage.filter(pc.equal(usage["agent"], pa.scalar(name, pa.string())))
                newest = mine.slice(max(mine.num_rows - found.lagging, 0))
                engine.registry.update_metrics(newest["agent"], newest["latency_ms"], newest["success"],
                                               newest["quality"])
                done.append(f"agent {name!r}: folded {newest.num_rows} usage event(s) into its stats")
            elif found.problem:
                agents = engine.store.read("agents")
                row = agents.filter(pc.equal(agents["name"], pa.scalar(name, pa.string())))
                for field, value in (("total_requests", found.events), ("updated_at", datetime.now(timezone.utc))):
                    row = row.set_column(row.schema.get_field_index(field), field,
                                         pa.array([value], row.schema.field(field).type))
                engine.store.upsert("agents", row)
                done.append(f"agent {name!r}: total_requests {found.total} -> {found.events}, the events the usage "
                            f"table holds ({found.extra} counted event(s) were lost)")
    return done


def _drop_stale_ledger(store: Store) -> int:
    """Drop the ledger's recorded spend tagged with a usage version past the table's newest; how many."""
    if not store.ledger.exists():
        return 0
    version = store.latest_version("usage")
    with store.ledger.open(time.time_ns() // 1000) as state:
        kept = [entry for entry in state["settled"] if entry[2] <= version]
        dropped, state["settled"] = len(state["settled"]) - len(kept), kept
    return dropped
