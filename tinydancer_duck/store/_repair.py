"""What ``tinydancer doctor --repair`` may do to a store's tables, each step safe after a backup:

- :func:`backup`: copy the whole store beside it first;
- :func:`restore_readable`: move a table's damaged files aside and make its newest version that reads in full
  (without them) the newest again (LanceDB ``restore``: a new version with the old one's rows);
- :func:`accept_newest`: after lost manifests, take the newest readable version as the table's newest (the lost
  writes cannot be recovered);
- :func:`adopt_checksums`: record checksums for files that have none (written before checksums existed, or by a
  process killed between a commit and its checksum) once the table reads in full.

Each holds the table's write lock, so no writer of this package commits meanwhile.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from tinydancer_duck.errors import StoreError

from ._inspect import connect
from ._integrity import Integrity, checksum
from ._locks import held


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
        for version in sorted((int(v["version"]) for v in table.list_versions()), reverse=True):
            rows = _rows_at(table, version)
            if rows is None:
                continue  # this version needs a damaged file: try an older one
            table.checkout_latest()
            if version != latest:
                table.restore(version)
            integrity.record(name, int(table.version))
            integrity.set_high_water(name, int(table.version))
            return (f"table {name!r}: moved {len(damaged)} damaged file(s) to {root / '.quarantine' / name}; "
                    f"version {version} ({rows} rows) reads in full and is the newest again"
                    + (f" (versions {version + 1}-{latest} are undone)" if version != latest else ""))
    raise StoreError(f"table {name!r}: no version of it reads in full without its damaged files; restore "
                     f"{folder.name} from a backup")


def _rows_at(table: object, version: int) -> int | None:
    """Rows of ``table`` at ``version`` when it reads in full, else None."""
    try:
        table.checkout(version)
        return table.to_arrow().num_rows
    except Exception:  # noqa: BLE001 - any failure means this version does not read
        return None


def accept_newest(root: Path, name: str) -> str:
    """Accept the newest readable version of ``name`` as its newest after lost manifests; returns what was done."""
    integrity = Integrity(root)
    with held(root, str(root.resolve()), name):
        version = int(connect(root).open_table(name).version)
        lost = (integrity.high_water(name) or version) - version
        integrity.set_high_water(name, version)
    return f"table {name!r}: version {version} is its newest now; the last {lost} write(s) to it are lost"


def adopt_checksums(root: Path, name: str) -> int:
    """Record checksums of the files of ``name`` that have none; returns how many."""
    integrity = Integrity(root)
    folder = integrity.table_folder(name)
    with held(root, str(root.resolve()), name):
        missing = integrity.unverifiable(name)
        if missing:
            lines = [f"{rel} {' '.join(map(str, checksum(folder / rel)))}\n" for rel in missing]
            integrity.folder.mkdir(exist_ok=True)
            with open(integrity.folder / f"{name}.log", "a", encoding="utf-8") as log:
                log.write("".join(lines))
    return len(missing)
