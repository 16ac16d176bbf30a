"""The `tinydancer` command: a thin shell over the library; errors become one clean line and exit code 2."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from tinydancer_duck import __version__
from tinydancer_duck.errors import TinydancerError

from ._errors import Parser, is_wrapped_udf_error, one_line
from ._replay import (
    LOG_HELP,
    calibrate_command,
    estimate_options,
    import_agents_command,
    list_agents_command,
    policy_options,
    simulate_command,
    train_outcomes_command,
    whatif_command,
)
from ._report import add_commands as add_report_commands


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=None,
                        help="LanceDB store directory (default: $TINYDANCER_HOME, else ~/.tinydancer)")


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    run_demo(args.store, rows=args.rows)
    return 0


def _sql(args: argparse.Namespace) -> int:
    import duckdb

    from tinydancer_duck.engine import connect
    from tinydancer_duck.errors import InvalidArgument

    con = connect(args.store)
    if sys.stdout.isatty():  # DuckDB draws its own bar on long queries; in a pipe it would only add noise
        con.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = true")
    try:
        result = con.sql(args.query)
        if result is not None:
            result.show(max_rows=args.max_rows, max_width=args.max_width)
    except duckdb.Error as exc:
        if is_wrapped_udf_error(exc):  # our own message names the function's argument and value
            raise
        raise InvalidArgument("query", args.query, one_line(exc)) from exc
    return 0


def _route(args: argparse.Namespace) -> int:
    from tinydancer_duck.engine import Engine

    table = Engine(args.store).route(args.requests, optimize_for=args.optimize_for,
                                     required_capabilities=args.require or None, max_cost=args.max_cost,
                                     max_latency_ms=args.max_latency_ms, min_quality=args.min_quality,
                                     willingness_to_pay=args.willingness_to_pay)
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

    from ._progress import ProgressBar, stopping_note

    columns = _read_columns(args.source, [args.text_column, args.label_column])
    bar = ProgressBar(f"training {args.model!r}", unit="epoch")
    report = train_classifier(Engine(args.store), columns[args.text_column], columns[args.label_column],
                              model=args.model, hidden_dim=args.hidden_dim, epochs=args.epochs,
                              random_state=args.seed,
                              progress=lambda epoch, total, metrics: bar(epoch, total, metrics))
    bar.close()
    print(f"saved {report.model!r} version {report.version}: train accuracy {report.train_accuracy:.4f}, "
          f"validation accuracy {report.validation_accuracy:.4f}, {report.n_classes} classes, {report.seconds:.1f} s")
    print(stopping_note(report.epochs_run, report.best_epoch, args.epochs))
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from tinydancer_duck.store import default_store_path

    from ._doctor import check_store
    from ._repair import repair_store

    path = args.store if args.store is not None else default_store_path()
    if args.repair:
        done, report = repair_store(path)
        print("\n".join(f"repair: {line}" for line in done))
    else:
        report = check_store(path)
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
    demo.set_defaults(run=_demo)

    sql = commands.add_parser("sql", help="run one SQL statement with every ruvector_* function available",
                              description="Run SQL on an in-memory DuckDB connected to the store.")
    _store_option(sql)
    sql.add_argument("query", help="the SQL to run, e.g. \"SELECT * FROM ruvector_list_agents()\"")
    sql.add_argument("--max-rows", type=int, default=40, help="rows to print (default 40)")
    sql.add_argument("--max-width", type=int, default=160, help="characters per printed line (default 160)")
    sql.set_defaults(run=_sql)

    route = commands.add_parser("route", help="route one or more requests with the store's agents",
                                description="Route requests given on the command line and print each decision.")
    _store_option(route)
    route.add_argument("requests", nargs="+", help="request texts")
    route.add_argument("--optimize-for", default="balanced",
                       help="cost, latency, quality, balanced (default), quality_per_dollar or learned (the outcome "
                            "router's calibrated willingness to pay)")
    route.add_argument("--willingness-to-pay", type=float, default=None, metavar="DOLLARS",
                       help="dollars per unit of expected quality: the best expected quality - cost / this wins")
    route.add_argument("--require", action="append", default=[], metavar="CAPABILITY",
                       help="a required capability (repeatable)")
    route.add_argument("--max-cost", type=float, default=None, help="max estimated dollars per request")
    route.add_argument("--max-latency-ms", type=float, default=None, help="max average latency in ms")
    route.add_argument("--min-quality", type=float, default=None, help="min quality score in [0, 1]")
    route.set_defaults(run=_route)

    train = commands.add_parser("train", help="train a route classifier from a labeled file, with a progress bar",
                                description="Train a FastGRNN route classifier on (text, label) rows of a Parquet, "
                                            "CSV or JSON file and save it as the store's active classifier.")
    _store_option(train)
    train.add_argument("source", help="file with one request and its label per row")
    train.add_argument("--text-column", default="text", help="column holding the request text (default text)")
    train.add_argument("--label-column", default="label", help="column holding the label (default label)")
    train.add_argument("--model", default="default", help="model name in the store (default 'default')")
    train.add_argument("--hidden-dim", type=int, default=64, help="FastGRNN hidden units (default 64)")
    train.add_argument("--epochs", type=int, default=30, help="maximum epochs (default 30; early stopping)")
    train.add_argument("--seed", type=int, default=0, help="random_state (default 0: reproducible weights)")
    train.set_defaults(run=_train)

    simulate = commands.add_parser("simulate", help="replay a request log under a routing policy",
                                   description="Replay a log with the store's agents and router under a policy and "
                                               "print cost, quality (with its source), latency, agent mix and "
                                               "savings against the log's actual choices.")
    _store_option(simulate)
    simulate.add_argument("log", help=LOG_HELP)
    simulate.add_argument("--optimize-for", default="balanced",
                          help="cost, latency, quality, balanced (default), quality_per_dollar, learned or total_cost")
    simulate.add_argument("--budget", type=float, default=None,
                          help="total dollars for the whole log (Lagrangian; held in logged cost)")
    simulate.add_argument("--willingness-to-pay", type=float, default=None, metavar="DOLLARS",
                          help="route every request by expected quality - cost / this (as route does)")
    simulate.add_argument("--output", default=None, help="write per-request decisions to this Parquet file")
    policy_options(simulate)
    estimate_options(simulate)
    simulate.set_defaults(run=simulate_command)

    whatif = commands.add_parser("whatif", help="what each budget would have bought over a log (a frontier)",
                                 description="Allocate each total budget over the log's requests (Lagrangian) and "
                                             "report spend, quality, requests served and agent mix; writes the "
                                             "frontier as CSV or Parquet, and its chart (SVG or PNG) when the "
                                             "[charts] extra is installed.")
    _store_option(whatif)
    whatif.add_argument("log", help=LOG_HELP)
    whatif.add_argument("--budgets", required=True, help="comma-separated total budgets in dollars, e.g. 10,50,100")
    whatif.add_argument("--quality-threshold", type=float, default=None, help="mark budgets reaching this quality")
    whatif.add_argument("--latency-threshold-ms", type=float, default=None, help="drop agents slower than this")
    whatif.add_argument("--output", default="whatif.csv", help="frontier table: .csv (default whatif.csv) or .parquet")
    whatif.add_argument("--chart", default=None,
                        help="chart path, .svg or .png (default: the output path with .png, with the [charts] extra)")
    policy_options(whatif)
    estimate_options(whatif)
    whatif.set_defaults(run=whatif_command)
    add_report_commands(commands)

    outcomes = commands.add_parser("train-outcomes", help="train the outcome router from a log with per-agent outcomes",
                                   description="Learn each agent's expected quality per request from a log with "
                                               "per-agent outcomes (wide like RouterBench, or long), save it as the "
                                               "active outcome router and print its out-of-fold metrics and the "
                                               "calibrated willingness to pay.")
    _store_option(outcomes)
    outcomes.add_argument("log", help=LOG_HELP)
    outcomes.add_argument("--model", default="outcomes", help="model name in the store (default 'outcomes')")
    outcomes.add_argument("--columns", default=None, metavar="JSON", help="map log fields to columns")
    outcomes.add_argument("--kind", default="knn", help="knn (default), head, mf or ensemble")
    outcomes.add_argument("--hidden-dim", type=int, default=None, help="hidden units of a head (default 0: linear)")
    outcomes.add_argument("--epochs", type=int, default=None, help="maximum epochs of a head or mf (early stopping)")
    outcomes.add_argument("--seed", type=int, default=0, help="random_state (default 0)")
    outcomes.add_argument("--folds", type=int, default=5, help="cross-fitted folds for calibration (default 5)")
    outcomes.add_argument("--holdout", type=float, default=None, metavar="FRACTION",
                          help="keep this share of the requests out of training (simulate --holdout replays them)")
    outcomes.set_defaults(run=train_outcomes_command)

    calibrate = commands.add_parser("calibrate", help="the willingness to pay that meets a target",
                                    description="Read the willingness to pay that meets one target off the outcome "
                                                "router's out-of-fold cost-quality curve (default: 95%% of the best "
                                                "single agent's quality, the knob optimize_for 'learned' uses).")
    _store_option(calibrate)
    calibrate.add_argument("--quality-share", type=float, default=None, help="share of the best agent's quality")
    calibrate.add_argument("--cost-per-1k", type=float, default=None, help="dollars per 1,000 requests")
    calibrate.add_argument("--strongest-share", type=float, default=None,
                           help="share of requests sent to the best agent (RouteLLM's calibration)")
    calibrate.add_argument("--model", default=None, help="outcome router name (default: the active one)")
    calibrate.set_defaults(run=calibrate_command)

    agents = commands.add_parser("agents", help="manage the store's agents", description="Manage agents.")
    agent_commands = agents.add_subparsers(dest="agents_command", required=True)
    importer = agent_commands.add_parser(
        "import", help="register every agent of an outcome log, priced and scored by the log",
        description="Register every agent a log holds outcomes for (wide like RouterBench, or long) with its mean "
                    "logged cost (per call, or per 1k tokens when the log has tokens_in and tokens_out), latency "
                    "and observed quality.")
    _store_option(importer)
    importer.add_argument("log", help=LOG_HELP)
    importer.add_argument("--columns", default=None, metavar="JSON", help="map log fields to columns")
    importer.add_argument("--agent-type", default="llm", help="agent type of every agent (default llm)")
    importer.add_argument("--capability", action="append", default=[],
                          help="capability of every agent (repeatable; default general)")
    importer.set_defaults(run=import_agents_command)
    lister = agent_commands.add_parser("list", help="print the store's agents as a table",
                                       description="Print every agent of the store: type, capabilities, prices, "
                                                   "latency, quality, requests recorded.")
    _store_option(lister)
    lister.set_defaults(run=list_agents_command)

    doctor = commands.add_parser("doctor", help="check a store and report its problems in plain words",
                                 description="Check a store: every table opened and read in full, its files "
                                             "against their checksums (truncated or changed files), lost versions, "
                                             "schemas, embedder identity, fragments, duplicate names, orphaned route "
                                             "examples, models that fail to load, half-done writes, agent stats "
                                             "against usage, and the routing snapshot. Exit code 0 when healthy, 1 "
                                             "when problems were found.")
    _store_option(doctor)
    doctor.add_argument("--repair", action="store_true",
                        help="after copying the store beside it, fix what is safe: finish half-done writes, go back "
                             "to the newest undamaged version of a damaged table, accept lost versions, fold "
                             "missing usage into agent stats")
    doctor.set_defaults(run=_doctor)

    reembed = commands.add_parser("reembed", help="move a store to another embedder (e.g. a new default table)",
                                  description="Recompute every vector of a store (agents' capabilities, routes' "
                                              "descriptions, route examples) with the given embedder, after a backup "
                                              "of the store folder; what has no text to embed is reported.")
    _store_option(reembed)
    reembed.add_argument("--embedder", default="static", help="static (default), onnx or hashing")
    reembed.set_defaults(run=_reembed)

    from ._distributed import add_commands as add_distributed_commands

    add_distributed_commands(commands, _store_option)
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
        return args.run(args)
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
