"""The `tinydancer` command: a thin shell over the library; errors become one clean line and exit code 2."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from tinydancer_duck import __version__
from tinydancer_duck.errors import TinydancerError

from ._errors import Parser, is_wrapped_udf_error, one_line
from ._flags import add_flags, check_flags, flag_values
from ._replay import (
    LOG_HELP,
    calibrate_command,
    import_agents_command,
    list_agents_command,
    simulate_command,
    sql_flags,
    sql_values,
    train_outcomes_command,
    whatif_command,
)
from ._report import add_commands as add_report_commands
from ._stores import READ, SQL, WRITE, init_command, run_with_store, store_option


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    run_demo(args.store, rows=args.rows)
    return 0


def _example_data(args: argparse.Namespace) -> int:
    from tinydancer_duck.datasets.example_data import existing, write_example_data
    from tinydancer_duck.errors import InvalidArgument

    from ._paths import check_output

    folder = check_output("DIR", args.folder, ())
    clashes = existing(folder)
    if clashes and not args.force:
        raise InvalidArgument("DIR", args.folder, f"already holds {clashes[0].name}: choose another folder, or "
                              "--force to replace the example files")
    folder.mkdir(exist_ok=True)
    for name, rows in write_example_data(folder).items():
        print(f"wrote {folder / name} ({rows:,} rows)")
    print("synthetic and seeded (tinydancer_duck/datasets/generate_log.py): outcomes.parquet holds every agent's "
          "outcome per request and the log's own choice; the README's journey reads these files")
    return 0


def _sql(args: argparse.Namespace) -> int:
    import duckdb

    from tinydancer_duck.engine import connect
    from tinydancer_duck.errors import InvalidArgument

    try:  # parsed before the store is opened (or created): a typo creates nothing
        statements = duckdb.connect().extract_statements(args.query)
    except duckdb.Error as exc:
        raise InvalidArgument("query", args.query, one_line(exc)) from exc
    con = connect(args.store)
    if sys.stdout.isatty():  # DuckDB draws its own bar on long queries; in a pipe it would only add noise
        con.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = true")
    try:  # one statement at a time, so each one's result is printed (DuckDB alone would show only the last)
        for statement in statements:
            result = con.sql(statement.query)
            if result is not None:
                result.show(max_rows=args.max_rows, max_width=args.max_width)
    except duckdb.Error as exc:
        if is_wrapped_udf_error(exc):  # our own message names the function's argument and value
            raise
        raise InvalidArgument("query", args.query, one_line(exc)) from exc
    return 0


def _route(args: argparse.Namespace) -> int:
    from tinydancer_duck.engine import Engine
    from tinydancer_duck.options import RouteOptions

    table = Engine(args.store).route(args.requests, **flag_values(args, RouteOptions.params()))
    from ._table import fixed, money, number, show

    rows = table.to_pylist()
    show(("#", "request", "agent", "est. cost ($)", "est. latency (ms)", "confidence (0-1)"),
         [(i, request, row["agent_name"], money(row["estimated_cost"]), number(row["estimated_latency_ms"]),
           fixed(row["confidence"], 2)) for i, (request, row) in enumerate(zip(args.requests, rows), 1)])
    print("\nwhy:")
    for i, row in enumerate(rows, 1):
        print(f"  {i}. {row['reasoning']}")
    print("\nest. cost and latency come from the agent's registered price and average latency (priors until usage "
          "is recorded); confidence: how clearly the chosen agent beat the others.")
    return 0


def _read_columns(source: str, columns: Sequence[str]) -> dict[str, list]:
    """Columns of a Parquet/CSV/JSON file (anything DuckDB reads by path), by name."""
    import duckdb

    from tinydancer_duck.errors import InvalidArgument

    con = duckdb.connect()
    try:
        table = con.sql(f"SELECT * FROM {_quote_literal(source)}").to_arrow_table()
    except duckdb.Error as exc:
        raise InvalidArgument("source", source, f"cannot be read ({str(exc).splitlines()[0]})") from None
    for name in columns:
        if name not in table.column_names:
            raise InvalidArgument("column", name, f"is not a column of {source} (it has {table.column_names})")
    return {name: table[name] for name in columns}


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _train(args: argparse.Namespace) -> int:
    from tinydancer_duck.engine import Engine
    from tinydancer_duck.learn import train_classifier
    from tinydancer_duck.options import FastGRNNConfig

    from ._progress import ProgressBar, stopping_note

    values = sql_values(args, "ruvector_train_classifier", skip=("source",))
    text_column, label_column = values.pop("text_column", "text"), values.pop("label_column", "label")
    columns = _read_columns(args.source, [text_column, label_column])
    bar = ProgressBar(f"training {values.get('model', 'default')!r}", unit="epoch")
    report = train_classifier(Engine(args.store), columns[text_column], columns[label_column],
                              progress=lambda epoch, total, metrics: bar(epoch, total, metrics),
                              **values)
    bar.close()
    print(f"saved {report.model!r} version {report.version}: train accuracy {report.train_accuracy:.4f}, "
          f"validation accuracy {report.validation_accuracy:.4f}, {report.n_classes} classes, {report.seconds:.1f} s")
    print(stopping_note(report.epochs_run, report.best_epoch, values.get("epochs", FastGRNNConfig().epochs)))
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from tinydancer_duck.store import default_store_path

    from ._distributed import _storage_options
    from ._doctor import check_store
    from ._repair import repair_store

    path = args.store if args.store is not None else default_store_path()
    options = _storage_options(args.storage_options)
    if args.repair:
        done, report = repair_store(path, options)
        print("\n".join(f"repair: {line}" for line in done))
    else:
        report = check_store(path, options)
    print(report.text())
    return 0 if report.healthy else 1


def _reembed(args: argparse.Namespace) -> int:
    from tinydancer_duck.cli._reembed import reembed_store
    from tinydancer_duck.embed import make_embedder
    from tinydancer_duck.store import default_store_path

    report = reembed_store(args.store if args.store is not None else default_store_path(),
                           make_embedder(args.embedder))
    print(report.text())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Every command and its options. Long because it is one declarative table of the command line; each
    command's work lives in its own function above."""
    parser = Parser(prog="tinydancer", description="Route AI requests to agents with DuckDB SQL.")
    parser.add_argument("--version", action="version", version=f"tinydancer_duck {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (before or after the "
                                                              "command)")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="register sample agents and route a Parquet log of real requests in SQL",
                               description="Register eight agents in a store folder (./tinydancer-demo unless "
                                           "--store), write a Parquet log of real requests inside it, route it in "
                                           "one SQL query under two objectives, explain every figure and print the "
                                           "next three commands to try on that store.")
    demo.add_argument("--store", default="tinydancer-demo",
                      help="folder of the demo's store and request log (default ./tinydancer-demo; made if missing)")
    demo.add_argument("--rows", type=int, default=3000,
                      help="requests in the generated log, 1 to 18,100 (default 3000)")
    demo.set_defaults(run=_demo, store_use=WRITE)

    init = commands.add_parser("init", help="create an empty store (no agents) at a path",
                               description="Create an empty store at PATH (default: $TINYDANCER_HOME, else "
                                           "~/.tinydancer). Commands that only read a store (agents list, route, "
                                           "simulate, report, ...) refuse a path that holds none; agents import, "
                                           "train, train-outcomes, demo and sql --create make one too.")
    init.add_argument("store", nargs="?", default=None, metavar="PATH", help="the store's folder")
    init.set_defaults(run=init_command)

    example = commands.add_parser(
        "example-data", help="write the example files the README's journey reads",
        description="Write outcomes.parquet (an outcome log in RouterBench's wide shape with the log's own choice), "
                    "requests.parquet (requests to route), usage.parquet (a usage log) and agents.parquet (agent "
                    "rows) into DIR: synthetic, seeded, the same every time.")
    example.add_argument("folder", nargs="?", default=".", metavar="DIR",
                         help="folder to write into (default: the current folder; made if missing)")
    example.add_argument("--force", action="store_true", help="replace example files already in DIR")
    example.set_defaults(run=_example_data)

    sql = commands.add_parser("sql", help="run SQL statements with every ruvector_* function available",
                              description="Run SQL on an in-memory DuckDB connected to the store and print each "
                                          "statement's result. A store that does not exist is refused unless "
                                          "--create (a statement may read or write it).")
    store_option(sql, SQL)
    sql.add_argument("--create", action="store_true",
                     help="create the store when --store holds none (without it a missing store is refused)")
    sql.add_argument("query", help="the SQL to run, e.g. \"SELECT * FROM ruvector_list_agents()\"")
    sql.add_argument("--max-rows", type=int, default=40, help="rows to print (default 40)")
    sql.add_argument("--max-width", type=int, default=160, help="characters per printed line (default 160)")
    sql.set_defaults(run=_sql)

    route = commands.add_parser("route", help="route one or more requests with the store's agents",
                                description="Route requests given on the command line and print each decision.")
    store_option(route, READ)
    route.add_argument("requests", nargs="+", help="request texts")
    from tinydancer_duck.options import RouteOptions

    add_flags(route, RouteOptions.params())
    route.set_defaults(run=_route)

    train = commands.add_parser("train", help="train a route classifier from a labeled file, with a progress bar",
                                description="Train a FastGRNN route classifier on (text, label) rows of a Parquet, "
                                            "CSV or JSON file and save it as the store's active classifier.")
    store_option(train, WRITE)
    train.add_argument("source", help="file with one request and its label per row")
    sql_flags(train, "ruvector_train_classifier", skip=("source",))
    train.set_defaults(run=_train)

    simulate = commands.add_parser("simulate", help="replay a request log under a routing policy",
                                   description="Replay a log with the store's agents and router under a policy and "
                                               "print cost, quality (with its source), latency, agent mix and "
                                               "savings against the log's actual choices.")
    store_option(simulate, READ)
    simulate.add_argument("log", help=LOG_HELP)
    sql_flags(simulate, "ruvector_simulate_summary")
    simulate.add_argument("--output", default=None, help="write per-request decisions to this Parquet file")
    simulate.set_defaults(run=simulate_command)

    whatif = commands.add_parser("whatif", help="what each budget would have bought over a log (a frontier)",
                                 description="Allocate each total budget over the log's requests (Lagrangian) and "
                                             "print spend, quality, requests served and agent mix beside the log's "
                                             "actual policy; with --output the frontier as CSV or Parquet, with "
                                             "--chart its chart as SVG or PNG.")
    store_option(whatif, READ)
    whatif.add_argument("log", help=LOG_HELP)
    sql_flags(whatif, "ruvector_budget_whatif")
    whatif.add_argument("--output", default=None, help="write the frontier table: .csv or .parquet")
    whatif.add_argument("--chart", default=None, help="write the frontier's chart: .svg or .png")
    whatif.set_defaults(run=whatif_command)
    add_report_commands(commands)

    outcomes = commands.add_parser("train-outcomes", help="train the outcome router from a log with per-agent outcomes",
                                   description="Learn each agent's expected quality per request from a log with "
                                               "per-agent outcomes (wide like RouterBench, or long), save it as the "
                                               "active outcome router and print its out-of-fold metrics and the "
                                               "calibrated willingness to pay.")
    store_option(outcomes, WRITE)
    outcomes.add_argument("log", help=LOG_HELP)
    sql_flags(outcomes, "ruvector_train_outcome_router", skip=("source",))
    outcomes.set_defaults(run=train_outcomes_command)

    calibrate = commands.add_parser("calibrate", help="the willingness to pay that meets a target",
                                    description="Read the willingness to pay that meets one target off the outcome "
                                                "router's out-of-fold cost-quality curve (default: 95%% of the best "
                                                "single agent's quality, the knob optimize_for 'learned' uses).")
    store_option(calibrate, READ)
    sql_flags(calibrate, "ruvector_calibrate", skip=())
    calibrate.set_defaults(run=calibrate_command)

    agents = commands.add_parser("agents", help="manage the store's agents", description="Manage agents.")
    agent_commands = agents.add_subparsers(dest="agents_command", required=True)
    importer = agent_commands.add_parser(
        "import", help="register every agent of an outcome log, priced and scored by the log",
        description="Register every agent a log holds outcomes for (wide like RouterBench, or long) with its mean "
                    "logged cost (per call, or per 1k tokens when the log has tokens_in and tokens_out), latency "
                    "and observed quality.")
    store_option(importer, WRITE)
    importer.add_argument("log", help=LOG_HELP)
    sql_flags(importer, "ruvector_import_agents")
    importer.set_defaults(run=import_agents_command)
    lister = agent_commands.add_parser("list", help="print the store's agents as a table",
                                       description="Print every agent of the store: type, capabilities, prices, "
                                                   "latency, quality, requests recorded.")
    store_option(lister, READ)
    lister.set_defaults(run=list_agents_command)

    doctor = commands.add_parser("doctor", help="check a store and report its problems in plain words",
                                 description="Check a store: every table opened and read in full, its files "
                                             "against their checksums (truncated or changed files), lost versions, "
                                             "schemas, embedder identity, fragments, duplicate names, orphaned route "
                                             "examples, models that fail to load, half-done writes, agent stats "
                                             "against usage, and the routing snapshot. Exit code 0 when healthy, 1 "
                                             "when problems were found.")
    store_option(doctor, READ)
    doctor.add_argument("--storage-options", default=None, metavar="JSON",
                        help="object-store settings for an s3:// store, e.g. '{\"aws_endpoint\": \"...\"}'")
    doctor.add_argument("--repair", action="store_true",
                        help="after copying the store beside it, fix what is safe: finish half-done writes, go back "
                             "to the newest undamaged version of a damaged table (or manifest), accept lost "
                             "versions, record missing checksums, recount agent stats from the usage that survived")
    doctor.set_defaults(run=_doctor)

    reembed = commands.add_parser("reembed", help="move a store to another embedder (e.g. a new default table)",
                                  description="Recompute every vector of a store (agents' capabilities, routes' "
                                              "descriptions, route examples) with the given embedder, after a backup "
                                              "of the store folder; what has no text to embed is reported.")
    store_option(reembed, READ)
    reembed.add_argument("--embedder", default="static", help="static (default), onnx or hashing")
    reembed.set_defaults(run=_reembed)

    from ._distributed import add_commands as add_distributed_commands

    add_distributed_commands(commands)
    _add_debug(parser)
    return parser


def _add_debug(parser: argparse.ArgumentParser) -> None:
    """``--debug`` after the command too (``tinydancer sql "..." --debug``), on every subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                 help="show the traceback of an error")
                _add_debug(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every error is one line on stderr and exit code 2 (``--debug``: with its traceback)."""
    args = build_parser().parse_args(argv)
    try:
        check_flags(args)
        return run_with_store(args, args.run)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's one seam: every failure becomes one line
        if args.debug:
            traceback.print_exc()
        ours = isinstance(exc, TinydancerError) or is_wrapped_udf_error(exc)
        hint = "" if args.debug or ours else " (--debug shows the traceback)"
        print(f"tinydancer: {one_line(exc)}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
