"""`tinydancer doctor --repair`: fix what can be fixed safely, after copying the whole store beside it.

In order: finish writes a killed process left half done; for a table with damaged files, move them aside and
restore its newest version that reads in full without them; for a table whose newest manifests are lost, accept
the newest readable version (the lost writes cannot be recovered); record checksums of files that have none; fold
into agents' stats the usage events whose stats were never applied (the newest events of each such agent). A table
whose version folder is lost cannot be repaired: the report says so. Then the store is checked again.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.errors import TinydancerError
from tinydancer_duck.store import Store, accept_newest, adopt_checksums, backup, restore_readable

from ._doctor import DoctorReport, check_store


def repair_store(path: str | Path) -> tuple[list[str], DoctorReport]:
    """Repair the store at ``path``; returns what was done (sentences) and the report of the check after."""
    report = check_store(path)
    if report.healthy or not report.facts:
        return ["nothing to repair"], report
    root = report.path
    done = [f"backed up the store to {backup(root)}"]
    for name, fact in report.facts.items():
        try:
            if "error" in fact:
                done.append(f"table {name!r} cannot be opened and cannot be repaired: restore {name}.lance from a "
                            "backup, or move it aside to start that table empty")
            elif fact["damaged"] or "read_error" in fact:
                done.append(restore_readable(root, name, [rel for rel, _ in fact["damaged"]]))
            elif fact["lost"] is not None:
                done.append(accept_newest(root, name))
            if "error" not in fact and fact["unverified"] and (adopted := adopt_checksums(root, name)):
                done.append(f"table {name!r}: recorded checksums of {adopted} file(s)")
        except TinydancerError as exc:
            done.append(f"table {name!r} could not be repaired: {exc}")
    done.extend(_finish_and_refold(root, report))
    return done, check_store(root)


def _finish_and_refold(root: Path, report: DoctorReport) -> list[str]:
    """Finish half-done writes, then fold the usage events missing from agents' stats."""
    identity, dim = report.identity, report.dim
    if identity is None or dim is None:
        return []
    done = []
    store = Store(root, embedder_identity=identity, dim=dim)
    if (finished := store.recover()):
        done.append(f"finished {finished} half-done write(s)")
    after = check_store(root)
    orphaned = after.orphaned_routes
    if orphaned:
        store.delete_keys("route_examples", "route", orphaned)
        done.append(f"removed the examples of {len(orphaned)} route(s) that no longer exist")
    lagging = after.lagging
    if lagging:
        from tinydancer_duck.embed import make_embedder
        from tinydancer_duck.engine import Engine

        engine = Engine(root, embedder=make_embedder(identity.split(":", 1)[0]))
        usage = engine.store.read("usage")
        for name, missing in sorted(lagging.items()):
            mine = usage.filter(pc.equal(usage["agent"], pa.scalar(name, pa.string())))
            newest = mine.slice(max(mine.num_rows - missing, 0))
            engine.registry.update_metrics(newest["agent"], newest["latency_ms"], newest["success"],
                                           newest["quality"])
            done.append(f"agent {name!r}: folded {newest.num_rows} usage event(s) into its stats")
    return done
