"""The replay and learning commands: simulate, whatif, train-outcomes, calibrate and agents import; each prints
what it measured and where each figure came from, and the replay's warnings on stderr."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial

from tinydancer_duck.options import SIGNATURES, Estimate

from ._flags import add_flags, flag_values

LOG_HELP = ("the log: a .parquet, .csv or .json/.jsonl file, or a folder or glob of them; RouterBench's sample_id, "
            "eval_name, prompt and model columns are taken as request_id, category, request and agent")


def sql_flags(parser: argparse.ArgumentParser, function: str, *, skip: tuple[str, ...] = ("log",)) -> None:
    """The flags of the SQL function ``function``'s parameters (all but ``skip``), under their declared names."""
    add_flags(parser, [p for p in SIGNATURES[function].params if p.name not in skip])


def sql_values(args: argparse.Namespace, function: str, *, skip: tuple[str, ...] = ("log",)) -> dict:
    """The values of :func:`sql_flags`' flags, by parameter name."""
    return flag_values(args, [p for p in SIGNATURES[function].params if p.name not in skip])


def announce_columns(log: str, columns: str | None) -> None:
    """Open the log once before any work (a bad or empty log fails fast) and say on stderr which of its columns were
    taken under another name: "columns: sample_id → request_id, eval_name → category"."""
    from tinydancer_duck._logs import open_log
    from tinydancer_duck.errors import InvalidArgument

    spec = open_log(log, columns=columns)
    if spec.n_rows == 0:
        raise InvalidArgument("log", log, "has no rows: nothing to replay, import or train on")
    aliased = spec.aliased
    if aliased:
        print("columns: " + ", ".join(f"{column} → {name}" for column, name in aliased.items()), file=sys.stderr)


def interval_text(low: float | None, high: float | None, text: Callable[[float | None], str]) -> str:
    """'0.8661 – 0.8862' with ``text`` formatting each end; "–" without an interval."""
    return "–" if low is None or high is None else f"{text(low)} – {text(high)}"


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
        _, summary = simulate(Engine(args.store), args.log, keep_rows=False, sink=sink if args.output else None,
                              progress=bar, **sql_values(args, "ruvector_simulate_summary"))
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    if summary["rows"] == 0:  # the holdout kept none of the log's requests out of training
        from tinydancer_duck.errors import InvalidArgument

        raise InvalidArgument("holdout", args.holdout, f"leaves no request of {args.log} to replay")
    print_summary(summary, args.log, args.optimize_for or "balanced")
    if args.output:
        print(f"per-request decisions written to {args.output}")
    warn(summary["warnings"])
    return 0


def print_summary(summary: dict, log: str, policy: str) -> None:
    """A simulation's figures as one table (value, where it came from), the agent mix, and a line per figure saying
    what it means; values resting on a prior rather than on the log are marked *."""
    from ._table import ASSUMED, fixed, money, number, share, show

    def mark(text: str, assumed: bool) -> str:
        return text + ASSUMED if assumed and text != "–" else text

    s = summary
    estimated_cost = s["registered_price_cost_rows"] + s["per_token_price_cost_rows"] > 0  # a price, not the log
    prior_quality = s["quality_score_rows"] > 0

    def span(figure: str, text: Callable[[float | None], str]) -> str:
        return interval_text(s.get(f"{figure}_low"), s.get(f"{figure}_high"), text)

    q4, p1 = partial(fixed, digits=4), partial(fixed, digits=1)

    print(f"replayed {s['rows']:,} requests of {log} under optimize_for {policy!r}: {s['routed']:,} routed")
    rows = [
        ("total cost ($)", mark(money(s["total_cost"]), estimated_cost), span("total_cost", money), s["cost_source"]),
        ("mean cost ($/request)", mark(money(s["mean_cost"]), estimated_cost), span("mean_cost", money),
         s["cost_source"]),
        ("expected quality (0-1)", mark(fixed(s["mean_expected_quality"], 4), s["expected_quality_source"] ==
                                        "quality_score"), "–", s["expected_quality_source"]),
        ("measured quality (0-1)", mark(fixed(s["mean_quality"], 4), prior_quality), span("mean_quality", q4),
         f"{s['quality_estimator']}; {s['quality_source']}"),
        ("realized quality (0-1)", fixed(s["realized_quality"], 4), "–",
         f"observed outcomes only: {s['realized_rows']:,} of {s['routed']:,} requests"),
        ("mean latency (ms)", mark(number(s["mean_latency_ms"]), True), "–",
         "the chosen agents' registered avg_latency_ms"),
        ("actual cost ($)", money(s["actual_total_cost"]), "–", "the log's own choices (its cost column)"
         if s["actual_total_cost"] is not None else "the log records no choice of its own"),
        ("actual quality (0-1)", fixed(s["actual_mean_quality"], 4), "–", "the log's own choices (its quality column)"
         if s["actual_mean_quality"] is not None else "the log records no outcome of its own choices"),
        ("savings ($)", money(s["savings"]), span("savings", money), "actual cost - total cost"),
        ("savings (%)", fixed(s["savings_pct"], 1), span("savings_pct", p1), "of the actual cost"),
    ]
    if s["budget"] is not None:
        rows += [("budget ($)", money(s["budget"]), "–", "for the whole log"),
                 ("budget overrun ($)", money(s["budget_overrun"]), "–", "spend beyond the budget")]
    rows.append(("time (s)", number(s["seconds"], 3), "–", f"{s['rows_per_second'] or 0:,.0f} requests/s"))
    show(("figure", "value", f"{s['confidence']:.0%} interval", "source"), rows)
    print("\nagent mix:")
    show(("agent", "requests", "share", "cost ($)", "measured quality (0-1)"),
         [(m["agent"], f"{m['requests']:,}", share(m["share"]), money(m["cost"]), fixed(m["quality"], 4))
          for m in s["agent_mix"]], indent="  ")
    print("\nexpected quality: what the router predicted for its choices when it chose them (source above).\n"
          "measured quality: the log's verdict on the choices, by the estimator named (dm: the outcome the log "
          "observed for that request and agent, else the agent's cross-fitted mean in its category, else a "
          "prediction, else its quality_score, shares above; dr adds the logged outcomes' residuals weighted by "
          "1/propensity).\n"
          "realized quality: the mean over only the choices whose outcome the log observed (no estimates).\n"
          "mean latency: the chosen agents' registered average latency (from agents import or registration); not "
          "measured per request.\n"
          f"interval: where the figure lies for these requests with {s['confidence']:.0%} confidence "
          f"({s['interval_method']}); estimator {s['quality_estimator']}, effective sample size "
          f"{s['effective_sample_size']:,.0f}, {s['untried_decisions']:,} decisions to an agent the log never tried "
          "for such requests (those rest on the outcome model).\n"
          f"{ASSUMED} assumed: rests (partly) on a prior registered with the agent, not on this log.")


def whatif_command(args: argparse.Namespace) -> int:
    """The what-if, the log's actual policy and the chart's single agents, all from one pass over the log."""
    from tinydancer_duck.engine import Engine
    from tinydancer_duck.replay import whatif_frontier

    from ._paths import CHART, TABLE, check_output
    from ._progress import ProgressBar
    from ._report import write_whatif_chart

    check_output("--output", args.output, TABLE)
    check_output("--chart", args.chart, CHART)
    announce_columns(args.log, args.columns)
    snapshot = Engine(args.store).snapshot()
    bar = ProgressBar("reading log")
    values = sql_values(args, "ruvector_budget_whatif")
    frontier = whatif_frontier(snapshot, args.log, values.pop("budgets"), progress=bar, **values)
    bar.close()
    table = frontier.table
    confidence = Estimate.of(confidence=args.confidence).confidence  # the flag's None is the declared default
    print_frontier(table.to_pylist(), frontier.actual, args.quality_threshold, confidence)
    if args.output:
        _write_frontier(table, args.output)
        print(f"frontier written to {args.output}")
    if args.chart:
        print(f"chart written to {write_whatif_chart(args, frontier)}")
    warn(table["warnings"][0].as_py() if table.num_rows else [])
    return 0


def print_frontier(rows: list[dict], actual: dict | None, quality_threshold: float | None,
                   confidence: float = 0.95) -> None:
    """The what-if frontier as one table, the log's actual policy first as the baseline, each budget's full agent
    mix, and a line per figure saying what it means."""
    from ._table import fixed, money, number, show

    span, q4 = interval_text, partial(fixed, digits=4)
    baseline = ("actual (the log)", "–", money(actual["total_cost"]), "–", "–", fixed(actual["quality"], 4), "–",
                "–", f"{actual['requests']:,}", "–", "–") if actual else ("actual (the log)", *["–"] * 10)
    table = [baseline] + [(
        f"budget {money(r['budget'])}", money(r["budget"]), money(r["spend"]), span(r["spend_low"], r["spend_high"],
                                                                                    money),
        money(r["estimated_spend"]), fixed(r["quality"], 4), span(r["quality_low"], r["quality_high"], q4),
        fixed(r["expected_quality"], 4), f"{r['served']:,} of {r['requests']:,}",
        number(r["willingness_to_pay"]), r["meets_quality_threshold"]) for r in rows]
    interval = f"{confidence:.0%} interval"
    show(("policy", "budget ($)", "spend ($)", interval, "est. spend ($)", "quality", interval,
          "exp. quality", "served", "w.t.p. ($/quality)", "meets threshold"), table)
    print("\nagent mix (requests per agent):")
    for r in rows:
        mix = ", ".join(f"{m['agent']} {m['requests']:,}" for m in r["agent_mix"]) or "none served"
        print(f"  budget {money(r['budget'])}: {mix}")
    threshold = "" if quality_threshold is None else f" (threshold {quality_threshold:g})"
    print("\nspend: the chosen agents' cost as the log records it (the router's estimate where it has none); est. "
          "spend: the router's own estimate.\nquality: mean measured quality in [0, 1] over the requests served, "
          f"the log's verdict on the choices, estimated by {rows[0]['quality_estimator'] if rows else 'dm'} "
          "(observed, else the agent's cross-fitted category mean, else predicted, else quality_score); exp. "
          f"quality: the router's prediction when choosing.\n{interval}: where spend and quality lie for these "
          f"requests with {confidence:.0%} confidence.\nw.t.p.: willingness to pay, the price per unit of quality "
          "the budget implies (route with "
          "willingness_to_pay := it for the same choices).\nmeets threshold: every request served at a mean "
          f"expected quality at or above --quality-threshold{threshold}.\nactual (the log): the log's own choices "
          + ("(its agent, cost and quality columns)." if actual else
             "— this log records none (no cost column for a choice of its own)."))


def _write_frontier(table, path: str) -> None:
    import polars as pl

    frame = pl.from_arrow(table)
    if path.lower().endswith(".parquet"):
        frame.write_parquet(path)
        return
    frame.drop("warnings").with_columns(pl.col("agent_mix").list.eval(
        pl.element().struct.field("agent") + pl.lit(":") + pl.element().struct.field("requests").cast(pl.String))
        .list.join(" ").alias("agent_mix")).write_csv(path)


def train_outcomes_command(args: argparse.Namespace) -> int:
    from tinydancer_duck.engine import Engine

    from ._progress import ProgressBar

    announce_columns(args.log, args.columns)
    model = args.model or SIGNATURES["ruvector_train_outcome_router"].param("model").default
    bar = ProgressBar(f"training outcome router {model!r}", unit="fit")
    engine = Engine(args.store)
    table = engine.outcomes.train_log(args.log, progress=bar, **sql_values(args, "ruvector_train_outcome_router",
                                                                           skip=("source",)))
    bar.close()
    from ._table import fixed, money, show

    show(("kind", "name", "requests", "AUC", "accuracy", "Brier", "quality (0-1)", "cost ($/request)"),
         [(r["kind"], r["name"], f"{r['n']:,}", fixed(r["auc"], 4), fixed(r["accuracy"], 4), fixed(r["brier"], 4),
           fixed(r["quality"], 4), money(r["cost"])) for r in table.to_pylist()])
    print(f"saved outcome router {model!r} version {table['version'][0].as_py()}; routing now uses its "
          "predicted quality (metrics above are out-of-fold)")
    _print_knob(engine.outcomes.knob(model=model))
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
    knob = engine.outcomes.knob(**sql_values(args, "ruvector_calibrate", skip=()))
    _print_knob(knob)
    print(f"route with it: SELECT ruvector_route(request, willingness_to_pay := {knob['willingness_to_pay']:.6g})")
    return 0


def list_agents_command(args: argparse.Namespace) -> int:
    from tinydancer_duck.engine import Engine

    from ._table import fixed, money, number, show

    rows = Engine(args.store).list_agents().to_pylist()
    show(("agent", "type", "capabilities", "$/1k tokens", "$/call", "$/second", "latency (ms)", "quality (0-1)",
          "requests", "active"),
         [(r["name"], r["agent_type"], ", ".join(r["capabilities"] or []), money(r["cost_per_1k_tokens"]),
           money(r["cost_per_call"]), money(r["cost_per_second"]), number(r["avg_latency_ms"]),
           fixed(r["quality_score"], 3), f"{r['total_requests'] or 0:,}", r["active"]) for r in rows])
    print(f"{len(rows)} agent(s); latency and quality are the registered values (priors until usage is recorded)")
    return 0


def import_agents_command(args: argparse.Namespace) -> int:
    from tinydancer_duck.engine import Engine

    announce_columns(args.log, args.columns)
    table = Engine(args.store).import_agents(args.log, **sql_values(args, "ruvector_import_agents"))
    from ._table import fixed, money, number, show

    show(("agent", "price ($)", "per", "latency (ms)", "quality (0-1)", "outcomes"),
         [(r["name"], money(r["cost_per_1k_tokens"] if r["cost_per_1k_tokens"] is not None else r["cost_per_call"]),
           "1k tokens" if r["cost_per_1k_tokens"] is not None else "call" if r["cost_per_call"] is not None else "–",
           number(r.get("avg_latency_ms")), fixed(r["quality_score"], 4), f"{r['observed']:,}")
          for r in table.to_pylist()])
    if any(r["avg_latency_ms"] is None for r in table.to_pylist()):
        print("latency –: the log has no latency_ms column; routing assumes the default latency for these agents")
    print(f"registered {table.num_rows} agent(s) from {args.log}")
    from ._columns import unpaired_columns

    warn([f"{problem}: that agent was not imported" for problem in unpaired_columns(args.log, args.columns)])
    return 0


