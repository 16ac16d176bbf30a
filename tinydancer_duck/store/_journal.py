"""Writes that span two tables, made all-or-nothing with an intent journal (LanceDB commits one table at a time).

Recording usage appends events to ``usage`` and rewrites the agents' running stats in ``agents``: two commits.
Before the first, the writer saves an *intent* under ``<store>/.journal/`` (the steps, the rows of each step that
are small enough to keep, and each appended table's row count before); after the last it removes it. A process
killed in between leaves the intent, and the next holder of the agents lock (every writer of ``agents`` and
``usage`` takes it first; so does opening an Engine) finishes it before doing anything else:

- an ``append`` step whose table still has its old row count is appended from the saved rows (or, for a streamed
  append whose rows were not saved, the whole intent is dropped: nothing of it was committed); with the old count
  plus its rows it was committed and is skipped; any other count is a StoreError;
- an ``upsert`` step is applied again (it writes absolute values computed under the lock, so applying it twice
  gives the same rows, and no other writer can have changed them before the intent was finished).

Row counts identify the commit because appends to these tables all happen under the agents lock; compaction and
cleanup change versions, never counts.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
from pyarrow import ipc

from tinydancer_duck.errors import StoreError

if TYPE_CHECKING:
    from ._store import Store

#: The lock every writer of a journaled table holds (and under which pending intents are finished).
JOURNAL_LOCK = "agents"


@dataclass(frozen=True)
class Step:
    """One commit of a multi-table write: ``op`` 'append' (rows: a table, or a reader streamed into one commit,
    with ``count`` its number of rows) or 'upsert' (rows: a table, upserted by ``key``)."""

    table: str
    op: str
    rows: pa.Table | pa.RecordBatchReader
    count: int = 0
    key: str = "name"


def pending(root: Path) -> list[Path]:
    """Intents left by killed writers (oldest first)."""
    try:
        with os.scandir(root / ".journal") as entries:
            return sorted(Path(e.path) for e in entries if e.is_dir() and not e.name.endswith(".tmp"))
    except FileNotFoundError:
        return []


def run(store: Store, steps: Sequence[Step]) -> list[int]:
    """Commit ``steps`` in order as one all-or-nothing write; the caller holds the journal lock. Returns the version
    each step made."""
    if len(steps) == 1:
        return [_apply(store, steps[0])]
    counts = {step.table: store.count(step.table) for step in steps if step.op == "append"}
    intent = _save(store.side, steps, counts)
    versions = []
    for step in steps:
        try:
            versions.append(_apply(store, step))
        except Exception as exc:
            if not versions and not _committed(store, step, counts):  # nothing committed: nothing happened
                shutil.rmtree(intent, ignore_errors=True)
                raise
            raise StoreError(f"{exc}; the earlier part of this write was committed, and the next write (or "
                             f"`tinydancer doctor --store {store.path} --repair`) completes the rest") from exc
    shutil.rmtree(intent, ignore_errors=True)
    return versions


def _committed(store: Store, step: Step, counts: dict[str, int]) -> bool:
    """Whether a step that raised was committed all the same (an append changes its table's row count)."""
    try:
        return step.op != "append" or store.count(step.table) != counts[step.table]
    except StoreError:
        return True  # cannot tell: keep the intent, recovery decides


def recover(store: Store) -> int:
    """Finish every pending intent (the caller holds the journal lock); returns how many there were."""
    done = 0
    for intent in pending(store.side):
        _finish(store, intent)
        shutil.rmtree(intent, ignore_errors=True)
        done += 1
    return done


def describe(root: Path) -> list[str]:
    """One line per pending intent, for ``tinydancer doctor``."""
    lines = []
    for intent in pending(root):
        try:
            meta = json.loads((intent / "intent.json").read_text())
            steps = ", ".join(f"{s['op']} {s['table']}" for s in meta["steps"])
        except (OSError, ValueError, KeyError):
            steps = "unreadable"
        lines.append(f"{intent.name}: {steps}")
    return lines


def _apply(store: Store, step: Step) -> int:
    if step.op == "append":
        return store.append(step.table, step.rows)
    if step.op == "upsert":
        return store.upsert(step.table, step.rows, key=step.key)
    raise ValueError(f"unknown journal step {step.op!r}")


def _save(root: Path, steps: Sequence[Step], counts: dict[str, int]) -> Path:
    """Write the intent into a temporary folder and rename it into place (atomic: a kill leaves no half intent)."""
    folder = root / ".journal"
    name = uuid.uuid4().hex
    tmp = folder / f"{name}.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    meta = []
    for i, step in enumerate(steps):
        saved = isinstance(step.rows, pa.Table)
        if saved:
            with ipc.new_file(tmp / f"{i}.arrow", step.rows.schema) as writer:
                writer.write_table(step.rows)
        count = step.rows.num_rows if saved and step.op == "append" else step.count
        meta.append({"table": step.table, "op": step.op, "key": step.key, "saved": saved, "count": count,
                     "before": counts.get(step.table)})
    (tmp / "intent.json").write_text(json.dumps({"steps": meta}))
    os.replace(tmp, folder / name)
    return folder / name


def _finish(store: Store, intent: Path) -> None:
    try:
        steps = json.loads((intent / "intent.json").read_text())["steps"]
    except (OSError, ValueError, KeyError) as exc:
        raise StoreError(f"an unfinished write in {intent} cannot be read ({exc}); run `tinydancer doctor --store "
                         f"{store.path}`") from exc
    for i, step in enumerate(steps):
        rows = ipc.open_file(intent / f"{i}.arrow").read_all() if step["saved"] else None
        if step["op"] == "upsert":
            store.upsert(step["table"], rows, key=step["key"])
            continue
        now, before, count = store.count(step["table"]), step["before"], step["count"]
        if now == before + count:
            continue  # committed before the kill
        if now != before:
            raise StoreError(f"an unfinished write in {intent} expected {step['table']!r} to hold {before} or "
                             f"{before + count} rows, but it holds {now}; run `tinydancer doctor --store "
                             f"{store.path}`")
        if rows is None:
            return  # a streamed append that never committed: the write did not happen, drop it
        store.append(step["table"], rows)
