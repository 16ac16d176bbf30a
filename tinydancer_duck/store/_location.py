"""Where a store lives: a local directory, or an object-store URI LanceDB opens itself (``s3://``, ``gs://``,
``az://``, ``memory://``...).

A URI must never go through :class:`pathlib.Path`: it collapses ``s3://bucket`` to ``s3:/bucket``, which LanceDB
reads as a relative local path (``Engine("s3://bucket/store")`` used to fail with "Could not parse bucket from url"
after creating a local ``./s3:`` directory).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from tinydancer_duck.errors import InvalidArgument

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
#: A scheme of two or more letters (so not a Windows drive) followed by one slash: ``s3:/bucket``, a typo.
_ONE_SLASH = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]+:/(?!/)")


def default_store_path() -> Path:
    """``$TINYDANCER_HOME`` if set, else ``~/.tinydancer``."""
    home = os.environ.get("TINYDANCER_HOME")
    return Path(home).expanduser() if home else Path.home() / ".tinydancer"


def is_uri(location: object) -> bool:
    """Whether ``location`` is a URI with a scheme (``s3://...``) rather than a local path."""
    return isinstance(location, str) and bool(_SCHEME.match(location)) and not location.startswith("file://")


def store_location(location: str | Path, default: Path) -> tuple[str | Path, bool]:
    """(the store's location, whether it is remote): a URI string as given (without a trailing slash), or a local
    directory as an expanded Path (``file://`` prefixes removed)."""
    if location is None:
        return default, False
    if is_uri(location):
        return str(location).rstrip("/"), True
    text = str(location)
    if isinstance(location, str) and _ONE_SLASH.match(text) and not text.startswith("file:"):
        scheme = text.split(":", 1)[0]
        raise InvalidArgument("store", text, f"looks like an object-store URI with one slash after '{scheme}:'; "
                              f"write {scheme}://{text.split(':/', 1)[1]} (or ./{text} for a local folder of that "
                              "name)")
    return Path(text.removeprefix("file://").removeprefix("file:")).expanduser(), False


def side_folder(location: str | Path, remote: bool) -> Path:
    """The local folder of a store's side files (locks, checksums, budget ledger, write journal): the store's own
    folder, or for a remote store one under ``$XDG_CACHE_HOME/tinydancer/remote`` named by a hash of its URI, so
    that the processes of one machine share them (object storage has no file locks to share across machines)."""
    if not remote:
        return Path(location)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinydancer" / "remote"
    return cache / hashlib.sha256(str(location).encode()).hexdigest()[:16]
