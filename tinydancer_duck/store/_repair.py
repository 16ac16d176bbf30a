"""What ``tinydancer doctor --repair`` may do to a store's tables, each step safe after a backup:

- :func:`backup`: copy the whole store beside it first;
- :func:`restore_readable`: move a table's damaged files aside and make its newest version that reads in full
  (without them) the newest again (LanceDB ``restore``: a new version with the old one's rows);
- :func:`accept_newest`: after lost manifests, take the newest readable version as the table's newest (the lost
  writes cannot be recovered);
- :func:`roll_back_manifests`: a table whose newest manifest is damaged (by its checksum) or cannot be opened: move
  newest manifests aside until the table opens, so the version before the damaged one is the newest (the writes
  after it are lost, and said so);
- :func:`adopt_checksums`: record checksums for files that have none (written before checksums existed, by a
  process killed between a commit and its checksum, or in a store copied without its ``.integrity`` folder) once
  the table reads in full, and its newest version as the highest committed.

Each holds the table's write lock, so no writer of this package commits meanwhile.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from tinydancer_duck.errors import StoreError

from ._inspect import connect
from ._integrity import Integrity, checksum, listing
from ._locks import held
from ._retry import foreign_failure


def backup(root: Path) -> Path:
    """Copy the store to ``<store>.backup-<UTC time>`` beside it; returns the copy's path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    target = root.with_name(f"{root.name}.backup-{stamp}")
    shutil.copytree(root, target, ignore=shutil.ignore_patterns(".locks"))
    return target


def restore_readable(root: Path, name: str, damaged: list[str]) -> str:
    """Move ``damaged`` files (relative to the table folder) to ``<store>/.quarantine/`` and restore the newest
    version of ``name`` that reads in full without them. Returns what was done, in words; StoreError when no
    version reads."""
    integrity = Integrity(root)
    folder = integrity.table_folder(name)
    with held(root, str(root.resolve()), name):
        for rel in damaged:
            target = root / ".quarantine" / name / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if (folder / rel).exists():
                shutil.move(str(folder / rel), str(target))
        table = connect(root).open_table(name)
        latest = int(table.version)
        had = _count(table)
        for version in sorted((int(v["version"]) for v in table.list_versions()), reverse=True):
            rows = _rows_at(table, version)
            if rows is None:
                continue  # this version needs a damaged file: try an older one
            table.checkout_latest()
            if version != latest:
                table.restore(version)
            integrity.record(name, int(table.version))
            integrity.set_high_water(name, int(table.version))
            lost = f"; {had - rows} row(s) of them are lost" if had is not None and had > rows else ""
            return _noted(root, name, f"table {name!r}: moved {len(damaged)} damaged file(s) to "
                          f"{root / '.quarantine' / name}; version {version} ({rows} rows) reads in full and is the "
                          "newest again" + (f" (the writes of versions {version + 1}-{latest} are undone{lost})"
                                            if version != latest else ""))
    raise StoreError(f"table {name!r}: no version of it reads in full without its damaged files; restore "
                     f"{folder.name} from a backup")


def _rows_at(table: object, version: int) -> int | None:
    """Rows of ``table`` at ``version`` when it reads in full, else None."""
    try:
        table.checkout(version)
        return table.to_arrow().num_rows
    except BaseException as exc:  # any failure (a Rust panic too) means this version does not read
        if not foreign_failure(exc):
            raise
        return None


def _count(table: object) -> int | None:
    """Rows of the table's checked-out version by its manifest (no data file is read), None when unknown."""
    try:
        return int(table.count_rows())
    except BaseException as exc:
        if not foreign_failure(exc):
            raise
        return None


def roll_back_manifests(root: Path, name: str) -> str:
    """Move the newest manifests of ``name`` to ``<store>/.quarantine/<name>/_versions`` until it opens with a
    newest manifest that matches its checksum: the version before is the newest again. Returns what was done and
    which writes are lost; StoreError when no manifest left opens."""
    integrity = Integrity(root)
    folder = integrity.table_folder(name)
    moved: list[int] = []
    with held(root, str(root.resolve()), name):
        committed = integrity.high_water(name) or 0
        while (version := _opens(root, name, integrity)) is None:
            manifests = _manifest_versions(folder)
            if len(manifests) <= 1:
                raise StoreError(f"table {name!r}: none of its manifests opens; restore {folder.name} from a backup, "
                                 "or move it aside to start that table empty")
            newest = max(manifests)
            target = root / ".quarantine" / name / manifests[newest]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(folder / manifests[newest]), str(target))
            moved.append(newest)
        _set_high_water(integrity, name, version)
    newest = max(committed, *moved, version)
    return _noted(root, name, f"table {name!r}: the manifest(s) of version(s) {', '.join(map(str, sorted(moved)))} "
                  f"could not be read and were moved to {root / '.quarantine' / name / '_versions'}; version "
                  f"{version} is its newest now, so the last {newest - version} write(s) to it (versions "
                  f"{version + 1}-{newest}) are lost")


def _opens(root: Path, name: str, integrity: Integrity) -> int | None:
    """The table's version when its newest manifest matches its checksum (or has none) and it opens, else None."""
    folder = integrity.table_folder(name)
    manifests = _manifest_versions(folder)
    if not manifests:
        return None
    rel = manifests[max(manifests)]
    recorded = integrity.known(name).get(rel)
    if recorded is not None and integrity.file_problem(name, folder, rel, recorded):
        return None
    try:
        table = connect(root).open_table(name)
        table.schema, table.count_rows(), table.list_versions()  # these parse the newest manifest, and every one
        return int(table.version)
    except BaseException as exc:
        if not foreign_failure(exc):
            raise
        return None


def _manifest_versions(folder: Path) -> dict[int, str]:
    """version -> relpath of each manifest of the table folder (v2 names count down from 2**64 - 1)."""
    found = {}
    for rel in listing(folder, manifests=True):
        if rel.startswith("_versions/"):
            stem = rel.removeprefix("_versions/").removesuffix(".manifest")
            if stem.isdigit():
                number = int(stem)
                found[(1 << 64) - 1 - number if len(stem) == 20 else number] = rel
    return found


def _set_high_water(integrity: Integrity, name: str, version: int) -> None:
    """Write ``version`` as the table's highest committed, even when it is lower than the mark recorded."""
    (integrity.folder / f"{name}.version").unlink(missing_ok=True)
    integrity.set_high_water(name, version)


def accept_newest(root: Path, name: str) -> str:
    """Accept the newest readable version of ``name`` as its newest after lost manifests; returns what was done."""
    integrity = Integrity(root)
    with held(root, str(root.resolve()), name):
        version = int(connect(root).open_table(name).version)
        committed = integrity.high_water(name) or version
        _set_high_water(integrity, name, version)
    return _noted(root, name, f"table {name!r}: version {version} is its newest now; the last "
                              f"{committed - version} write(s) to it (versions {version + 1}-{committed}) are lost")


def _noted(root: Path, name: str, what: str) -> str:
    """``what``, also appended to ``<store>/.quarantine/<name>/repairs.txt``: a table that lost writes says so
    (the doctor tells stats written before a loss of usage rows from those counted later)."""
    folder = root / ".quarantine" / name
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "repairs.txt", "a", encoding="utf-8") as notes:
        notes.write(f"{datetime.now(timezone.utc).isoformat()} {what}\n")
    return what


def adopt_checksums(root: Path, name: str) -> int:
    """Record checksums of the files of ``name`` that have none, and its newest version as the highest committed
    when none is recorded, once it reads in full; returns how many files (0 when it does not read)."""
    integrity = Integrity(root)
    folder = integrity.table_folder(name)
    with held(root, str(root.resolve()), name):
        missing = integrity.unverifiable(name)
        try:
            table = connect(root).open_table(name)
            table.to_arrow()  # what is recorded now is what reads
        except BaseException as exc:
            if not foreign_failure(exc):
                raise
            return 0
        if missing:
            lines = [f"{rel} {' '.join(map(str, checksum(folder / rel)))}\n" for rel in missing]
            integrity.folder.mkdir(exist_ok=True)
            with open(integrity.folder / f"{name}.log", "a", encoding="utf-8") as log:
                log.write("".join(lines))
        if integrity.high_water(name) is None:
            integrity.set_high_water(name, int(table.version))
    return len(missing)
