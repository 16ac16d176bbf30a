"""The report's conclusions, one sentence per question, from its one data object (:class:`~._data.ReportData`):

- savings: what the best policy would have cost, against the log's actual policy (or, when the log has none,
  against always choosing the best single agent), at what quality. The best policy is the cheapest of the router's
  policies (at its calibrated price, cheapest, best expected quality, and each what-if budget that serves every
  request) whose measured quality reaches the report's quality threshold, else the one of best quality;
- curve: whether routing beats choosing one agent (the router's AIQ against the zero router's);
- whatif: the cheapest budget that meets the quality threshold;
- mix: where the best policy sends the requests.

A figure that a replay gives with a 95% interval (``<figure>_low`` and ``<figure>_high``) is shown with it, "0.853
(0.821–0.880)"; without one, or with one that prints as the figure itself (a log that observed every decision),
alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._charts import fmt, share
from ._data import BUDGET_PREFIX, bounds, budget_label

if TYPE_CHECKING:
    from ._data import ReportData

#: the simulated router policies the best policy is chosen among (labels of the savings table), as sentences name them
POLICY_PHRASES = {"router at calibrated price": "the router at its calibrated price",
                  "router: cheapest": "the router choosing the cheapest agent",
                  "router: best expected quality": "the router choosing the best expected quality"}
PRIORS_ONLY = ("Nothing in this log is observed and no outcome router covers its agents: every quality below is an "
               "agent's registered prior, so this report shows what the registered prices and quality scores imply, "
               "not what happened.")


def money(value: float | None) -> str:
    return "–" if value is None else f"${fmt(value, 3)}"


def quality(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}%"


def interval(row: dict[str, Any], key: str, show: Callable[[Any], str]) -> str:
    """ " (low–high)" when ``row`` has both bounds of ``key`` and they print apart, else ""."""
    low, high = row.get(f"{key}_low"), row.get(f"{key}_high")
    if low is None or high is None or show(low) == show(high):
        return ""
    return f" ({show(low)}–{show(high)})"


def _phrase(policy: str) -> str:
    """A policy's label as the headline names it."""
    if policy.startswith(BUDGET_PREFIX):
        return f"the router under a total budget of ${policy.removeprefix(BUDGET_PREFIX)}"
    return POLICY_PHRASES.get(policy, policy)


def candidates(data: ReportData) -> list[dict[str, Any]]:
    """The policies the best one is chosen among: the simulated router policies and every what-if budget that
    served all requests (its quality then covers every request), as savings-table rows."""
    out = [p for p in data.policies if p["policy"] in POLICY_PHRASES and p["quality"] is not None]
    for r in data.whatif.to_pylist():
        if r["served"] == r["requests"] and r["quality"] is not None:
            out.append({"policy": budget_label(r["budget"]), "requests": r["served"], "total_cost": r["spend"],
                        "quality": r["quality"], **bounds(r, {"spend": "total_cost", "quality": "quality"})})
    return out


def best_policy(data: ReportData) -> dict[str, Any] | None:
    """The cheapest candidate (:func:`candidates`) whose measured quality reaches the report's quality threshold,
    else the one of best quality; None when nothing was served."""
    found = candidates(data)
    if not found:
        return None
    meeting = [p for p in found if p["quality"] >= data.quality_threshold - 1e-12]
    if meeting:
        return min(meeting, key=lambda p: (p["total_cost"], -p["quality"]))
    return max(found, key=lambda p: (p["quality"], -p["total_cost"]))


def _savings(data: ReportData, best: dict[str, Any]) -> str:
    if data.actual is not None:
        reference = next(p for p in data.policies if p["policy"] == "actual (log)")
        against = "the log's actual policy"
    else:
        reference = data.policies[-1]  # always the best single agent
        against = f"{reference['policy'].split(' (')[0]}, the best single agent (the log has no policy of its own)"
    cost, was = best["total_cost"], reference["total_cost"]
    change, spread = "–", ""
    if was:
        saved = 100.0 * (was - cost) / was
        spread = interval(best, "savings_pct", percent) if data.actual is not None else ""
        change = f"{percent(abs(saved))}{spread} {'less' if saved >= 0 else 'more'}"
    cost_spread, quality_spread = interval(best, "total_cost", money), interval(best, "quality", quality)
    shown = bool(spread or cost_spread or quality_spread)  # an interval printed: say how it was estimated
    estimator = f" (95% intervals: {best['estimator']})" if best.get("estimator") and shown else ""
    return (f"The best policy, {_phrase(best['policy'])}, would have cost {money(cost)}{cost_spread} for the "
            f"{best['requests']:,} requests replayed against {money(was)} for {against}: {change}, at mean quality "
            f"{quality(best['quality'])}{quality_spread} against "
            f"{quality(reference['quality'])}{estimator}.")


def _curve(data: ReportData) -> str:
    aiq = data.aiq
    router, zero = aiq["aiq_router"], aiq["aiq_zero_router"]
    figures = (f"the router's AIQ is {quality(router)}{interval(aiq, 'aiq_router', quality)} against "
               f"{quality(zero)}{interval(aiq, 'aiq_zero_router', quality)} for mixing single agents at random")
    if router > zero + 0.0005:
        return f"Routing beats choosing one agent: over the same costs, {figures}."
    if router < zero - 0.0005:
        return f"Routing does worse than mixing single agents here: {figures}."
    return f"Routing does no better than mixing single agents here: {figures}."


def _whatif(data: ReportData) -> str:
    rows = data.whatif.to_pylist()
    threshold = f"{quality(data.quality_threshold)} ({data.threshold_note})"
    meeting = [r for r in rows if r["meets_quality_threshold"]]
    if not meeting:
        top = max(rows, key=lambda r: (r["quality"] or 0.0, -r["budget"]))
        return (f"None of the {len(rows)} budgets tried serves every request at an expected quality of "
                f"{threshold}; the best, {money(top['budget'])}, reaches a measured quality of "
                f"{quality(top['quality'])}{interval(top, 'quality', quality)}.")
    cheapest = min(meeting, key=lambda r: r["budget"])
    share = "" if not data.actual or not data.actual["total_cost"] else (
        f", {percent(100.0 * cheapest['spend'] / data.actual['total_cost'])} of the actual spend")
    return (f"The cheapest budget tried that serves every request at an expected quality of at least {threshold} "
            f"is {money(cheapest['budget'])}: it spends {money(cheapest['spend'])}"
            f"{interval(cheapest, 'spend', money)}{share}, for a measured quality of "
            f"{quality(cheapest['quality'])}{interval(cheapest, 'quality', quality)}.")


def _mix(data: ReportData, best: dict[str, Any]) -> str:
    rows = sorted((m for m in data.mix if m["policy"] == best["policy"]), key=lambda m: (-m["requests"], m["agent"]))
    parts = [f"{share(m['share'])} to {m['agent']}" for m in rows[:3]]
    if len(rows) > 3:
        parts.append(f"{share(sum(m['share'] for m in rows[3:]))} to {len(rows) - 3} others")
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"That policy sends {listed.replace(' to ', ' of the requests to ', 1)}."


def headline(data: ReportData) -> list[tuple[str, str]]:
    """(question, sentence) pairs, the most important first (module docstring)."""
    out = []
    if data.priors_only:
        out.append(("priors", PRIORS_ONLY))
    best = best_policy(data)
    if best is not None:
        out.append(("savings", _savings(data, best)))
    out += [("curve", _curve(data)), ("whatif", _whatif(data))]
    if best is not None:
        out.append(("mix", _mix(data, best)))
    return out
