"""``python -m tinydancer_duck.udfs [--check]``: write the SQL surface (tinydancer_duck/sql/NN_area.sql) and its
reference (docs/sql.md) from the declarations; ``--check`` only reports the files that differ (exit 1)."""

from __future__ import annotations

import sys
from pathlib import Path

from . import AREAS, bindings
from ._sql import area_file, reference

PACKAGE = Path(__file__).resolve().parents[1]


def generated() -> dict[Path, str]:
    """Every generated file and its text."""
    files = {PACKAGE / "sql" / f"{area.file}.sql": area_file(area.title, area.bindings) for area in AREAS}
    files[PACKAGE.parent / "docs" / "sql.md"] = reference(bindings())
    return files


def main(argv: list[str]) -> int:
    stale = [path for path, text in generated().items() if not path.exists() or path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"stale: {path}")
        return 1 if stale else 0
    for path, text in generated().items():
        if path in stale:
            path.write_text(text)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
