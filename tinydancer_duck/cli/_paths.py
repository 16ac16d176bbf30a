"""Output paths checked before any work: a command that would fail to write its result after minutes of
simulation fails at once, in one line naming the option and the path."""

from __future__ import annotations

from pathlib import Path

from tinydancer_duck.errors import InvalidArgument

TABLE = (".csv", ".parquet")
CHART = (".svg", ".png")
HTML = (".html", ".htm")
PARQUET = (".parquet",)


def check_output(argument: str, path: str | None, suffixes: tuple[str, ...] | None = None) -> Path | None:
    """``path`` as a Path when its folder exists and it ends in one of ``suffixes`` (None: any file name; ``()``: a
    folder, made by the command); None when ``path`` is None. Errors name ``argument`` and the path."""
    if path is None:
        return None
    if "://" in str(path):  # object storage: nothing to check locally
        return Path(path)
    target = Path(path)
    if suffixes and target.suffix.lower() not in suffixes:
        raise InvalidArgument(argument, str(path), f"must end in {' or '.join(suffixes)}")
    if suffixes != () and target.is_dir():
        raise InvalidArgument(argument, str(path), "is a folder, expected a file name")
    if suffixes == () and target.exists() and not target.is_dir():
        raise InvalidArgument(argument, str(path), "is a file, expected a folder")
    parent = target.parent
    if not parent.is_dir():
        raise InvalidArgument(argument, str(path), f"its folder {str(parent)!r} does not exist")
    return target
