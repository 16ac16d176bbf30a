"""The report and chart commands: `tinydancer report` (one self-contained HTML page of a log's replays), `tinydancer
curve` (the cost-quality curve as a table and a chart), and the what-if chart `tinydancer whatif --chart` writes.
Output paths are checked before any work; nothing is written unless asked."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tinydancer_duck.options import BUDGETS, COLUMNS, INCLUDE_UNOBSERVED, POINTS, QUALITY_THRESHOLD, Policy

from ._flags import add_flags, flag_values
from ._paths import CHART, HTML, TABLE, check_output
from ._replay import LOG_HELP, announce_columns, sql_flags, sql_values, warn
from ._stores import READ, store_option

#: The report's options: what-if budgets (optional: a default sweep), the quality threshold, the curve's points, the
#: log's columns and the replay's constraints.
REPORT_PARAMS = (BUDGETS.evolve(default=None, doc="total budgets in dollars, comma-separated (default: 8 from the "
                                "cheapest to the dearest single agent's total, and the actual spend)"),
                 QUALITY_THRESHOLD.evolve(doc="quality the budget frontier is held to (default 95% of the best "
                                          "single agent's)"),
                 POINTS, COLUMNS, *Policy.flat_params(choosing=False), INCLUDE_UNOBSERVED)


def _replay_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"columns": args.columns, "observed_only": args.observed_only, "holdout": args.holdout}


def report_command(args: argparse.Namespace) -> int:
    from tinydancer_duck.report import write_report

    check_output("--output", args.output, HTML)
    announce_columns(args.log, args.columns)
    from tinydancer_duck.engine import Engine

    written = write_report(Engine(args.store), args.log, args.output, **flag_values(args, REPORT_PARAMS))
    data = written["data"]
    for _, sentence in data.headline:
        print(sentence)
    if data.unobserved:
        names = ", ".join(a["name"] for a in data.unobserved)
        print(f"compared on their priors alone: {names}" if data.unobserved_included else
              f"left out, no evidence in this log: {names} (--include-unobserved compares them on their priors)")
    print(f"report written to {written['path']}: {written['bytes'] / 1024:.0f} KB in {written['seconds']:.1f} s "
          f"({data.requests:,} requests; AIQ router {data.aiq['aiq_router']:.4f}, zero router "
          f"{data.aiq['aiq_zero_router']:.4f})")
    warn(data.warnings)
    return 0


def curve_command(args: argparse.Namespace) -> int:
    check_output("--output", args.output, TABLE)
    check_output("--chart", args.chart, CHART)
    announce_columns(args.log, args.columns)
    from tinydancer_duck.engine import Engine
    from tinydancer_duck.replay import curve

    snapshot = Engine(args.store).snapshot()
    table, result = curve(snapshot, args.log, **sql_values(args, "ruvector_cost_quality_curve"))
    from ._table import fixed, money, show

    show(("series", "label", "mean cost ($/request)", "quality (0-1)", "on hull"),
         [(r["series"], r["label"], money(r["cost"]), fixed(r["quality"], 4),
           r["on_hull"] if r["series"] != "oracle" else None) for r in table.to_pylist()])
    print(f"AIQ router {result['aiq_router']:.4f}, zero router {result['aiq_zero_router']:.4f} over mean costs "
          f"${money(result['c_min'])} to ${money(result['c_max'])} per request")
    if args.output:
        _write_table(table, args.output)
        print(f"curve written to {args.output}")
    if args.chart:
        from tinydancer_duck.report import actual_and_calibrated, curve_chart, save_chart
        
        actual, calibrated = actual_and_calibrated(snapshot, args.log, **_replay_options(args))
        point = None if actual is None else {"cost": actual["cost"], "quality": actual["quality"]}
        save_chart(curve_chart(table, result, actual=point, calibrated=calibrated), args.chart, argument="--chart")
        print(f"chart written to {args.chart}")
    warn(result["warnings"])
    return 0


def _write_table(table: Any, path: str) -> None:
    if path.lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        from pyarrow import csv

        csv.write_csv(table, path)


def write_whatif_chart(args: argparse.Namespace, frontier: Any) -> Path:
    """Draw a :class:`~tinydancer_duck.replay.Frontier` (the budgets, each single agent and the log's actual
    policy) to --chart."""
    from tinydancer_duck.report import save_chart, whatif_chart

    spec = whatif_chart(frontier.table, agents=frontier.single_agents, actual=frontier.actual,
                        quality_threshold=args.quality_threshold)
    return save_chart(spec, args.chart, argument="--chart")


def add_commands(commands: Any) -> None:
    """Register `report` and `curve` on the `tinydancer` subcommands."""
    report = commands.add_parser(
        "report", help="one self-contained HTML report of a log: curve, what-if, agent mix, savings",
        description="Replay a log with the store's agents and router and write one self-contained HTML file (inline "
                    "SVG charts, no script, nothing fetched): its conclusions in one sentence per question (printed "
                    "too); the agents without evidence in the log (left out unless --include-unobserved); "
                    "the cost-quality curve with single agents, the oracle, "
                    "the log's actual policy and the router (AIQ beside the zero router); the budget what-if "
                    "frontier against the actual spend and the quality threshold; the agent mix per policy; savings "
                    "against the actual policy with each figure's source; and the table behind each chart.")
    store_option(report, READ)
    report.add_argument("log", help=LOG_HELP)
    report.add_argument("-o", "--output", default="report.html", help="HTML file to write (default report.html)")
    add_flags(report, REPORT_PARAMS)
    report.set_defaults(run=report_command)

    curve = commands.add_parser(
        "curve", help="the cost-quality curve of a log: router, single agents, oracle, AIQ; CSV/Parquet, SVG/PNG",
        description="Sweep the router over willingness to pay on a log and print each point, the single agents "
                    "(the zero router) and the oracle, with AIQ for both; write the table as CSV or Parquet and "
                    "the chart as SVG or PNG (by the --chart suffix).")
    store_option(curve, READ)
    curve.add_argument("log", help=LOG_HELP)
    sql_flags(curve, "ruvector_cost_quality_curve")
    curve.add_argument("--output", default=None, help="write the curve table: .csv or .parquet")
    curve.add_argument("--chart", default=None, help="write the chart: .svg or .png")
    curve.set_defaults(run=curve_command)
