"""Stores are created on purpose: a command that only reads refuses a path that holds no store (a mistyped --store
would otherwise become a new, empty store and an empty answer), and a command that writes creates one and says so
once on stderr.

Each command declares how it uses its store (``store_use`` in its parser defaults): ``read`` (refuse a missing
store), ``write`` (create one when missing), ``sql`` (refuse unless ``--create``: a statement may read or write). The
Python API is unchanged: ``Engine(path)`` still creates a store where there is none.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from tinydancer_duck.errors import StoreError

READ, WRITE, SQL = "read", "write", "sql"


def store_option(parser: argparse.ArgumentParser, use: str) -> None:
    """The ``--store`` option, and how the command uses the store (:data:`READ`, :data:`WRITE` or :data:`SQL`)."""
    made = {WRITE: " (made when missing)", READ: " (must hold a store)"}.get(use, "")
    parser.add_argument("--store", default=None,
                        help=f"LanceDB store directory (default: $TINYDANCER_HOME, else ~/.tinydancer){made}")
    parser.set_defaults(store_use=use)


def store_path(store: str | Path | None) -> str | Path:
    """The store a ``--store`` value names: the path, or the default ($TINYDANCER_HOME, else ~/.tinydancer)."""
    from tinydancer_duck.store import default_store_path

    return default_store_path() if store is None else store


def holds_store(store: str | Path | None) -> bool:
    """Whether ``store`` is a store: a folder holding one of the store's tables (an object-store URI is taken as
    one: listing a bucket is the store's own business)."""
    from tinydancer_duck.store import TABLES

    path = store_path(store)
    if "://" in str(path):
        return True
    folder = Path(path).expanduser()
    try:
        return folder.is_dir() and any((folder / f"{table}.lance").is_dir() for table in TABLES)
    except OSError as exc:  # a folder this user may not look into
        raise StoreError(f"cannot open store at {path}: {exc.strerror or exc}") from None


def missing_store(store: str | Path | None, hint: str = "") -> StoreError:
    path = str(store_path(store))
    return StoreError(f"no store at {path}; create one with `tinydancer init {path}` or any registering "
                      f"command{hint}")


def run_with_store(args: argparse.Namespace, run: Callable[[argparse.Namespace], int]) -> int:
    """Run a command under its store rule (module docstring); a store the command created is announced once on
    stderr, even when the command then fails."""
    use = getattr(args, "store_use", None)
    if use is None or getattr(args, "snapshot", None) is not None:  # route-parquet --snapshot reads no store
        return run(args)
    existed = holds_store(args.store)
    if not existed and (use == READ or (use == SQL and not args.create)):
        raise missing_store(args.store, " (or sql --create)" if use == SQL else "")
    try:
        return run(args)
    finally:
        if not existed and holds_store(args.store):
            print(f"created a new store at {store_path(args.store)}", file=sys.stderr)


def init_command(args: argparse.Namespace) -> int:
    """`tinydancer init [PATH]`: create an empty store (no agents), or say that one is there already."""
    from tinydancer_duck.engine import Engine

    path = store_path(args.store)
    if holds_store(path):
        agents = Engine(path).list_agents().num_rows
        print(f"{path} holds a store already ({agents} agent(s)); nothing changed")
        return 0
    Engine(path)
    print(f"created an empty store at {path}: register agents with `tinydancer agents import LOG --store {path}` "
          f"or `tinydancer sql \"SELECT ruvector_register_agent(...)\" --store {path}`")
    return 0
