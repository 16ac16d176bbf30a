"""Damage detection for the store's tables: a checksum of every file a commit writes, and the highest version each
table reached, so that a read notices a truncated or bit-flipped file or a lost manifest instead of returning
wrong rows.

LanceDB checks neither (lancedb 0.40, measured): flipping one bit of a data file changed values silently in 6 of 12
trials, and deleting a table's newest manifest silently rolled it back by one write.

On disk, beside the tables (``<store>/.integrity/``):

- ``<table>.log``: one line ``relpath size crc32`` per file under the table's folder: after each commit, its
  manifest and every data and deletion file without a line yet. Every write holds the table's write lock while it
  writes, so a file without a line once the lock is held again is complete (this commit's own, or one a killed
  writer left). Lance never rewrites a file in place, so a file's checksum holds for its whole life; lines of files
  that compaction cleaned up are dropped when the table is compacted.
- ``<table>.version``: the highest version a commit made. A table whose newest version is lower lost a manifest.

Reads check the data and deletion files and the manifest they read whenever this process has not yet verified that
exact file (by path, size and modification time: a file changed in place after its check is checked again), and a
table's newest committed manifest is checked before LanceDB parses it (a damaged manifest can make LanceDB panic).
``tinydancer doctor`` checks every file, counts those without a line (older manifests, or a store written before
this), and calls a table with files but no records at all (a store copied without its ``.integrity`` folder)
unverified.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tinydancer_duck.errors import StoreError

#: Sub-folders of a table whose files are immutable once written and listed to find a commit's new files
#: (transaction files are not read by scans). A commit's manifest is found by its version instead: the folder of
#: manifests keeps every version younger than the cleanup margin, too many to list on every commit.
TRACKED = ("data", "_deletions")
_CHUNK = 1 << 20
_TAIL = 4096
#: Newest manifests this process checked when opening a table: path -> (size, mtime_ns) as checked.
_manifests_checked: dict[str, tuple[int, int]] = {}
_U64 = (1 << 64) - 1


def checksum(path: Path) -> tuple[int, int]:
    """(size, crc32) of a file, read in 1 MiB chunks."""
    crc, size = 0, 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    return size, crc


def listing(folder: Path, *, manifests: bool = False) -> set[str]:
    """Paths (relative to the table's folder) of the data and deletion files of a table (and its manifests)."""
    found = set()
    for sub in (*TRACKED, "_versions") if manifests else TRACKED:
        try:
            with os.scandir(folder / sub) as entries:
                found.update(f"{sub}/{e.name}" for e in entries if e.name.endswith((".lance", ".arrow", ".bin",
                                                                                    ".manifest")))
        except FileNotFoundError:
            continue
    return found


def manifest_of(folder: Path, version: int) -> str | None:
    """The manifest file of ``version`` (LanceDB's v2 names count down from 2**64 - 1; v1 names count up)."""
    for name in (f"{_U64 - version:020d}.manifest", f"{_U64 - version}.manifest", f"{version}.manifest"):
        if (folder / "_versions" / name).exists():
            return f"_versions/{name}"
    return None


@dataclass
class _Known:
    """The parsed part of one table's log: relpath -> (size, crc), the log's bytes read so far, and the files this
    process has verified already: relpath -> (size, mtime_ns) of the file as it was verified."""

    sums: dict[str, tuple[int, int]] = field(default_factory=dict)
    offset: int = 0
    inode: int = -1
    verified: dict[str, tuple[int, int]] = field(default_factory=dict)


def _stamp(path: Path | str) -> tuple[int, int] | None:
    """(size, mtime_ns) of a file, None when it is gone: what identifies the version of it that was verified."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


class Integrity:
    """Checksums and version high-water marks of the tables of the store at ``root`` (see the module docstring).

    Thread-safe; the caller holds the table's write lock around :meth:`record` and :meth:`forget_missing`.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / ".integrity"
        self._known: dict[str, _Known] = {}
        self._lock = threading.Lock()

    def table_folder(self, table: str) -> Path:
        return self.root / f"{table}.lance"

    # -- writes (under the table's write lock) ----------------------------------------------------------------
    def record(self, table: str, version: int | None) -> None:
        """After a commit (under the table's write lock): append checksums of the data and deletion files that have
        none yet, and of the manifest of ``version``, and raise the table's high-water mark to ``version``.

        Every writer holds the lock from before its files are written until after this, so a file without a
        checksum now is complete: this commit's own, or one a killed writer left (checksummed as it is on disk,
        which is how it stays).
        """
        folder = self.table_folder(table)
        lines, sums = [], {}
        manifest = manifest_of(folder, version) if version is not None else None
        for rel in sorted((listing(folder) - set(self._refresh(table).sums)) | ({manifest} if manifest else set())):
            try:
                sums[rel] = checksum(folder / rel)
            except FileNotFoundError:  # removed again by the same commit (cleanup)
                continue
            lines.append(f"{rel} {sums[rel][0]} {sums[rel][1]}\n")
        self.folder.mkdir(exist_ok=True)
        if lines:
            with open(self.folder / f"{table}.log", "a", encoding="utf-8") as log:
                log.write("".join(lines))
        with self._lock:
            known = self._known.setdefault(table, _Known())
            known.verified.update({rel: stamp for rel in sums if (stamp := _stamp(folder / rel))})  # written here
        if version is not None and version > (self.high_water(table) or 0):
            self.set_high_water(table, version)

    def forget_missing(self, table: str) -> None:
        """Rewrite the table's log without the files that no longer exist (after a compaction's cleanup)."""
        path = self.folder / f"{table}.log"
        if not path.exists():
            return
        present = listing(self.table_folder(table), manifests=True)
        sums = {rel: value for rel, value in self._read_log(path).items() if rel in present}
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("".join(f"{rel} {size} {crc}\n" for rel, (size, crc) in sorted(sums.items())),
                       encoding="utf-8")
        os.replace(tmp, path)
        with self._lock:
            old = self._known.pop(table, _Known())
            self._known[table] = _Known(verified={rel: v for rel, v in old.verified.items() if rel in sums})

    def set_high_water(self, table: str, version: int) -> None:
        """Note ``version`` as the table's newest (under its write lock). Written in place, padded to a fixed width,
        so a kill mid-write leaves the old number or the new one, never a shorter file (a rename costs ~0.8 ms)."""
        self.folder.mkdir(exist_ok=True)
        fd = os.open(self.folder / f"{table}.version", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, f"{int(version):020d}".encode(), 0)
        finally:
            os.close(fd)

    # -- checks -----------------------------------------------------------------------------------------------
    def high_water(self, table: str) -> int | None:
        try:
            with open(f"{self.folder}/{table}.version", "rb") as mark:  # read on every open: no Path machinery
                return int(mark.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return None

    def check_version(self, table: str, latest: Callable[[], int]) -> None:
        """StoreError when the table's newest readable version (``latest()``, asked after the mark is read, so a
        commit racing with the check cannot look lost) is below the highest ever committed."""
        committed = self.high_water(table)
        version = latest() if committed is not None else 0
        if committed is not None and version < committed:
            raise StoreError(
                f"table {table!r} in {self.root} reads as version {version}, but version {committed} was committed: "
                f"its newest manifest(s) under {table}.lance/_versions are lost, so the last write(s) would be "
                f"silently undone. Nothing was changed; run `tinydancer doctor --store {self.root}` (and "
                "`--repair` to accept the older version)")

    def damaged(self, table: str, version: int | None = None) -> list[tuple[str, str]]:
        """(relpath, plain description) of the files of ``table`` whose size or checksum differ from their record
        (a file is checked again when its size or modification time changed since this process checked it): data
        and deletion files, and the manifest of ``version`` (every manifest when None)."""
        known = self._refresh(table)
        folder = self.table_folder(table)
        files = listing(folder, manifests=version is None)
        manifest = manifest_of(folder, version) if version is not None else None
        problems = []
        for rel in sorted((files | ({manifest} if manifest else set())) & set(known.sums)):
            stamp = _stamp(folder / rel)
            if stamp is None or known.verified.get(rel) == stamp:
                continue  # cleaned up meanwhile, or this very file was verified already
            problem = self.file_problem(table, folder, rel, known.sums[rel])
            if problem:
                problems.append((rel, problem))
            else:
                with self._lock:
                    known.verified[rel] = stamp
        return problems

    @staticmethod
    def file_problem(table: str, folder: Path, rel: str, recorded: tuple[int, int]) -> str | None:
        """What is wrong with one file against its record, in words; None when it matches (or is gone)."""
        try:
            found = checksum(folder / rel)
        except FileNotFoundError:
            return None
        if found[0] != recorded[0]:
            return f"{table}.lance/{rel} is {found[0]} bytes, but {recorded[0]} were written (truncated or overwritten)"
        if found[1] != recorded[1]:
            return f"{table}.lance/{rel} does not match the checksum it was written with (its bytes changed on disk)"
        return None

    def newest_manifest_problem(self, table: str) -> str | None:
        """What is wrong with the manifest of the table's highest committed version against its checksum, in
        words; None when it matches, or nothing was recorded."""
        committed = self.high_water(table)
        if committed is None:
            return None
        folder = self.table_folder(table)
        rel = f"_versions/{_U64 - committed:020d}.manifest"  # LanceDB's v2 name, else look for the others
        stamp = _stamp(f"{folder}/{rel}")
        if stamp is None and (rel := manifest_of(folder, committed)) is not None:
            stamp = _stamp(f"{folder}/{rel}")
        if stamp is None or _manifests_checked.get(f"{folder}/{rel}") == stamp:
            return None  # gone, or this very file was checked by this process already
        recorded = self._recorded(table, rel)
        problem = self.file_problem(table, folder, rel, recorded) if recorded else None
        if problem:
            return f"the manifest of its newest version ({committed}) is damaged: {problem}"
        _manifests_checked[f"{folder}/{rel}"] = stamp
        return None

    def _recorded(self, table: str, rel: str) -> tuple[int, int] | None:
        """The record of one file: found in the last lines of the table's log when the log was not parsed yet
        (a newest manifest's line is among the last written; opening a table need not parse the whole log)."""
        with self._lock:
            known = self._known.get(table)
        if known is None or not known.sums:
            try:
                with open(self.folder / f"{table}.log", "rb") as log:
                    log.seek(max(os.fstat(log.fileno()).st_size - _TAIL, 0))
                    found = _parse(log.read().decode("utf-8", "replace")).get(rel)
            except FileNotFoundError:
                return None
            if found is not None:
                return found
        return self._refresh(table).sums.get(rel)

    def check_newest_manifest(self, table: str) -> None:
        """Before LanceDB parses it: StoreError when the newest committed manifest is damaged (LanceDB can panic
        on a damaged manifest instead of failing)."""
        problem = self.newest_manifest_problem(table)
        if problem:
            raise StoreError(f"table {table!r} in {self.root} cannot be opened: {problem}. Nothing was read; run "
                             f"`tinydancer doctor --store {self.root}` (`--repair` goes back to the version before, "
                             "losing that last write)")

    def has_records(self, table: str) -> bool:
        """Whether any checksum or version was ever recorded for ``table`` (a store copied without its
        ``.integrity`` folder has none)."""
        return (self.folder / f"{table}.log").exists() or (self.folder / f"{table}.version").exists()

    def verify(self, table: str, version: int) -> None:
        """StoreError naming the damaged files of ``table`` read at ``version``, if any (see :meth:`damaged`)."""
        problems = [text for _, text in self.damaged(table, version)]
        if problems:
            raise StoreError(f"table {table!r} in {self.root} is damaged: {'; '.join(problems[:3])}"
                             f"{' ...' if len(problems) > 3 else ''}. Nothing was read from it; run "
                             f"`tinydancer doctor --store {self.root}` (and `--repair` to go back to the newest "
                             "undamaged version)")

    def unverifiable(self, table: str) -> list[str]:
        """Tracked files of ``table`` that have no checksum."""
        return sorted(listing(self.table_folder(table), manifests=True) - set(self._refresh(table).sums))

    def known(self, table: str) -> dict[str, tuple[int, int]]:
        return dict(self._refresh(table).sums)

    # -- helpers ----------------------------------------------------------------------------------------------
    def _refresh(self, table: str) -> _Known:
        """The table's log, parsed from where this process stopped reading it (from the start again when the log
        was rewritten by a compaction: a new file)."""
        path = self.folder / f"{table}.log"
        with self._lock:
            known = self._known.setdefault(table, _Known())
            try:
                with open(path, "rb") as log:
                    inode = os.fstat(log.fileno()).st_ino
                    if inode != known.inode:
                        known.inode, known.offset, known.sums = inode, 0, {}
                    log.seek(known.offset)
                    tail = log.read()
            except FileNotFoundError:
                return known
            complete = tail[: tail.rfind(b"\n") + 1]  # a line cut short by a kill is read once it is complete
            known.sums.update(_parse(complete.decode("utf-8", "replace")))
            known.offset += len(complete)
            return known

    @staticmethod
    def _read_log(path: Path) -> dict[str, tuple[int, int]]:
        return _parse(path.read_text(encoding="utf-8", errors="replace"))


def _parse(text: str) -> dict[str, tuple[int, int]]:
    sums = {}
    for line in text.splitlines():
        parts = line.split(" ")
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            sums[parts[0]] = (int(parts[1]), int(parts[2]))
    return sums


class Unchecked(Integrity):
    """A remote store's integrity: no checksums or high-water marks. Its files are not on this machine to be read
    cheaply, and object stores check what they store themselves; README "Beyond one machine" says so."""

    def record(self, table: str, version: int | None) -> None:
        return None

    def forget_missing(self, table: str) -> None:
        return None

    def set_high_water(self, table: str, version: int) -> None:
        return None

    def high_water(self, table: str) -> int | None:
        return None

    def check_version(self, table: str, latest: Callable[[], int]) -> None:
        return None

    def damaged(self, table: str, version: int | None = None) -> list[tuple[str, str]]:
        return []

    def verify(self, table: str, version: int) -> None:
        return None

    def unverifiable(self, table: str) -> list[str]:
        return []

    def newest_manifest_problem(self, table: str) -> str | None:
        return None

    def has_records(self, table: str) -> bool:
        return True
