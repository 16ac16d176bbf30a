"""`tinydancer snapshot` and `tinydancer route-parquet`: freeze a store into a snapshot file, and route a Parquet log
with it on this process, Ray Data or Spark. Heavy imports (lancedb, ray, pyspark) happen inside the commands."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tinydancer_duck.options import EXPLAIN, NUM_FALLBACKS, RouteOptions

from ._flags import add_flags, flag_values
from ._paths import check_output
from ._progress import ProgressBar
from ._stores import READ, store_option


def add_commands(commands: Any) -> None:
    """Register both commands on the ``tinydancer`` subparsers."""
    snapshot = commands.add_parser(
        "snapshot", help="freeze a store's routing state into one file for workers",
        description="Build the routing snapshot of a store (agents, semantic routes, models, breakers and budgets "
                    "as of now or --as-of) and write it to one self-contained file that route-parquet, "
                    "RoutingSnapshot.load and every worker read; no store access is needed after this.")
    store_option(snapshot, READ)
    snapshot.add_argument("--storage-options", default=None, metavar="JSON",
                          help="object-store settings for an s3:// store, e.g. '{\"aws_endpoint\": \"...\"}'")
    snapshot.add_argument("--as-of", default=None, help="ISO date-time to build the snapshot at (default: now)")
    snapshot.add_argument("-o", "--output", required=True, help="snapshot file to write, e.g. snap.tds")
    snapshot.add_argument("--key-file", default=None, metavar="FILE",
                          help="sign the file with the secret in FILE (HMAC-SHA256); readers need the same key")
    snapshot.set_defaults(run=run_snapshot)

    route = commands.add_parser(
        "route-parquet", help="route a Parquet log into Parquet files on this process, Ray or Spark",
        description="Route every row of a Parquet log (a file, folder or glob) with the same decision code as "
                    "ruvector_route and write OUTPUT_DIR/part-*.parquet holding the kept columns and the decision "
                    "fields. --engine local runs here; ray and spark map the same batch function over --workers "
                    "processes (pip install \"tinydancer_duck[ray]\" or \"[spark]\"; Spark needs Java).")
    route.add_argument("input", help="Parquet file, folder or glob")
    route.add_argument("output", help="output folder")
    source = route.add_mutually_exclusive_group(required=True)
    source.add_argument("--store", default=None, help="build the snapshot from this store (directory or s3:// URI)")
    source.add_argument("--snapshot", default=None, help="a snapshot file made by `tinydancer snapshot`")
    route.add_argument("--key-file", default=None, metavar="FILE",
                       help="the secret a --snapshot file was signed with (`tinydancer snapshot --key-file`)")
    route.add_argument("--storage-options", default=None, metavar="JSON", help="object-store settings for --store")
    route.add_argument("--engine", choices=("local", "ray", "spark"), default="local", help="default local")
    route.add_argument("--workers", type=int, default=1, help="worker processes for ray/spark (default 1)")
    route.add_argument("--request-column", default="request", help="column holding the request (default request)")
    route.add_argument("--keep", nargs="+", default=None, metavar="COL",
                       help="input columns to copy to the output (default: all)")
    add_flags(route, (*RouteOptions.params(), NUM_FALLBACKS, EXPLAIN))
    route.add_argument("--batch-rows", type=int, default=8192, help="rows per batch (default 8192)")
    route.set_defaults(run=run_route_parquet, store_use=READ)


def _storage_options(text: str | None) -> dict[str, str] | None:
    if text is None:
        return None
    from tinydancer_duck.errors import InvalidArgument

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument("storage_options", text, f"is not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise InvalidArgument("storage_options", text, "must be a JSON object")
    return {str(k): str(v) for k, v in value.items()}


def _key(path: str | None) -> bytes | None:
    """The signing key held in a file (without its trailing newline), so it never appears on a command line."""
    if path is None:
        return None
    from pathlib import Path

    from tinydancer_duck.errors import InvalidArgument

    try:
        return Path(path).read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise InvalidArgument("key_file", path, f"cannot be read ({exc.strerror or exc})") from None


def _build_snapshot(store: str | None, storage_options: str | None, as_of: str | None = None) -> Any:
    from tinydancer_duck.engine import Engine

    return Engine(store, storage_options=_storage_options(storage_options)).snapshot(_as_of(as_of))


def _as_of(text: str | None) -> Any:
    if text is None:
        return None
    from datetime import datetime, timezone

    from tinydancer_duck.errors import InvalidArgument

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument("as_of", text, "must be an ISO date-time, e.g. 2026-11-01T12:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def run_snapshot(args: argparse.Namespace) -> int:
    check_output("--output", args.output)
    snapshot = _build_snapshot(args.store, args.storage_options, args.as_of)
    path = snapshot.save(args.output, key=_key(args.key_file))
    print(f"snapshot of {snapshot.agents.size} agents, {snapshot.routes.size} routes "
          f"({snapshot.embedder_identity}) written to {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


def run_route_parquet(args: argparse.Namespace) -> int:
    from tinydancer_duck.distributed import route_parquet
    from tinydancer_duck.snapshot import RoutingSnapshot

    check_output("output", args.output, ())
    snapshot = RoutingSnapshot.load(args.snapshot, key=_key(args.key_file)) if args.snapshot else \
        _build_snapshot(args.store, args.storage_options)
    options = flag_values(args, (*RouteOptions.params(), NUM_FALLBACKS, EXPLAIN))
    bar = ProgressBar(f"routing on {args.engine}")
    try:
        report = route_parquet(args.input, args.output, snapshot, engine=args.engine, workers=args.workers,
                               batch_rows=args.batch_rows, progress=bar, request=args.request_column,
                               keep=args.keep, **{k: v for k, v in options.items() if v is not None})
    finally:
        bar.close()
    print(f"routed {report.rows:,} rows on {report.engine} ({report.workers} worker"
          f"{'s' if report.workers != 1 else ''}) in {report.seconds:.1f} s ({report.rows_per_s:,.0f} rows/s); "
          f"written to {report.output}")
    return 0
