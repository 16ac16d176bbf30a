"""The replay and learning commands: simulate, whatif, train-outcomes, calibrate and agents import; each prints
what it measured and where each figure came from, and the replay's warnings on stderr."""

from __future__ import annotations

import argparse
import sys

LOG_HELP = ("the log: a .parquet, .csv or .json/.jsonl file, or a folder or glob of them; RouterBench's sample_id, "
            "eval_name, prompt and model columns are taken as request_id, category, request and agent")


def policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--columns", default=None, metavar="JSON",
                        help="map log fields to columns, e.g. '{\"request\": \"prompt\"}'")
    parser.add_argument("--max-cost", type=float, default=None, help="max estimated dollars per request")
    parser.add_argument("--max-latency-ms", type=float, default=None, help="max average latency in ms")
    parser.add_argument("--min-quality", type=float, default=None, help="min quality score in [0, 1]")
    parser.add_argument("--exclude", action="append", default=[], metavar="AGENT", help="exclude an agent (repeatable)")
    parser.add_argument("--observed-only", action="store_true",
                        help="choose only among agents whose outcome the log holds for the request")
    parser.add_argument("--holdout", type=float, default=None, metavar="FRACTION",
                        help="replay only the requests train-outcomes --holdout FRACTION kept out of training")


def constraints(args: argparse.Namespace) -> dict:
    return {"max_cost": args.max_cost, "max_latency_ms": args.max_latency_ms, "min_quality": args.min_quality,
            "excluded_agents": args.exclude or None}


def announce_columns(log: str, columns: str | None) -> None:
    """Open the log once before any work (a bad log fails fast) and say on stderr which of its columns were taken
    under another name: "columns: sample_id → request_id, eval_name → category"."""
    from tinydancer_duck._logs import open_log

    aliased = open_log(log, columns=columns).aliased
    if aliased:
        print("columns: " + ", ".join(f"{column} → {name}" for column, name in aliased.items()), file=sys.stderr)


def warn(warnings: list[str]) -> None:
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def simulate_command(args: argparse.Namespace) -> int:
    from tinydancer_duck.engine import Engine
    from tinydancer_duck.replay import simulate

    from ._paths import PARQUET, check_output
    from ._progress import ProgressBar

    check_output("--output", args.output, PARQUET)
    announce_columns(args.log, args.columns)
    writer, bar = None, ProgressBar("simulating")

    def sink(batch):
        nonlocal writer
        import pyarrow.parquet as pq

        writer = writer or pq.ParquetWriter(args.output, batch.schema)
        writer.write_batch(batch)

    try:
        _, summary = simulate(Engine(args.store), args.log, optimize_for=args.optimize_for, budget=args.budget,
                              willingness_to_pay=args.willingness_to_pay, observed_only=args.observed_only,
                              holdout=args.holdout, columns=args.columns, keep_rows=False,
                              sink=sink if args.output else None, progress=bar, **constraints(args))
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    for key, value in summary.items():
        if key not in ("agent_mix", "warnings"):
            print(f"{key:24} {value:.6g}" if isinstance(value, float) else f"{key:24} {value}")
    for row in summary["agent_mix"]:
        print(f"  {row['agent']:30} {row['requests']:>9} requests  {row['share']:6.1%}  ${row['cost']:.4f}  "
              f"quality {row['quality']:.3f}")
    if args.output:
        print(f"per-request decisions written to {args.output}")
    warn(summary["warnings"])
    return 0


def whatif_command(args: argparse.Namespace) -> int:
    from tinydancer_duck.engine import Engine
    from tinydancer_duck.replay import budget_whatif

    from ._progress import ProgressBar
    from ._report import whatif_chart_path, write_whatif_chart

    chart_path = whatif_chart_path(args)
    announce_columns(args.log, args.columns)
    bar = ProgressBar("reading log")
    try:
        budgets = [float(b) for b in args.budgets.split(",") if b.strip()]
    except ValueError:
        from tinydancer_duck.errors import InvalidArgument

        raise InvalidArgument("budgets", args.budgets, "must be comma-separated numbers, e.g. 10,50,100") from None
    table = budget_whatif(Engine(args.store), args.log, budgets, quality_threshold=args.quality_threshold,
                          latency_threshold_ms=args.latency_threshold_ms, columns=args.columns,
                          observed_only=args.observed_only, holdout=args.holdout, progress=bar,
                          **{k: v for k, v in constraints(args).items() if k != "max_latency_ms"})
    bar.close()
    import polars as pl

    frame = pl.from_arrow(table)
    warnings = table["warnings"][0].as_py() if table.num_rows else []
    flat = frame.drop("warnings").with_columns(pl.col("agent_mix").list.eval(
        pl.element().struct.field("agent") + pl.lit(":") + pl.element().struct.field("requests").cast(pl.String))
        .list.join(" ").alias("agent_mix"))
    with pl.Config(tbl_rows=len(flat), tbl_cols=12, fmt_str_lengths=80, tbl_width_chars=200):
        print(flat)
    if args.output.endswith(".parquet"):
        frame.write_parquet(args.output)
    else:
        flat.write_csv(args.output)
    print(f"frontier written to {args.output}" + write_whatif_chart(args, table, chart_path))
    warn(warnings)
    return 0


def train_outcomes_command(args: argparse.Namespace) -> int:
    from tinydancer_duck.engine import Engine

    from ._progress import ProgressBar

    announce_columns(args.log, args.columns)
    bar = ProgressBar(f"training outcome router {args.model!r}")
    engine = Engine(args.store)
    table = engine.outcomes.train_log(args.log, columns=args.columns, model=args.model, kind=args.kind,
                                      hidden_dim=args.hidden_dim, epochs=args.epochs, random_state=args.seed,
                                      folds=args.folds, holdout=args.holdout, progress=bar)
    bar.close()
    for row in table.to_pylist():
        figures = "  ".join(f"{k} {row[k]:.4f}" for k in ("auc", "accuracy", "brier", "quality", "cost")
                            if row[k] is not None)
        print(f"{row['kind']:8} {row['name'][:40]:40} n={row['n']:<6} {figures}")
    print(f"saved outcome router {args.model!r} version {table['version'][0].as_py()}; routing now uses its "
          "predicted quality (metrics above are out-of-fold)")
    _print_knob(engine.outcomes.knob(model=args.model))
    return 0


def _print_knob(knob: dict) -> None:
    reached = "" if knob["reached"] else " (not reached: the closest point)"
    print(f"willingness_to_pay {knob['willingness_to_pay']:.6g} for {knob['target']} {knob['value']:g}{reached}: "
          f"quality {knob['quality']:.4f} ({knob['quality_share']:.1%} of {knob['strongest']}), "
          f"${knob['cost_per_1k']:.4f} per 1k requests, {knob['strongest_share']:.1%} of requests to "
          f"{knob['strongest']}; out-of-fold over {knob['rows']} requests, {knob['folds']} folds, costs from "
          f"{knob['cost_estimate']}")


def calibrate_command(args: argparse.Namespace) -> int:
    from tinydancer_duck.engine import Engine

    engine = Engine(args.store)
    knob = engine.outcomes.knob(quality_share=args.quality_share, cost_per_1k=args.cost_per_1k,
                                strongest_share=args.strongest_share, model=args.model)
    _print_knob(knob)
    print(f"route with it: SELECT ruvector_route(request, willingness_to_pay := {knob['willingness_to_pay']:.6g})")
    return 0


def import_agents_command(args: argparse.Namespace) -> int:
    from tinydancer_duck.engine import Engine

    announce_columns(args.log, args.columns)
    table = Engine(args.store).import_agents(args.log, columns=args.columns, agent_type=args.agent_type,
                                             capabilities=args.capability or ["general"])
    for row in table.to_pylist():
        price = (f"${row['cost_per_1k_tokens']:.6g}/1k tokens" if row["cost_per_1k_tokens"] is not None
                 else f"${row['cost_per_call']:.6g}/call" if row["cost_per_call"] is not None else "no logged cost")
        quality = "no outcomes" if row["quality_score"] is None else f"quality {row['quality_score']:.4f}"
        print(f"{row['name'][:44]:44} {price:>24}  {quality}  ({row['observed']} outcomes)")
    print(f"registered {table.num_rows} agent(s) from {args.log}")
    return 0


