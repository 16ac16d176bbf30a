"""Writes that span two tables, made all-or-nothing with an intent journal (LanceDB commits one table at a time).

Recording usage appends events to ``usage`` and rewrites the agents' running stats in ``agents``: two commits.
Before the first, the writer saves an *intent* under ``<side>/.journal/<id>/`` (its pid; per step the table, the
operation, the table's version before the write, the rows when they are small enough to keep, and for a streamed
append a sample of the rows it will add); after the last commit it removes it. A process killed in between leaves
the intent, and the next holder of the agents lock (every writer of ``agents`` and ``usage`` takes it first; so does
opening an Engine when the lock is free) finishes it before doing anything else.

**Identity: a step is recognized by what it wrote, never by row counts** (another machine appending to an object
store, or a log that grew while it was ingested, changes counts without this write):

- an ``append`` step committed when the table holds its identity rows (every row it appends when they were kept,
  else its first and last rows), compared on every column, beyond those the table held at the version before the
  write (when that version is still kept). A table still at that version holds nothing of it (no read needed).
  All found: committed, skipped. None: not committed, so appended from the journal's copy, or, for a streamed
  append (always the first step), the whole intent is dropped: nothing of the write happened;
- an ``upsert`` step is applied again (absolute values computed under the lock: applying it twice gives the same
  rows).

An intent that cannot be finished (unreadable, naming a table that is not the store's or an unsafe name, only some
of its rows found, or a table that went back before it: replaced, or its bucket emptied) is moved to
``<side>/.journal-quarantine/<id>/`` with the reason in ``reason.txt``; ``tinydancer doctor`` reports it and
``--repair`` recomputes agent stats from the usage that survived. One that cannot be finished *now* (a table it
needs does not read) stays pending. Recovery never raises, so a pending intent never stops an Engine from opening.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import ipc

from tinydancer_duck.errors import StoreError

from ._names import known_table, safe_name

if TYPE_CHECKING:
    from ._store import Store

#: The lock every writer of a journaled table holds (and under which pending intents are finished).
JOURNAL_LOCK = "agents"
QUARANTINE = ".journal-quarantine"
_OPS = ("append", "upsert")


@dataclass(frozen=True)
class Step:
    """One commit of a multi-table write: ``op`` 'append' (rows: a table, or a reader streamed into one commit,
    with ``identity`` a few of its rows, see the module docstring) or 'upsert' (rows: a table, upserted by
    ``key``)."""

    table: str
    op: str
    rows: pa.Table | pa.RecordBatchReader
    key: str = "name"
    identity: pa.Table | None = None


class Unfinishable(Exception):
    """An intent that can never be finished (the reason is the message): it is quarantined."""


def pending(root: Path) -> list[Path]:
    """Intents left by killed writers (oldest first), or being written by live ones."""
    return _folders(root / ".journal")


def quarantined(root: Path) -> list[Path]:
    """Intents set aside because they could not be finished."""
    return _folders(root / QUARANTINE)


def _folders(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return sorted(Path(e.path) for e in entries if e.is_dir() and not e.name.endswith(".tmp"))
    except (FileNotFoundError, NotADirectoryError):
        return []


def run(store: Store, steps: Sequence[Step]) -> list[int]:
    """Commit ``steps`` in order as one all-or-nothing write; the caller holds the journal lock. Returns the version
    each step made."""
    if len(steps) == 1:
        return [_apply(store, steps[0])]
    before = {step.table: store.version(step.table) for step in steps if step.op == "append"}
    intent = _save(store.side, steps, before)
    versions = []
    for step in steps:
        try:
            versions.append(_apply(store, step))
        except Exception as exc:
            if not versions and _absent(store, step, before[step.table]):  # nothing committed: nothing happened
                shutil.rmtree(intent, ignore_errors=True)
                raise
            raise StoreError(f"{exc}; the earlier part of this write was committed, and the next write (or "
                             f"`tinydancer doctor --store {store.path} --repair`) completes the rest") from exc
    shutil.rmtree(intent, ignore_errors=True)
    return versions


def _absent(store: Store, step: Step, before: int) -> bool:
    """Whether an append step that raised left nothing in its table (recovery decides when this cannot tell)."""
    identity = step.rows if isinstance(step.rows, pa.Table) else step.identity
    try:
        return identity is not None and _committed(store, step.table, before, identity) is False
    except (StoreError, Unfinishable):
        return False


def recover(store: Store) -> tuple[int, list[str]]:
    """Finish every pending intent (the caller holds the journal lock): (how many were finished or dropped, a
    note per intent quarantined or left pending). Never raises."""
    done, notes = 0, []
    for intent in pending(store.side):
        try:
            _finish(store, intent)
        except Unfinishable as exc:
            notes.append(quarantine(store.side, intent, str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - e.g. a table it needs does not read now: finished after a repair
            notes.append(f"a half-done write in {intent} stays pending: {exc}")
            continue
        shutil.rmtree(intent, ignore_errors=True)
        done += 1
    return done, notes


def quarantine(root: Path, intent: Path, reason: str) -> str:
    """Move ``intent`` aside with ``reason``; returns a sentence saying so."""
    target = _move(intent, root / QUARANTINE)
    (target / "reason.txt").write_text(reason + "\n", encoding="utf-8")
    return (f"a half-done write could not be finished and was set aside in {target}: {reason}; agent stats may "
            "count events the usage table lacks (`tinydancer doctor --repair` recomputes them)")


def file_away(root: Path) -> list[Path]:
    """Move the quarantined intents to ``<side>/.quarantine/journal/`` once a repair accounted for them (kept for
    inspection, no longer reported); returns where they went."""
    return [_move(intent, root / ".quarantine" / "journal") for intent in quarantined(root)]


def _move(intent: Path, folder: Path) -> Path:
    """Move the intent folder into ``folder`` (replacing one of the same name); where it is now."""
    target = folder / intent.name
    folder.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(intent, target)
    return target


def describe(root: Path) -> list[str]:
    """One line per pending intent, for ``tinydancer doctor``: its steps, and whether its writer still runs."""
    lines = []
    for intent in pending(root):
        try:
            meta = json.loads((intent / "intent.json").read_text())
            steps = ", ".join(f"{s['op']} {s['table']}" for s in meta["steps"])
            pid = meta.get("pid")
        except (OSError, ValueError, KeyError, TypeError):
            steps, pid = "unreadable", None
        alive = isinstance(pid, int) and pid != os.getpid() and Path(f"/proc/{pid}").exists()
        lines.append(f"{intent.name}: {steps}{f' (in progress: process {pid} is writing it)' if alive else ''}")
    return lines


def _apply(store: Store, step: Step) -> int:
    if step.op == "append":
        return store.append(step.table, step.rows)
    if step.op == "upsert":
        return store.upsert(step.table, step.rows, key=step.key)
    raise ValueError(f"unknown journal step {step.op!r}")


def _save(root: Path, steps: Sequence[Step], before: dict[str, int]) -> Path:
    """Write the intent into a temporary folder and rename it into place (atomic: a kill leaves no half intent)."""
    folder = root / ".journal"
    name = uuid.uuid4().hex
    tmp = folder / f"{name}.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    meta = []
    for i, step in enumerate(steps):
        saved = isinstance(step.rows, pa.Table)
        if saved:
            _write(tmp / f"{i}.arrow", step.rows)
        elif step.identity is not None:
            _write(tmp / f"{i}.identity.arrow", step.identity)
        meta.append({"table": step.table, "op": step.op, "key": step.key, "saved": saved,
                     "version": before.get(step.table)})
    (tmp / "intent.json").write_text(json.dumps({"pid": os.getpid(), "created_us": time.time_ns() // 1000,
                                                 "steps": meta}))
    os.replace(tmp, folder / name)
    return folder / name


def _write(path: Path, rows: pa.Table) -> None:
    with ipc.new_file(path, rows.schema) as writer:
        writer.write_table(rows)


def _finish(store: Store, intent: Path) -> None:
    """Finish one intent (see the module docstring); Unfinishable when it never can be."""
    steps = _read_steps(intent)
    for i, step in enumerate(steps):
        rows = _read_rows(intent / f"{i}.arrow") if step["saved"] else None
        if step["op"] == "upsert":
            store.upsert(step["table"], rows, key=step["key"])
            continue
        identity = rows if rows is not None else _read_rows(intent / f"{i}.identity.arrow")
        if _committed(store, step["table"], step["version"], identity):
            continue
        if rows is None:
            if i == 0:
                return  # a streamed append that never committed: the write did not happen, drop it
            raise Unfinishable(f"its streamed append to {step['table']!r} was not committed, after an earlier step")
        store.append(step["table"], rows)


def _read_steps(intent: Path) -> list[dict[str, Any]]:
    """The intent's steps, every name in them checked before it is used (Unfinishable naming the file)."""
    source = intent / "intent.json"
    try:
        steps = json.loads(source.read_text())["steps"]
        for step in steps:
            known_table(step["table"], source)
            safe_name(step["key"], "key column", source)
            if step["op"] not in _OPS or not isinstance(step["saved"], bool) or (
                    step["op"] == "append" and not isinstance(step["version"], int)):
                raise ValueError(f"malformed step {str(step)[:120]}")
        return steps
    except (OSError, ValueError, KeyError, TypeError, StoreError) as exc:
        raise Unfinishable(f"{source} cannot be used ({exc})") from None


def _read_rows(path: Path) -> pa.Table | None:
    if not path.exists():
        return None
    try:
        return ipc.open_file(path).read_all()
    except (OSError, pa.ArrowException) as exc:
        raise Unfinishable(f"{path} cannot be read ({exc})") from None


def _committed(store: Store, table: str, before: int, identity: pa.Table | None) -> bool:
    """Whether an append to ``table`` made after its version ``before`` is in it, found by its identity rows."""
    version = store.latest_version(table)
    if version == before:
        return False
    if version < before:
        raise Unfinishable(f"{table!r} is at version {version}, older than the version {before} this write started "
                           "from: the table was replaced or emptied (an object-store bucket emptied?)")
    if identity is None or not identity.num_rows:
        raise Unfinishable(f"its append to {table!r} cannot be recognized (no rows of it were kept)")
    current = store.read(table)
    identity = identity.select(current.schema.names).cast(current.schema)
    added = _found(current, identity) - _found(store.read_at(table, before), identity)
    if added >= identity.num_rows:
        return True
    if added <= 0:
        return False
    raise Unfinishable(f"only {added} of the {identity.num_rows} rows that identify its append to {table!r} are in "
                       "the table")


def _found(table: pa.Table | None, identity: pa.Table) -> int:
    """How many rows of ``identity`` ``table`` holds, compared on every column (NULL equal to NULL), counting a
    row as often as both hold it."""
    if table is None or not table.num_rows:
        return 0
    wanted = _row_keys(identity)
    counts = {row["values"]: row["counts"] for row in pc.value_counts(wanted).to_pylist()}
    keys = _row_keys(table)
    present = keys.filter(pc.is_in(keys, value_set=pa.array(list(counts), pa.string())))
    return sum(min(row["counts"], counts[row["values"]]) for row in pc.value_counts(present).to_pylist())


def _row_keys(table: pa.Table) -> pa.Array:
    """One text per row joining every column's value as text (NULL as a byte no text value holds)."""
    parts = [pc.cast(table[name], pa.string()) for name in table.column_names]
    keys = pc.binary_join_element_wise(*parts, "\x1f", null_handling="replace", null_replacement="\x00")
    return keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
