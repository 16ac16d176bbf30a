"""The figures of a report, gathered from one snapshot and one log by the replay room's own functions.

One :func:`gather` call runs, over the same requests (``holdout`` and ``columns`` as the replays take them):
:func:`~tinydancer_duck.replay.curve` (the router's willingness-to-pay sweep, single agents, oracle, AIQs);
:func:`~tinydancer_duck.replay.simulate` for each policy (the router at the outcome router's calibrated price when
there is one, the cheapest and the best expected quality), the first of them also reading the log's actual policy
(its ``agent``, ``cost`` and ``quality`` columns: ``actual_agent``, ``actual_cost``, ``actual_quality`` of each
decision row); and :func:`~tinydancer_duck.replay.budget_whatif` over the budgets. A log without an actual policy
(RouterBench's wide logs hold every model's outcome but no choice) has ``actual = None``: the report says so and
computes no savings rather than inventing one.

Default budgets: 8 totals spaced evenly on a log scale from the cheapest single agent's total cost over the replayed
requests to the dearest one's, plus the actual policy's spend. Default quality threshold: 95% of the best single
agent's mean quality (the target ``optimize_for='learned'`` is calibrated to).

Agents without evidence: an agent the log never observed and no outcome router covers has nothing but its
registered prior (a quality_score typed at registration). Such an agent would become the oracle's choice wherever
the others failed, the "best single agent" and the quality threshold on that prior alone, so by default every
replay of the report leaves it out (as ``excluded_agents``), and the page lists it; ``include_unobserved`` keeps
it. When no agent has evidence, all are kept and the report says that every quality is a prior, and it shows no
oracle (there is nothing observed to be an oracle of).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck._logs import log_agents, open_log
from tinydancer_duck.options import INCLUDE_UNOBSERVED
from tinydancer_duck.replay import actual_point, budget_whatif, curve, simulate
from tinydancer_duck.snapshot import RoutingSnapshot

from ._charts import fmt

QUALITY_SOURCES = {"observed": "observed", "category_mean": "category mean", "predicted": "predicted",
                   "quality_score": "prior"}
COST_SOURCES = {"logged": "logged", "estimated": "estimated"}
THRESHOLD_SHARE = 0.95
BUDGET_POINTS = 8
BUDGET_PREFIX = "budget $"
#: interval bounds a replay may give beside a figure (``<figure>_low``, ``<figure>_high``), and the estimator's name
BOUNDS = ("_low", "_high")


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows. ``policies``: one dict per policy row of the savings table (policy, requests,
    total_cost, cost, quality, quality_source, cost_source, savings, savings_pct, quality_change, sources);
    ``mix``: (policy, agent, requests, share, cost, quality) rows; ``actual``: the log's policy (total_cost, cost,
    quality, requests) or None; ``calibrated``: the router at its calibrated price (cost, quality,
    willingness_to_pay) or None; ``unobserved``: the agents without evidence in the log (name, agent_type, quality
    prior, price) and ``unobserved_included``: whether they were compared anyway; ``priors_only``: no agent has
    evidence. A figure may carry a 95% interval as ``<key>_low`` and ``<key>_high`` and its row an
    ``estimator``."""

    log: str
    holdout: float | None
    requests: int
    curve: pa.Table
    aiq: dict[str, float]
    whatif: pa.Table
    quality_threshold: float
    threshold_note: str
    policies: list[dict[str, Any]]
    mix: list[dict[str, Any]]
    actual: dict[str, Any] | None
    calibrated: dict[str, Any] | None
    outcome_model: str | None
    unobserved: list[dict[str, Any]] = field(default_factory=list)
    unobserved_included: bool = False
    priors_only: bool = False
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def agents(self) -> list[dict[str, Any]]:
        """The single agents' curve rows (label, cost, quality, total_cost, ...)."""
        return [r for r in self.curve.to_pylist() if r["series"] == "zero_router"]

    @property
    def headline(self) -> list[tuple[str, str]]:
        """(question, sentence) pairs: the report's conclusions (:func:`~._headline.headline`)."""
        from ._headline import headline

        return headline(self)


def snapshot_of(source: RoutingSnapshot | Any) -> RoutingSnapshot:
    """``source`` itself, or an Engine's snapshot of now (the replays accept either; one snapshot serves every
    figure of a report, so they all see the same agents and models)."""
    return source if isinstance(source, RoutingSnapshot) else source.snapshot()


def source_shares(counts: dict[str, Any], names: dict[str, str], suffix: str) -> str:
    """'observed 80%, prior 20%' from a row's ``<source><suffix>`` decision counts, largest first."""
    found = [(names[key], counts.get(f"{key}{suffix}") or 0) for key in names]
    total = sum(n for _, n in found)
    if not total:
        return "–"
    shares = [(name, n / total) for name, n in sorted(found, key=lambda x: -x[1]) if n]
    return ", ".join(f"{name} {share:.0%}" if share >= 0.005 else f"{name} <1%" for name, share in shares)


def sources(counts: dict[str, Any]) -> tuple[str, str]:
    """(quality source, cost source) of a curve row, what-if row or simulation summary."""
    return source_shares(counts, QUALITY_SOURCES, "_rows"), source_shares(counts, COST_SOURCES, "_cost_rows")


class _ActualMix:
    """The log's actual policy per agent, summed from simulate's decision rows (a ``sink``)."""

    def __init__(self) -> None:
        self.agents: dict[str, list[float]] = {}

    def __call__(self, batch: pa.RecordBatch) -> None:
        grouped = pa.table(batch).group_by("actual_agent").aggregate(
            [("actual_agent", "count"), ("actual_cost", "sum"), ("actual_quality", "sum"),
             ("actual_quality", "count")])
        for row in grouped.to_pylist():
            if row["actual_agent"] is not None:
                total = self.agents.setdefault(row["actual_agent"], [0, 0.0, 0.0, 0])
                total[0] += row["actual_agent_count"]
                total[1] += row["actual_cost_sum"] or 0.0
                total[2] += row["actual_quality_sum"] or 0.0
                total[3] += row["actual_quality_count"]

    def rows(self) -> list[dict[str, Any]]:
        served = sum(t[0] for t in self.agents.values())
        out = [{"policy": "actual (log)", "agent": a, "requests": int(t[0]), "share": t[0] / served, "cost": t[1],
                "quality": t[2] / t[3] if t[3] else None} for a, t in self.agents.items()]
        return sorted(out, key=lambda r: (-r["requests"], r["agent"]))


def default_budgets(agents: Sequence[dict[str, Any]], actual: dict[str, Any] | None) -> list[float]:
    """BUDGET_POINTS totals log-spaced over the single agents' total costs (3 significant digits), plus the
    actual spend (replacing a grid value within 1% of it)."""
    totals = [a["total_cost"] for a in agents if a["total_cost"] and a["total_cost"] > 0]
    budgets = set()
    if totals:
        lo, hi = min(totals), max(totals)
        steps = BUDGET_POINTS - 1 if hi > lo else 0
        for k in range(steps + 1):
            value = lo * (hi / lo) ** (k / steps) if steps else lo
            budgets.add(float(f"{value:.3g}"))
    if actual is not None and actual["total_cost"]:
        spent = float(actual["total_cost"])
        budgets = {b for b in budgets if abs(b - spent) > 0.01 * spent} | {spent}  # the spend, not a near twin
    return sorted(budgets) or [0.0]


def budget_label(budget: float) -> str:
    """How a what-if budget is named as a policy: "budget $0.603"."""
    return f"{BUDGET_PREFIX}{fmt(budget)}"


def bounds(figures: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The interval bounds a replay gave beside its figures, under the report's names (``mean_quality_low`` ->
    ``quality_low`` for names {"mean_quality": "quality"}), and its ``estimator``; empty when it gave none."""
    out = {f"{ours}{end}": figures[f"{theirs}{end}"] for theirs, ours in names.items() for end in BOUNDS
           if figures.get(f"{theirs}{end}") is not None}
    if out and figures.get("estimator") is not None:
        out["estimator"] = figures["estimator"]
    return out


def _policy_row(policy: str, figures: dict[str, Any], actual: dict[str, Any] | None) -> dict[str, Any]:
    """One row of the savings table from a summary-like dict (requests, total_cost, cost, quality, counts, and
    interval bounds where the replay gave them)."""
    quality_source, cost_source = sources(figures)
    row = {"policy": policy, "requests": figures["requests"], "total_cost": figures["total_cost"],
           "cost": figures["cost"], "quality": figures["quality"], "quality_source": quality_source,
           "cost_source": cost_source, "savings": None, "savings_pct": None, "quality_change": None,
           "sources": f"quality {quality_source}; cost {cost_source}",
           **bounds(figures, {k: k for k in ("total_cost", "cost", "quality", "savings", "savings_pct")})}
    if actual is not None:
        row["savings"] = actual["total_cost"] - figures["total_cost"]
        row["savings_pct"] = 100.0 * row["savings"] / actual["total_cost"] if actual["total_cost"] else None
        if actual["quality"] is not None and figures["quality"] is not None:
            row["quality_change"] = figures["quality"] - actual["quality"]
    return row


def _summary_figures(summary: dict[str, Any]) -> dict[str, Any]:
    return {**summary, "requests": summary["routed"], "cost": summary["mean_cost"], "quality": summary["mean_quality"],
            **bounds(summary, {"mean_cost": "cost", "mean_quality": "quality"})}


def _policies(snapshot: RoutingSnapshot) -> list[tuple[str, str]]:
    """(label, optimize_for) of the simulated policies: the calibrated router when there is one."""
    out = [("router: cheapest", "cost"), ("router: best expected quality", "quality")]
    model = snapshot.outcome
    if model is not None and model.default_willingness_to_pay is not None:
        out.insert(0, ("router at calibrated price", "learned"))
    return out


def _actual(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The log's actual policy from a simulation summary (None when the log has no cost of a choice made)."""
    return actual_point(summary["actual_total_cost"], summary["actual_mean_quality"], summary["rows"])


def _calibrated(snapshot: RoutingSnapshot, objective: str, summary: dict[str, Any]) -> dict[str, Any] | None:
    if objective != "learned":
        return None
    return {"cost": summary["mean_cost"], "quality": summary["mean_quality"],
            "willingness_to_pay": snapshot.outcome.default_willingness_to_pay}


def actual_and_calibrated(source: RoutingSnapshot | Any, log: Any, **replay: Any
                          ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the log's actual policy, the router at its calibrated price) as the charts draw them, from one simulation;
    either is None when the log or the store has none. ``replay``: columns, observed_only, holdout."""
    snapshot = snapshot_of(source)
    _, objective = _policies(snapshot)[0]
    _, summary = simulate(snapshot, log, optimize_for=objective, keep_rows=False, **replay)
    return _actual(summary), _calibrated(snapshot, objective, summary)


def unobserved_agents(snapshot: RoutingSnapshot, log: Any, columns: Any = None) -> list[dict[str, Any]]:
    """The snapshot's agents without evidence in ``log``: the log holds no outcome of theirs and no outcome router
    covers them (module docstring); name, agent_type, quality_score (their prior) and prices."""
    in_log = set(log_agents(open_log(log, columns=columns)))
    covered = snapshot.outcome_columns >= 0
    by_name = {r["name"]: r for r in snapshot.agents.table.to_pylist()}
    keys = ("name", "agent_type", "quality_score", "cost_per_call", "cost_per_1k_tokens", "cost_per_second")
    return [{k: by_name[name][k] for k in keys} for j, name in enumerate(snapshot.agents.name_list())
            if name not in in_log and not covered[j]]


def _comparable(snapshot: RoutingSnapshot, log: Any, replay: dict[str, Any], include: bool
                ) -> tuple[dict[str, Any], list[dict[str, Any]], bool]:
    """(the replays' options with the agents without evidence excluded unless ``include``, those agents, whether
    no agent has evidence: then none is excluded)."""
    unobserved = unobserved_agents(snapshot, log, replay["columns"])
    priors_only = len(unobserved) == snapshot.agents.size
    if include or priors_only or not unobserved:
        return replay, unobserved, priors_only
    given = replay.get("excluded_agents") or ()
    excluded = [*given, *(a["name"] for a in unobserved if a["name"] not in given)]
    return {**replay, "excluded_agents": excluded}, unobserved, priors_only


def gather(source: RoutingSnapshot | Any, log: Any, *, budgets: Sequence[float] | None = None,
           quality_threshold: float | None = None, columns: Any = None, observed_only: bool = False,
           holdout: Any = None, points: int = 40, include_unobserved: bool = False, **constraints: Any) -> ReportData:
    """Every figure of a report over ``log`` (module docstring). Long because it is the report's one recipe: each
    step is a call into the replay room and the assembly of its result, in the order the page shows them.
    Parameters because the report takes each replay's options by name, as the CLI flags give them."""
    started = time.perf_counter()
    snapshot = snapshot_of(source)
    include_unobserved = INCLUDE_UNOBSERVED.value(include_unobserved)
    replay, unobserved, priors_only = _comparable(
        snapshot, log, {"columns": columns, "observed_only": observed_only, "holdout": holdout, **constraints},
        include_unobserved)
    table, result = curve(snapshot, log, points=points, **replay)
    oracle = next(r for r in table.to_pylist() if r["series"] == "oracle")
    if not oracle["observed_rows"]:  # nothing observed: no oracle to show
        table = table.filter(pc.not_equal(table["series"], "oracle"))
    agents = [r for r in table.to_pylist() if r["series"] == "zero_router"]
    warnings = list(result["warnings"])

    summaries, actual_mix = [], _ActualMix()
    for k, (label, objective) in enumerate(_policies(snapshot)):
        _, summary = simulate(snapshot, log, optimize_for=objective, keep_rows=False,
                              sink=actual_mix if k == 0 else None, **replay)
        summaries.append((label, summary))
        warnings += [w for w in summary["warnings"] if w not in warnings]
    actual = _actual(summaries[0][1])

    best = max(agents, key=lambda a: (a["quality"], -a["cost"]))
    if quality_threshold is None:
        quality_threshold = THRESHOLD_SHARE * best["quality"]
        note = f"{THRESHOLD_SHARE:.0%} of {best['label']}'s {best['quality']:.3f}, the best single agent's"
    else:
        note = "given"
    values = list(budgets) if budgets is not None else default_budgets(agents, actual)
    whatif = budget_whatif(snapshot, log, values, quality_threshold=quality_threshold, **replay)

    policies = _policy_rows(summaries, actual, oracle if oracle["observed_rows"] else None, best)
    mix = actual_mix.rows()
    for label, summary in summaries:
        mix += [{"policy": label, **m} for m in summary["agent_mix"]]
    for r in whatif.to_pylist():
        mix += [{"policy": budget_label(r["budget"]), **m} for m in r["agent_mix"]]

    model = snapshot.outcome
    label = None if model is None else f"{model.metrics.get('name')!r} version {model.metrics.get('version')}"
    return ReportData(log=str(log), holdout=holdout, requests=sum(a["requests"] for a in agents[:1]),
                      curve=table, aiq={k: v for k, v in result.items() if k.startswith(("aiq_", "c_"))},
                      whatif=whatif, quality_threshold=float(quality_threshold), threshold_note=note,
                      policies=policies, mix=mix, actual=actual,
                      calibrated=_calibrated(snapshot, _policies(snapshot)[0][1], summaries[0][1]),
                      outcome_model=label, unobserved=unobserved, unobserved_included=bool(unobserved) and (
                          include_unobserved or priors_only), priors_only=priors_only,
                      warnings=_beside_the_box(warnings, unobserved), seconds=time.perf_counter() - started)


def _beside_the_box(warnings: list[str], unobserved: list[dict[str, Any]]) -> list[str]:
    """The replays' warnings less the one naming exactly the agents the page's box lists (and says more about)."""
    names = ", ".join(a["name"] for a in unobserved)
    return [w for w in warnings if not (names and "never appear in the log" in w and w.endswith(f": {names}"))]


def _policy_rows(summaries: list[tuple[str, dict[str, Any]]], actual: dict[str, Any] | None,
                 oracle: dict[str, Any] | None, best: dict[str, Any]) -> list[dict[str, Any]]:
    """The savings table: the log's actual policy, each simulated policy, the oracle (when anything was observed)
    and the best single agent."""
    rows = [] if actual is None else [{
        "policy": "actual (log)", "requests": actual["requests"], "total_cost": actual["total_cost"],
        "cost": actual["cost"], "quality": actual["quality"], "quality_source": "the log's quality column",
        "cost_source": "the log's cost column", "savings": 0.0, "savings_pct": 0.0, "quality_change": 0.0,
        "sources": "the log's own cost and quality"}]
    rows += [_policy_row(label, _summary_figures(s), actual) for label, s in summaries]
    if oracle is not None:
        rows.append(_policy_row("oracle (best observed per request)", oracle, actual))
    rows.append(_policy_row(f"always {best['label']} (best single agent)", best, actual))
    return rows
